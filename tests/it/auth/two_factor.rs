//! Two-factor authentication (TOTP, RFC 6238): enrolment with a QR code and the secret,
//! confirmed by a code; ten recovery codes shown once; the code as a second login step
//! from a half-logged-in state that reaches no page; wrong, reused and stale codes
//! refused; an admin's reset and requirement, audited. Codes are computed here with
//! `totp-rs`, as an authenticator app would.

use diesel::prelude::*;
use latchkey::db::schema::{audit_events, recovery_codes, users};
use latchkey::domain::role::Role;
use proptest::prelude::*;

use crate::helpers::{ADMIN_PASSWORD, Browser, SESSION_SECRET, TestApp, spawn_app};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u64, 0u32, Vec::new());
    for c in s.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base32") as u64;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The code an authenticator app shows for `secret` at `unix_time`.
pub(crate) fn code(secret: &str, unix_time: u64) -> String {
    let bytes = base32_decode(secret);
    assert_eq!(bytes.len(), 20, "160-bit secret");
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .unwrap()
        .generate(unix_time)
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = body.find(start)? + start.len();
    let j = body[i..].find(end)? + i;
    Some(&body[i..j])
}

fn secret_on(page: &str) -> String {
    between(
        page,
        "<code id=\"totp-secret\" class=\"secret\">",
        "</code>",
    )
    .expect("the secret is on the enrolment page")
    .replace(' ', "")
}

fn recovery_codes_on(page: &str) -> Vec<String> {
    let list = between(
        page,
        "<ul class=\"recovery-codes\" id=\"recovery-codes\">",
        "</ul>",
    )
    .expect("recovery codes");
    list.split("<code>")
        .skip(1)
        .map(|s| s.split("</code>").next().unwrap().to_owned())
        .collect()
}

/// Enrols the browser's user; returns the secret (base32) and the recovery codes.
pub(crate) async fn enrol(b: &Browser) -> (String, Vec<String>) {
    let page = b.get("/account/two-factor").await;
    page.assert_status(200);
    let secret = secret_on(&page.body);
    let done = b
        .post_form("/account/two-factor", &[("code", &code(&secret, now()))])
        .await;
    done.assert_status(200);
    (secret, recovery_codes_on(&done.body))
}

fn audited(app: &TestApp, action: &str) -> Vec<(String, String)> {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .select((audit_events::actor, audit_events::details))
        .load(&mut *app.conn())
        .unwrap()
}

#[tokio::test]
async fn enrolment_needs_a_valid_code_and_shows_ten_recovery_codes_once() {
    let app = spawn_app().await;
    let b = app.admin().await;
    let page = b.get("/account/two-factor").await;
    page.assert_status(200);
    assert!(
        page.body.contains("<svg role=\"img\""),
        "an inline SVG QR code"
    );
    assert!(
        !page.body.contains("<script>"),
        "no inline script on the page"
    );
    let secret = secret_on(&page.body);
    assert_eq!(secret.len(), 32, "160 bits in base32");
    // A wrong code: a message next to the field, still not enrolled.
    let wrong = b
        .post_form("/account/two-factor", &[("code", "000000")])
        .await;
    wrong.assert_status(422);
    assert!(wrong.body.contains("id=\"totp-code-error\""));
    assert_eq!(
        secret_on(&wrong.body),
        secret,
        "the same secret is shown again"
    );
    let empty = b.post_form("/account/two-factor", &[("code", "")]).await;
    empty.assert_status(422);
    // The right code: ten recovery codes, this once.
    let done = b
        .post_form("/account/two-factor", &[("code", &code(&secret, now()))])
        .await;
    done.assert_status(200);
    assert_eq!(done.header("cache-control"), Some("no-store"));
    let codes = recovery_codes_on(&done.body);
    assert_eq!(codes.len(), 10);
    // Never again: not the secret, not the codes.
    let again = b.get("/account/two-factor").await;
    again.assert_status(200);
    assert!(!again.body.contains(&secret[..8]));
    assert!(!again.body.contains(&codes[0]));
    assert!(again.body.contains("10 unused recovery codes"));
    // Stored sealed and hashed.
    let (sealed, enabled): (Option<String>, bool) = users::table
        .filter(users::username.eq("admin"))
        .select((users::totp_secret, users::totp_enabled))
        .first(&mut *app.conn())
        .unwrap();
    assert!(enabled);
    let sealed = sealed.unwrap();
    assert!(!sealed.contains(&secret) && !sealed.to_uppercase().contains(&secret[..8]));
    let hashes: Vec<String> = recovery_codes::table
        .select(recovery_codes::code_hash)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(hashes.len(), 10);
    assert!(hashes.iter().all(|h| !codes.iter().any(|c| h.contains(c))));
    assert_eq!(audited(&app, "user.2fa.enable").len(), 1);
}

#[tokio::test]
async fn login_asks_for_a_code_and_refuses_wrong_reused_and_stale_ones() {
    let app = spawn_app().await;
    let (secret, _) = enrol(&app.admin().await).await;
    let t = now();
    let b = app.browser();
    let res = b.login("admin", ADMIN_PASSWORD).await;
    res.assert_status(303);
    assert_eq!(res.location(), Some("/login/code"));
    // Half logged in: no page is reachable.
    for path in ["/channels", "/users", "/audit", "/keys"] {
        let page = b.get(path).await;
        page.assert_status(303);
        assert_eq!(page.location(), Some("/login"), "{path}");
    }
    b.get("/login/code").await.assert_status(200);
    let wrong = b.post_form("/login/code", &[("code", "123456")]).await;
    wrong.assert_status(401);
    assert!(wrong.body.contains("id=\"code-error\""));
    let stale = code(&secret, t - 120);
    b.post_form("/login/code", &[("code", &stale)])
        .await
        .assert_status(401);
    // The enrolment used this step; the next one is what the app shows next.
    let next = code(&secret, t + 30);
    let ok = b.post_form("/login/code", &[("code", &next)]).await;
    ok.assert_status(303);
    assert_eq!(ok.location(), Some("/channels"));
    b.get("/channels").await.assert_status(200);
    // The same code again (same time step), from another browser: refused.
    let other = app.browser();
    other
        .login("admin", ADMIN_PASSWORD)
        .await
        .assert_status(303);
    other
        .post_form("/login/code", &[("code", &next)])
        .await
        .assert_status(401);
    other.get("/channels").await.assert_status(303);
    // Without a password first, the code step leads back to the login page.
    let fresh = app.browser();
    fresh.get("/login").await;
    let res = fresh.get("/login/code").await;
    assert_eq!(res.location(), Some("/login"));
}

#[tokio::test]
async fn a_recovery_code_logs_in_once() {
    let app = spawn_app().await;
    let (_, codes) = enrol(&app.admin().await).await;
    let b = app.browser();
    b.login("admin", ADMIN_PASSWORD).await;
    let res = b
        .post_form("/login/code", &[("code", &codes[3].to_lowercase())])
        .await;
    res.assert_status(303);
    b.get("/channels").await.assert_status(200);
    let again = app.browser();
    again.login("admin", ADMIN_PASSWORD).await;
    again
        .post_form("/login/code", &[("code", &codes[3])])
        .await
        .assert_status(401);
    let used = audited(&app, "login.recovery");
    assert_eq!(used.len(), 1);
    assert!(used[0].1.contains("9 left"), "{used:?}");
}

#[tokio::test]
async fn an_admin_resets_a_users_two_factor_and_it_is_audited() {
    let app = spawn_app().await;
    let pw = app.create_user("olga", Role::Operator);
    let olga = app.browser();
    olga.login("olga", &pw).await.assert_status(303);
    enrol(&olga).await;
    let id: i64 = users::table
        .filter(users::username.eq("olga"))
        .select(users::id)
        .first(&mut *app.conn())
        .unwrap();
    // Not an operator's to do.
    let op = app.user(Role::Operator).await;
    op.get("/channels").await;
    op.post_form(&format!("/users/{id}/two-factor/reset"), &[])
        .await
        .assert_status(403);
    let admin = app.admin().await;
    let users_page = admin.get("/users").await;
    assert!(users_page.body.contains("Reset two-factor of olga"));
    admin
        .post_form(&format!("/users/{id}/two-factor/reset"), &[])
        .await
        .assert_status(303);
    // Her session ended; the password alone lets her in again.
    olga.get("/channels").await.assert_status(303);
    let res = olga.login("olga", &pw).await;
    assert_eq!(res.location(), Some("/channels"));
    let reset = audited(&app, "user.2fa.reset");
    assert_eq!(reset.len(), 1);
    assert_eq!(reset[0].0, "admin");
    assert!(reset[0].1.contains("olga"));
}

#[tokio::test]
async fn a_required_two_factor_sends_users_without_it_to_enrolment() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    admin.get("/users").await;
    let bad = admin
        .post_form("/users/two-factor", &[("rule", "sometimes")])
        .await;
    bad.assert_status(422);
    admin
        .post_form("/users/two-factor", &[("rule", "admins")])
        .await
        .assert_status(303);
    assert_eq!(audited(&app, "settings.2fa").len(), 1);
    // An operator is not concerned.
    let pw = app.create_user("otto", Role::Operator);
    let res = app.browser().login("otto", &pw).await;
    assert_eq!(res.location(), Some("/channels"));
    // An admin without two-factor: enrolment after the password, nothing else.
    let pw = app.create_user("ada", Role::Admin);
    let ada = app.browser();
    let res = ada.login("ada", &pw).await;
    assert_eq!(res.location(), Some("/account/two-factor"));
    ada.get("/channels").await.assert_status(303);
    ada.get("/users").await.assert_status(303);
    let page = ada.get("/account/two-factor").await;
    page.assert_status(200);
    assert!(page.body.contains("required for your account"));
    let secret = secret_on(&page.body);
    let done = ada
        .post_form("/account/two-factor", &[("code", &code(&secret, now()))])
        .await;
    done.assert_status(200);
    assert_eq!(recovery_codes_on(&done.body).len(), 10);
    ada.get("/channels").await.assert_status(200);
    // Next time: password, then code.
    let again = app.browser();
    let res = again.login("ada", &pw).await;
    assert_eq!(res.location(), Some("/login/code"));
}

/// Any text in the code and requirement forms, against one server (with one
/// half-logged-in browser and one admin) for every case. The server is the test's
/// own, stopped when it ends: a server kept in a `static` is never dropped and
/// outlived the test process.
#[test]
fn code_enrolment_and_requirement_forms_never_fail_on_any_input() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (app, b, admin) = rt.block_on(async {
        let app = spawn_app().await;
        let admin = app.admin().await;
        let pw = app.create_user("pat", Role::Operator);
        let pat = app.browser();
        pat.login("pat", &pw).await;
        enrol(&pat).await;
        let b = app.browser();
        b.login("pat", &pw).await;
        (app, b, admin)
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let result = runner.run(&(any::<String>(), any::<String>()), |(code, rule)| {
        rt.block_on(async {
            b.post_form("/login/code", &[("code", &code)]).await;
            let res = b.post_form("/login/code", &[("code", &code)]).await;
            assert!(
                matches!(res.status.as_u16(), 303 | 401 | 422 | 429),
                "{}",
                res.status
            );
            let res = admin
                .post_form("/users/two-factor", &[("rule", &rule)])
                .await;
            assert!(matches!(res.status.as_u16(), 303 | 422), "{}", res.status);
            // The admin is not enrolled: any code but the app's is refused beside the field.
            let res = admin
                .post_form("/account/two-factor", &[("code", &code)])
                .await;
            assert!(matches!(res.status.as_u16(), 200 | 422), "{}", res.status);
            if res.status.as_u16() == 422 {
                assert!(res.body.contains("id=\"totp-code-error\""));
            }
        });
        Ok(())
    });
    drop(app);
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test]
async fn wrong_codes_are_throttled_like_passwords() {
    let app = spawn_app().await;
    let (secret, _) = enrol(&app.admin().await).await;
    let b = app.browser();
    b.login("admin", ADMIN_PASSWORD).await;
    for _ in 0..5 {
        b.post_form("/login/code", &[("code", "000000")])
            .await
            .assert_status(401);
    }
    let blocked = b
        .post_form("/login/code", &[("code", &code(&secret, now() + 30))])
        .await;
    blocked.assert_status(429);
    assert!(blocked.body.contains("Too many wrong codes"));
    b.get("/channels").await.assert_status(303);
}

/// The session cookie of `b`, re-sealed with its half-finished login's start moved
/// `age` seconds into the past (as it would read that much later): the cookie is
/// encrypted with the server's key, so only a holder of LATCHKEY_SESSION_SECRET can.
fn aged_session_cookie(b: &Browser, age: u64) -> String {
    use actix_web::cookie::{Cookie, CookieJar};
    use reqwest::cookie::CookieStore;
    const NAME: &str = "latchkey_session";
    let url: reqwest::Url = b.url("/").parse().unwrap();
    let header = b.jar.cookies(&url).expect("a session cookie");
    let sealed = header
        .to_str()
        .unwrap()
        .split("; ")
        .find(|c| c.starts_with(&format!("{NAME}=")))
        .expect("the session cookie");
    let key = latchkey::startup::cookie_key(SESSION_SECRET);
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::parse_encoded(sealed.to_owned()).unwrap());
    let open = jar
        .private(&key)
        .get(NAME)
        .expect("sealed with the server's key");
    let mut state: std::collections::HashMap<String, String> =
        serde_json::from_str(open.value()).unwrap();
    let mut pending: serde_json::Value = serde_json::from_str(&state["pending"]).unwrap();
    let since = pending["since"].as_u64().unwrap();
    assert!(since.abs_diff(now()) <= 5, "the step started just now");
    pending["since"] = (since - age).into();
    state.insert("pending".into(), pending.to_string());
    let mut out = CookieJar::new();
    out.private_mut(&key)
        .add(Cookie::new(NAME, serde_json::to_string(&state).unwrap()));
    out.get(NAME).unwrap().encoded().to_string()
}

/// A browser holding `cookie` (and `from`'s CSRF token).
fn browser_with(app: &TestApp, from: &Browser, cookie: &str) -> Browser {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(cookie, &format!("http://{}/", app.base).parse().unwrap());
    Browser::with_jar(&app.base, jar, Some(from))
}

#[tokio::test]
async fn a_half_finished_login_expires_after_five_minutes() {
    let app = spawn_app().await;
    let (secret, _) = enrol(&app.admin().await).await;
    let b = app.browser();
    let res = b.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(res.location(), Some("/login/code"));
    // Five minutes and two seconds later: the step is gone, even with a right code.
    let late = browser_with(&app, &b, &aged_session_cookie(&b, 302));
    let res = late.get("/login/code").await;
    res.assert_status(303);
    assert_eq!(res.location(), Some("/login"));
    let res = late
        .post_form("/login/code", &[("code", &code(&secret, now() + 30))])
        .await;
    res.assert_status(303);
    assert_eq!(res.location(), Some("/login"));
    late.get("/channels").await.assert_status(303);
    // Four minutes and fifty-five seconds later: still there, and the code logs in.
    let in_time = browser_with(&app, &b, &aged_session_cookie(&b, 295));
    in_time.get("/login/code").await.assert_status(200);
    let res = in_time
        .post_form("/login/code", &[("code", &code(&secret, now() + 30))])
        .await;
    res.assert_status(303);
    assert_eq!(res.location(), Some("/channels"));
    in_time.get("/channels").await.assert_status(200);
}
