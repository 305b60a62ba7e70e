//! Expiry reminders: each lead time (30, 7 and 1 days by default) sends its
//! `key.expiring` event once per key, with the days left, even across restarts and
//! several instances, and starts over when the expiry changes. The scan runs on a
//! clock the test moves (an in-process state over the server's own database).

use diesel::prelude::*;
use latchkey::app::notices::queue_expiry_notices;
use latchkey::config::Settings;
use latchkey::db::schema::outbox;
use latchkey::domain::clock::Clock;
use latchkey::state::AppState;
use time::{Duration, PrimitiveDateTime};

use crate::fixtures::{UNREACHABLE_HOOK, channel, key, key_id_of, loopback_receivers, stored};
use crate::helpers::{TestApp, spawn_app_with};

/// Another instance over the app's database, on its own clock (a new one is what a
/// restart is: nothing but the database is remembered).
fn instance(app: &TestApp, clock: &Clock) -> AppState {
    let url = app.db.url().to_owned();
    let pool = latchkey::db::connect(&url, 2).unwrap();
    AppState::detached(Settings::for_database(&url), pool, clock.clone())
}

/// The `days_left` of every `key.expiring` event queued for the key, oldest first.
fn reminders_of(app: &TestApp, key_db_id: i64) -> Vec<i64> {
    let payloads: Vec<String> = outbox::table
        .filter(outbox::api_key_id.eq(key_db_id))
        .filter(outbox::event_type.eq("key.expiring"))
        .order(outbox::id)
        .select(outbox::payload)
        .load(&mut *app.conn())
        .unwrap();
    payloads
        .iter()
        .map(|p| {
            let v: serde_json::Value = serde_json::from_str(p).unwrap();
            v["data"]["days_left"].as_i64().expect("days_left")
        })
        .collect()
}

fn before(expires: PrimitiveDateTime, days: i64) -> PrimitiveDateTime {
    // A minute after the lead time begins.
    expires - Duration::days(days) + Duration::minutes(1)
}

#[tokio::test]
async fn each_lead_time_sends_once_across_restarts_and_instances_and_starts_over_on_a_new_expiry() {
    // The server's own scan runs once, at start (its clock is real; ours is moved).
    let mut options = loopback_receivers();
    options
        .env
        .push(("LATCHKEY_POSTBACK_POLL_MS".into(), "100000000".into()));
    let app = spawn_app_with(options).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Reminded", "20").await;
    let at = crate::fixtures::days_from_now(40);
    let plain = key(
        &admin,
        cid,
        "soon",
        &["verify"],
        &[("expires_at", &at), ("postback_url", UNREACHABLE_HOOK)],
    )
    .await;
    let kid = key_id_of(&plain);
    let row = stored(&app, &kid);
    let expires = row.expires_at.unwrap();

    let clock = Clock::manual(expires - Duration::days(31));
    let a = instance(&app, &clock);
    assert_eq!(queue_expiry_notices(&a).await.unwrap(), 0, "31 days out");

    clock.set(before(expires, 30));
    assert_eq!(queue_expiry_notices(&a).await.unwrap(), 1);
    assert_eq!(queue_expiry_notices(&a).await.unwrap(), 0, "sent once");
    // A restart remembers nothing but the database.
    drop(a);
    let restarted = instance(&app, &clock);
    assert_eq!(queue_expiry_notices(&restarted).await.unwrap(), 0);
    assert_eq!(reminders_of(&app, row.id), vec![30]);

    // Two instances scanning at once: one of them sends it.
    clock.set(before(expires, 7));
    let b = instance(&app, &clock);
    let (x, y) = tokio::join!(queue_expiry_notices(&restarted), queue_expiry_notices(&b));
    assert_eq!(x.unwrap() + y.unwrap(), 1);

    clock.set(before(expires, 1));
    assert_eq!(queue_expiry_notices(&b).await.unwrap(), 1);
    clock.set(expires - Duration::hours(1));
    assert_eq!(queue_expiry_notices(&b).await.unwrap(), 0);
    assert_eq!(reminders_of(&app, row.id), vec![30, 7, 1]);
    let audit = admin.get("/audit").await.body;
    assert!(audit.contains("(7 days left)"), "the reminder is audited");

    // A new expiry starts over: 20 days out is inside the 30-day lead time.
    let new_at = crate::fixtures::days_from_now(20);
    let form = admin.get(&format!("/keys/{kid}/edit")).await;
    form.assert_status(200);
    admin
        .post_form(
            &format!("/keys/{kid}"),
            &[
                ("name", "soon"),
                ("scopes", "verify"),
                ("expires_at", &new_at),
                ("postback_url", UNREACHABLE_HOOK),
                ("enabled", "on"),
            ],
        )
        .await
        .assert_status(303);
    clock.set(latchkey::db::now());
    assert_eq!(queue_expiry_notices(&b).await.unwrap(), 1);
    assert_eq!(queue_expiry_notices(&b).await.unwrap(), 0);
    let sent = reminders_of(&app, row.id);
    assert_eq!(sent.len(), 4);
    assert!((19..=20).contains(&sent[3]), "{sent:?}");
}

#[tokio::test]
async fn a_key_closer_than_several_lead_times_hears_only_the_shortest() {
    let app = spawn_app_with(loopback_receivers()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Close", "20").await;
    let at = crate::fixtures::days_from_now(5);
    let kid = key_id_of(
        &key(
            &admin,
            cid,
            "five",
            &["verify"],
            &[("expires_at", &at), ("postback_url", UNREACHABLE_HOOK)],
        )
        .await,
    );
    let no_hook = key_id_of(&key(&admin, cid, "quiet", &["verify"], &[("expires_at", &at)]).await);
    let clock = Clock::manual(latchkey::db::now());
    let state = instance(&app, &clock);
    // The server's own scan (real clock) may have sent it already: once, either way.
    queue_expiry_notices(&state).await.unwrap();
    queue_expiry_notices(&state).await.unwrap();
    let row = stored(&app, &kid);
    let sent = reminders_of(&app, row.id);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!((4..=5).contains(&sent[0]));
    assert!(reminders_of(&app, stored(&app, &no_hook).id).is_empty());
    // Then the 1-day reminder, once.
    clock.set(before(row.expires_at.unwrap(), 1));
    assert_eq!(queue_expiry_notices(&state).await.unwrap(), 1);
    assert_eq!(reminders_of(&app, row.id).len(), 2);

    // The Channels page says how many keys expire within 7 days and links to them.
    let page = admin.get("/channels").await.body;
    assert!(page.contains("id=\"expiry-banner\""));
    assert!(page.contains("2 keys expire within 7 days."), "{page}");
    let link = page
        .find("href=\"/keys?risk=expiring&")
        .expect("a link to the expiring keys");
    assert!(page[link..link + 60].contains("sort=expires"));
    let list = admin.get("/keys?risk=expiring&sort=expires").await.body;
    assert!(list.contains("five") && list.contains("quiet"));
}

#[test]
fn lead_times_are_checked_at_start() {
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .env_clear()
        .env("LATCHKEY_EXPIRY_REMINDER_DAYS", "30,0")
        .env("DATABASE_URL", "sqlite:///nonexistent/never.db")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("expiry-reminder-days") || err.contains("EXPIRY_REMINDER"),
        "{err}"
    );
}
