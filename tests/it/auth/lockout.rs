//! Issue 11, logins and accounts: throttling counts per account and address (an IPv6
//! address as its /64), never locks the real user out from elsewhere, is audited as
//! counts, and `latchkey user unlock` clears it.

use diesel::prelude::*;
use latchkey::db::schema::audit_events;

use crate::helpers::{ADMIN_PASSWORD, Options, TestApp, extract_csrf, spawn_app_with};

/// A server that believes X-Forwarded-For from loopback, so each test client can
/// speak from an address of its own.
pub(crate) async fn app_behind_proxy() -> TestApp {
    spawn_app_with(Options {
        env: vec![("LATCHKEY_TRUSTED_PROXIES".into(), "127.0.0.1/32".into())],
    })
    .await
}

/// A browser that speaks from `address` (through the trusted proxy).
pub(crate) struct From {
    pub client: reqwest::Client,
    base: String,
    address: String,
    csrf: String,
}

impl From {
    pub async fn new(app: &TestApp, address: &str) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut me = From {
            client,
            base: app.base.clone(),
            address: address.to_owned(),
            csrf: String::new(),
        };
        let page = me.get("/login").await.1;
        me.csrf = extract_csrf(&page).expect("csrf token on the login page");
        me
    }

    pub async fn get(&self, path: &str) -> (u16, String, Option<String>) {
        let res = self
            .client
            .get(format!("http://{}{}", self.base, path))
            .header("x-forwarded-for", &self.address)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, res.text().await.unwrap(), location)
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", &self.csrf)];
        form.extend_from_slice(fields);
        let res = self
            .client
            .post(format!("http://{}{}", self.base, path))
            .header("x-forwarded-for", &self.address)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        if let Some(t) = extract_csrf(&body) {
            self.csrf = t;
        }
        (status, body)
    }

    pub async fn login(&mut self, user: &str, password: &str) -> u16 {
        let status = self
            .post("/login", &[("username", user), ("password", password)])
            .await
            .0;
        if status == 303 {
            // Pick up the session's new CSRF token from a page.
            if let Some(t) = extract_csrf(&self.get("/channels").await.1) {
                self.csrf = t;
            }
        }
        status
    }
}

#[tokio::test]
async fn failures_from_one_address_do_not_lock_the_real_user_out_from_another() {
    let app = app_behind_proxy().await;
    let mut attacker = From::new(&app, "203.0.113.5").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(attacker.login("admin", "guess-guess-guess").await);
    }
    assert_eq!(&statuses[..5], &[401; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // The real admin, from an address that has not been failing, gets in.
    let mut admin = From::new(&app, "198.51.100.7").await;
    assert_eq!(admin.login("admin", ADMIN_PASSWORD).await, 303);
    assert_eq!(admin.get("/channels").await.0, 200);
    // The attacking address stays throttled, even with the right password.
    assert_eq!(attacker.login("admin", ADMIN_PASSWORD).await, 429);
}

#[tokio::test]
async fn one_address_is_throttled_across_accounts_and_ipv6_counts_by_its_64() {
    let app = app_behind_proxy().await;
    // Twenty failures on twenty names, each from another host of one /64.
    for i in 0..20 {
        let mut b = From::new(&app, &format!("2001:db8:1:2::{:x}", i + 1)).await;
        assert_eq!(b.login(&format!("user{i}"), "wrong-password-1").await, 401);
    }
    let mut same_64 = From::new(&app, "2001:db8:1:2:ffff::9").await;
    assert_eq!(same_64.login("someone-new", "wrong-password-1").await, 429);
    let mut other_64 = From::new(&app, "2001:db8:1:3::1").await;
    assert_eq!(other_64.login("admin", ADMIN_PASSWORD).await, 303);
}

#[tokio::test]
async fn a_hundred_failed_logins_write_a_few_counted_audit_lines() {
    let app = app_behind_proxy().await;
    let mut attacker = From::new(&app, "203.0.113.77").await;
    for _ in 0..100 {
        let s = attacker.login("admin", "guess-guess-guess").await;
        assert!(s == 401 || s == 429, "{s}");
    }
    let rows: Vec<(String, i64)> = audit_events::table
        .filter(audit_events::action.like("login%"))
        .select((audit_events::action, audit_events::repeat_count))
        .load(&mut *app.conn())
        .unwrap();
    assert!(
        rows.len() <= 6,
        "one counted line per action and minute, not one per attempt: {rows:?}"
    );
    let total: i64 = rows.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 100, "every attempt is counted: {rows:?}");
    let throttled: i64 = rows
        .iter()
        .filter(|(a, _)| a == "login.throttled")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(throttled, 95);
    // The counts are on the audit page.
    let admin = app.admin().await;
    let page = admin.get("/audit?action=login.throttled").await;
    page.assert_status(200);
    assert!(page.body.contains("×"), "{}", page.body);
}

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env("DATABASE_URL", app.db.url())
        .output()
        .unwrap()
}

#[tokio::test]
async fn user_unlock_clears_an_accounts_throttle_and_is_audited() {
    let app = app_behind_proxy().await;
    let mut from = From::new(&app, "203.0.113.8").await;
    for _ in 0..6 {
        from.login("admin", "guess-guess-guess").await;
    }
    assert_eq!(from.login("admin", ADMIN_PASSWORD).await, 429);
    let out = cli(&app, &["user", "unlock", "Admin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Unlocked `admin`"));
    assert_eq!(from.login("admin", ADMIN_PASSWORD).await, 303);
    let audited: Vec<(String, String)> = audit_events::table
        .filter(audit_events::action.eq("user.unlock"))
        .select((audit_events::actor, audit_events::details))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].0, "cli");
    assert!(audited[0].1.contains("unlocked admin"), "{audited:?}");
    let unknown = cli(&app, &["user", "unlock", "nobody"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user named `nobody`"));
}

/// Each attempt is counted before its password is checked: twenty guesses at once from
/// one address cannot all slip past the five free ones while their hashes run.
#[tokio::test]
async fn concurrent_guesses_are_counted_before_their_passwords_are_checked() {
    let app = spawn_app_with(Options {
        env: vec![
            ("LATCHKEY_TRUSTED_PROXIES".into(), "127.0.0.1/32".into()),
            // Room for every guess at once, so only the counting can stop them.
            ("LATCHKEY_PASSWORD_CHECKS".into(), "20".into()),
            ("LATCHKEY_DB_POOL_SIZE".into(), "20".into()),
        ],
    })
    .await;
    let mut guesses = Vec::new();
    for _ in 0..20 {
        let mut b = From::new(&app, "203.0.113.99").await;
        guesses.push(async move { b.login("admin", "guess-guess-guess").await });
    }
    let statuses = futures_util::future::join_all(guesses).await;
    let refused_by_password = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(refused_by_password, 5, "{statuses:?}");
    assert_eq!(throttled, 15, "{statuses:?}");
}
