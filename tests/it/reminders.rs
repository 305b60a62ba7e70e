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

/// The names of the rows of a keys page, in order.
fn row_names(body: &str) -> Vec<String> {
    body.split("class=\"cell-strong key-link\" href=\"/keys/")
        .skip(1)
        .map(|part| {
            let start = part.find('>').unwrap() + 1;
            let end = part[start..].find('<').unwrap() + start;
            part[start..end].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_table_sorts_by_expiry_soonest_first_across_pages_and_never_last() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Sorted", "100").await;
    crate::fixtures::seed(&app, cid, (0..25).map(|i| format!("k{i:02}")));
    // k00..k19 expire i days from now (in shuffled order of creation); k20..k24 never.
    for i in 0..20i64 {
        let days = (i * 7) % 20 + 1;
        diesel::update(
            latchkey::db::schema::api_keys::table
                .filter(latchkey::db::schema::api_keys::name.eq(format!("k{i:02}"))),
        )
        .set(
            latchkey::db::schema::api_keys::expires_at
                .eq(Some(latchkey::db::now() + Duration::days(days))),
        )
        .execute(&mut *app.conn())
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut href = format!("/channels/{cid}/keys?sort=expires&size=10");
    for _ in 0..5 {
        let page = admin.get(&href).await;
        page.assert_status(200);
        seen.extend(row_names(&page.body));
        let Some(at) = page.body.find("rel=\"next\" href=\"") else {
            break;
        };
        let start = at + "rel=\"next\" href=\"".len();
        let end = page.body[start..].find('"').unwrap() + start;
        href = page.body[start..end]
            .replace("&#38;", "&")
            .replace("&amp;", "&");
    }
    assert_eq!(seen.len(), 25, "every key once, in three pages: {seen:?}");
    let days_of = |name: &str| {
        let i: i64 = name[1..].parse().unwrap();
        if i < 20 { (i * 7) % 20 + 1 } else { i64::MAX }
    };
    let order: Vec<i64> = seen.iter().map(|n| days_of(n)).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "soonest first, never last: {seen:?}");
    // Descending: never-expiring first.
    let page = admin
        .get(&format!(
            "/channels/{cid}/keys?sort=expires&dir=desc&size=10"
        ))
        .await;
    assert!(
        row_names(&page.body)
            .iter()
            .take(5)
            .all(|n| days_of(n) == i64::MAX)
    );
}

#[tokio::test]
async fn operators_see_the_banner_with_links_to_each_channels_expiring_keys() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.admin().await;
    let a = channel(&app, &admin, "Alpha", "20").await;
    let b = channel(&app, &admin, "Beta", "20").await;
    let soon = crate::fixtures::days_from_now(2);
    for (cid, name) in [(a, "a1"), (a, "a2"), (b, "b1")] {
        key(&admin, cid, name, &["verify"], &[("expires_at", &soon)]).await;
    }
    key(
        &admin,
        b,
        "later",
        &["verify"],
        &[("expires_at", &crate::fixtures::days_from_now(9))],
    )
    .await;
    let operator = app.user(latchkey::domain::role::Role::Operator).await;
    let page = operator
        .get("/channels")
        .await
        .body
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(page.contains("3 keys expire within 7 days."), "{page}");
    assert!(page.contains(&format!(
        "href=\"/channels/{a}/keys?risk=expiring&sort=expires\">Alpha</a>: 2"
    )));
    assert!(page.contains(&format!(
        "href=\"/channels/{b}/keys?risk=expiring&sort=expires\">Beta</a>: 1"
    )));
    assert!(
        !page.contains("href=\"/keys?risk=expiring"),
        "operators have no All keys"
    );
    let list = operator
        .get(&format!("/channels/{b}/keys?risk=expiring&sort=expires"))
        .await
        .body;
    assert_eq!(row_names(&list), vec!["b1"]);
    assert!(list.contains(
        "id=\"filter-expiring\" type=\"checkbox\" name=\"risk\" value=\"expiring\" checked"
    ));
}
