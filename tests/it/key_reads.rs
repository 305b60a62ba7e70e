//! The API's read path, `GET /api/v1/keys/{id}`: answered from memory, yet every write
//! is seen at once on the instance that made it and within a second on the others, and
//! every permission check still runs on every request.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use reqwest::Method;
use serde_json::json;

use crate::fixtures::{
    ALL_SCOPES, channel, key, key_id_of, lift_system_limit, system_channel, within_a_second,
};
use crate::helpers::{Api, Options, TestApp, spawn_app_with, spawn_on};

/// Reads stay in memory for ten minutes unless a change says otherwise: only the
/// invalidation of changed keys can make these tests see a write.
fn long_lived_reads() -> Options {
    Options {
        env: vec![
            ("LATCHKEY_KEY_READ_FRESH_MS".into(), "600000".into()),
            ("LATCHKEY_USAGE_FLUSH_MS".into(), "50".into()),
        ],
    }
}

async fn two_instances() -> (TestApp, TestApp) {
    let one = spawn_app_with(long_lived_reads()).await;
    let two = spawn_on(one.db.clone(), long_lived_reads()).await;
    (one, two)
}

/// A system key with every scope (reaches every channel).
async fn ops_key(app: &TestApp) -> String {
    lift_system_limit(app);
    let admin = app.admin().await;
    key(&admin, system_channel(app), "ops", ALL_SCOPES, &[]).await
}

async fn patch(api: &Api, key_id: &str, body: serde_json::Value) {
    let res = api
        .send(Method::PATCH, &format!("/keys/{key_id}"), Some(body))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test]
async fn reading_a_key_again_is_answered_from_memory() {
    let app = spawn_app_with(long_lived_reads()).await;
    let ops = app.api(&ops_key(&app).await);
    let admin = app.admin().await;
    let acme = channel(&app, &admin, "Acme", "50").await;
    let target = key_id_of(&key(&admin, acme, "target", &["verify"], &[]).await);
    for _ in 0..20 {
        let got = ops.get(&format!("/keys/{target}")).await;
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(got.body["name"], "target");
    }
    assert_eq!(
        metric(&app, "latchkey_key_read_cache_lookups_total").await,
        1.0,
        "one database read for twenty requests"
    );
}

#[tokio::test]
async fn a_key_read_follows_writes_at_once_here_and_within_a_second_elsewhere() {
    let (one, two) = two_instances().await;
    let plain = ops_key(&one).await;
    let (on_one, on_two) = (one.api(&plain), two.api(&plain));
    let created = on_one
        .post("/keys", json!({"name": "target", "scopes": ["verify"]}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let kid = created.body["data"]["key_id"].as_str().unwrap().to_owned();
    let path = format!("/keys/{kid}");
    assert_eq!(on_two.get(&path).await.body["name"], "target"); // now held on two
    assert_eq!(on_one.get(&path).await.body["name"], "target"); // and on one

    // Renamed and given other scopes on one: one answers it at once, two within a second.
    patch(
        &on_one,
        &kid,
        json!({"name": "renamed", "scopes": ["verify", "keys:read"]}),
    )
    .await;
    let got = on_one.get(&path).await.body;
    assert_eq!(
        (got["name"].clone(), got["scopes"].clone()),
        (json!("renamed"), json!(["keys:read", "verify"])),
        "{got}"
    );
    within_a_second("a rename on one is read on two", || async {
        let got = on_two.get(&path).await.body;
        got["name"] == "renamed" && got["scopes"] == json!(["keys:read", "verify"])
    })
    .await;

    // Deactivated on one.
    let off = on_one.post(&format!("{path}/disable"), json!({})).await;
    assert_eq!(off.body["status"], "inactive");
    within_a_second("a deactivation on one is read on two", || async {
        on_two.get(&path).await.body["status"] == "inactive"
    })
    .await;

    // Changed on two: two's very next read shows it.
    patch(&on_two, &kid, json!({"description": "from two"})).await;
    assert_eq!(on_two.get(&path).await.body["description"], "from two");

    // Deleted on one: gone on two within a second.
    let gone = on_one.send(Method::DELETE, &path, None).await;
    assert_eq!(gone.status, 204);
    assert_eq!(on_one.get(&path).await.status, 404, "at once on one");
    within_a_second("a delete on one is read on two", || async {
        on_two.get(&path).await.status == 404
    })
    .await;
}

#[tokio::test]
async fn the_callers_own_key_changed_on_one_instance_binds_it_on_the_other() {
    let (one, two) = two_instances().await;
    let ops = one.api(&ops_key(&one).await);
    let admin = one.admin().await;
    let acme = channel(&one, &admin, "Acme", "50").await;
    let target = key_id_of(&key(&admin, acme, "target", &["verify"], &[]).await);
    let reader = key(&admin, acme, "reader", &["keys:read", "verify"], &[]).await;
    let reader_id = key_id_of(&reader);
    let path = format!("/keys/{target}");
    let on_two = two.api(&reader);
    assert_eq!(on_two.get(&path).await.status, 200);

    // keys:read taken away on one: two refuses the read within a second.
    patch(&ops, &reader_id, json!({"scopes": ["verify"]})).await;
    within_a_second("a scope removed on one binds the caller on two", || async {
        let res = on_two.get(&path).await;
        res.status == 403 && res.body["error"]["code"] == "INSUFFICIENT_SCOPE"
    })
    .await;
    patch(&ops, &reader_id, json!({"scopes": ["verify", "keys:read"]})).await;
    within_a_second("a scope given back on one is honoured on two", || async {
        on_two.get(&path).await.status == 200
    })
    .await;

    // The caller's key deactivated on one.
    let off = ops
        .post(&format!("/keys/{reader_id}/disable"), json!({}))
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    let revoked_at = Instant::now();
    within_a_second("a caller revoked on one is refused by two", || async {
        on_two.get(&path).await.status == 401
    })
    .await;
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_key_held_in_memory_stays_out_of_reach_of_other_channels_and_scopes() {
    let app = spawn_app_with(long_lived_reads()).await;
    let ops = app.api(&ops_key(&app).await);
    let admin = app.admin().await;
    let acme = channel(&app, &admin, "Acme", "50").await;
    let other = channel(&app, &admin, "Other", "50").await;
    let foreign = key_id_of(&key(&admin, other, "foreign", &["verify"], &[]).await);
    let path = format!("/keys/{foreign}");
    // A system key reads it first, so it is held in memory.
    assert_eq!(ops.get(&path).await.status, 200);
    assert_eq!(ops.get(&path).await.status, 200);

    let reader = app.api(&key(&admin, acme, "reader", &["keys:read"], &[]).await);
    let res = reader.get(&path).await;
    assert_eq!(res.status, 404, "existence never leaks across channels");
    assert_eq!(
        res.body,
        reader.get("/keys/AAAAAAAAAAAA").await.body,
        "the same answer as for a key that does not exist"
    );
    let writer = app.api(&key(&admin, other, "writer", &["keys:write"], &[]).await);
    let res = writer.get(&path).await;
    assert_eq!(res.status, 403);
    assert_eq!(res.body["error"]["code"], "INSUFFICIENT_SCOPE");
    let fenced = app.api(
        &key(
            &admin,
            other,
            "fenced",
            &["keys:read"],
            &[("cidr", "10.0.0.0/8")],
        )
        .await,
    );
    let res = fenced.get(&path).await;
    assert_eq!(res.status, 403);
    assert_eq!(res.body["error"]["code"], "IP_NOT_ALLOWED");
    let bad = app.api("lk_notakey");
    assert_eq!(bad.get(&path).await.status, 401);
}

#[tokio::test]
async fn usage_figures_read_over_the_api_are_at_most_a_second_older_than_written() {
    let app = spawn_app_with(Options {
        env: vec![("LATCHKEY_USAGE_FLUSH_MS".into(), "50".into())],
    })
    .await;
    let ops = app.api(&ops_key(&app).await);
    let admin = app.admin().await;
    let acme = channel(&app, &admin, "Acme", "50").await;
    let target = key(&admin, acme, "target", &["keys:read"], &[]).await;
    let path = format!("/keys/{}", key_id_of(&target));
    let before = ops.get(&path).await.body;
    assert_eq!(before["last_used_at"], serde_json::Value::Null, "{before}");
    // The target uses the API itself: a use, written within a flush interval.
    assert_eq!(app.api(&target).get(&path).await.status, 200);
    let used_at = Instant::now();
    loop {
        let got = ops.get(&path).await.body;
        if got["last_used_at"].is_string() && got["requests_24h"] == 1 {
            break;
        }
        assert!(
            used_at.elapsed() < Duration::from_millis(1_800),
            "the use is not shown within a flush and a second: {got}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_key_held_in_memory_reads_as_expired_from_its_expiry_on() {
    let app = spawn_app_with(long_lived_reads()).await;
    let ops = app.api(&ops_key(&app).await);
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap();
    let (_, kid) = crate::limits::create(&ops, json!({"name": "brief", "expires_at": soon})).await;
    let path = format!("/keys/{kid}");
    assert_eq!(ops.get(&path).await.body["status"], "active");
    assert_eq!(ops.get(&path).await.body["status"], "active", "held");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let got = ops.get(&path).await.body;
    assert_eq!(got["status"], "expired", "{got}");
    assert_eq!(
        metric(&app, "latchkey_key_read_cache_lookups_total").await,
        1.0,
        "the held read, answered anew by the clock"
    );
}

/// A held read that went stale is read again once for every request that asks for it
/// meanwhile. They used to read it each: on PostgreSQL under load, every time a busy
/// key's read went stale, all connections queued for the pool at once (p99 0.4-1 s).
/// On PostgreSQL the key table is locked during the burst, so every request that reads
/// for itself is still waiting when the next one arrives.
#[tokio::test]
async fn a_stale_read_is_read_again_once_for_a_burst_of_requests() {
    let app = spawn_app_with(Options {
        env: vec![("LATCHKEY_KEY_READ_FRESH_MS".into(), "1500".into())],
    })
    .await;
    let ops = app.api(&ops_key(&app).await);
    let admin = app.admin().await;
    let acme = channel(&app, &admin, "Acme", "50").await;
    let target = key_id_of(&key(&admin, acme, "target", &["verify"], &[]).await);
    let path = format!("/keys/{target}");
    assert_eq!(ops.get(&path).await.status, 200);
    let before = metric(&app, "latchkey_key_read_cache_lookups_total").await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let lock = if app.db.url().starts_with("postgres") {
        {
            let mut c = app.conn();
            let (locked, is_locked) = std::sync::mpsc::channel();
            let holder = std::thread::spawn(move || {
                c.batch_execute("BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
                    .expect("lock");
                locked.send(()).expect("signal");
                std::thread::sleep(Duration::from_millis(500));
                c.batch_execute("COMMIT").expect("unlock");
            });
            is_locked.recv().expect("locked");
            Some(holder)
        }
    } else {
        None
    };
    let burst = (0..30).map(|_| ops.get(&path));
    for res in futures_util::future::join_all(burst).await {
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["key_id"], target.as_str());
    }
    if let Some(holder) = lock {
        holder.join().expect("lock holder");
    }
    assert_eq!(
        metric(&app, "latchkey_key_read_cache_lookups_total").await - before,
        1.0,
        "one read for the whole burst"
    );
}
