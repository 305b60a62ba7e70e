mod lockout;
mod two_factor;

use latchkey::domain::role::Role;

use crate::helpers::{ADMIN_PASSWORD, spawn_app};

#[tokio::test]
async fn first_start_creates_admin_who_can_log_in_and_see_channels() {
    let app = spawn_app().await;
    assert!(
        app.logs()
            .contains("Created the first admin account `admin`")
    );
    let b = app.browser();
    let res = b.login("admin", ADMIN_PASSWORD).await;
    res.assert_status(303);
    assert_eq!(res.location(), Some("/channels"));
    let page = b.get("/channels").await;
    page.assert_status(200);
    assert!(page.body.contains("<h1>Channels</h1>"));
    assert!(
        page.body.contains("system"),
        "the built-in system channel is listed"
    );
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_refused_with_one_message() {
    let app = spawn_app().await;
    let b = app.browser();
    let wrong = b.login("admin", "not-the-password").await;
    wrong.assert_status(401);
    assert!(wrong.body.contains("Invalid username or password."));
    let unknown = b.login("nobody", "not-the-password").await;
    unknown.assert_status(401);
    assert!(unknown.body.contains("Invalid username or password."));
    // Still logged out.
    let res = b.get("/channels").await;
    res.assert_status(303);
    assert_eq!(res.location(), Some("/login"));
    let mut conn = app.conn();
    let events = latchkey::db::audit::recent(&mut conn, 10).unwrap();
    assert!(events.iter().filter(|e| e.action == "login.failed").count() >= 2);
}

#[tokio::test]
async fn a_disabled_user_cannot_log_in() {
    let app = spawn_app().await;
    let pw = app.create_user("dora", Role::Operator);
    app.exec("UPDATE users SET disabled = TRUE WHERE username = 'dora'");
    let b = app.browser();
    b.login("dora", &pw).await.assert_status(401);
}

#[tokio::test]
async fn logout_ends_the_session_even_for_a_copied_cookie() {
    let app = spawn_app().await;
    let b = app.admin().await;
    b.get("/channels").await.assert_status(200);
    // Keep a copy of the cookie as an attacker would.
    let url = reqwest::Url::parse(&b.url("/")).unwrap();
    let cookie = reqwest::cookie::CookieStore::cookies(&*b.jar, &url);
    let res = b.post_form("/logout", &[]).await;
    res.assert_status(303);
    assert_eq!(res.location(), Some("/login?logged_out=1"));
    let after = b.get("/channels").await;
    after.assert_status(303);
    if let Some(cookie) = cookie {
        let replay = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(b.url("/channels"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            replay.status().as_u16(),
            303,
            "a copied cookie must not outlive logout"
        );
    }
}

#[tokio::test]
async fn an_expired_session_redirects_pages_and_tells_htmx_to_go_to_login() {
    let app = spawn_app().await;
    let b = app.admin().await;
    b.get("/channels").await.assert_status(200);
    app.exec("UPDATE sessions SET expires_at = '2000-01-01 00:00:00'");
    let page = b.get("/channels").await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/login"));
    let hx = b.hx_get("/channels", "channels-table").await;
    hx.assert_status(401);
    assert_eq!(hx.header("hx-redirect"), Some("/login"));
}

#[tokio::test]
async fn a_login_renews_the_session_cookie() {
    let app = spawn_app().await;
    let b = app.browser();
    let first = b.get("/login").await;
    let before = first.header("set-cookie").map(str::to_owned);
    let res = b
        .post_form(
            "/login",
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    let after = res.header("set-cookie").map(str::to_owned);
    assert!(after.is_some(), "login sets a new cookie");
    assert_ne!(before, after);
    let cookie = after.unwrap();
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Strict"));
    assert!(
        !cookie.contains("Secure"),
        "Secure is off unless LATCHKEY_SECURE_COOKIES is set"
    );
}

#[tokio::test]
async fn secure_cookies_can_be_switched_on() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        env: vec![("LATCHKEY_SECURE_COOKIES".into(), "true".into())],
    })
    .await;
    let res = app.browser().get("/login").await;
    assert!(res.header("set-cookie").unwrap().contains("Secure"));
}

#[tokio::test]
async fn sessions_survive_a_restart_when_the_secret_is_set() {
    let app = spawn_app().await;
    let b = app.admin().await;
    b.get("/channels").await.assert_status(200);
    let db = app.db.clone();
    drop(app);
    let app2 = crate::helpers::spawn_on(db, crate::helpers::Options { env: vec![] }).await;
    let b2 = crate::helpers::Browser::with_jar(&app2.base, b.jar.clone(), Some(&b));
    b2.get("/channels").await.assert_status(200);
}

#[tokio::test]
async fn the_cli_creates_users_that_can_log_in() {
    let app = spawn_app().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["user", "create", "Sam", "--role", "support"])
        .env("DATABASE_URL", app.db.url())
        .env("LATCHKEY_PASSWORD", "sams-password-1234")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Created user `sam` with role support"));
    let b = app.browser();
    b.login("sam", "sams-password-1234")
        .await
        .assert_status(303);
    // A second create with the same name fails clearly.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["user", "create", "sam", "--role", "admin"])
        .env("DATABASE_URL", app.db.url())
        .env("LATCHKEY_PASSWORD", "sams-password-1234")
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[tokio::test]
async fn a_misspelled_database_scheme_is_refused_instead_of_creating_sqlite() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .env("DATABASE_URL", "postgress://localhost/x")
        .env("LATCHKEY_BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported DATABASE_URL scheme"));
}

/// Housekeeping (run by the change poller about every ten minutes) frees the rows of
/// ended sessions and leaves live ones working.
#[tokio::test]
async fn housekeeping_removes_ended_sessions_and_keeps_live_ones() {
    use diesel::prelude::*;
    use latchkey::db::schema::sessions;

    let app = spawn_app().await;
    let live = app.admin().await;
    let ended = app.admin().await;
    let count = |app: &crate::helpers::TestApp| -> i64 {
        sessions::table
            .count()
            .get_result(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(count(&app), 2);
    // End one session by moving its end into the past (the newest row is `ended`'s).
    let newest: i64 = sessions::table
        .select(sessions::id)
        .order(sessions::id.desc())
        .first(&mut *app.conn())
        .unwrap();
    diesel::update(sessions::table.find(newest))
        .set(sessions::expires_at.eq(latchkey::db::now() - time::Duration::minutes(1)))
        .execute(&mut *app.conn())
        .unwrap();
    ended.get("/channels").await.assert_status(303);
    let removed = latchkey::db::sessions::delete_expired(&mut app.conn()).unwrap();
    assert_eq!(removed, 1);
    assert_eq!(count(&app), 1);
    live.get("/channels").await.assert_status(200);
}
