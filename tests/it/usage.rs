//! Usage that scales: rollups count every use by outcome, the raw request log is
//! bounded (one row per verification, none for requests refused before a key is known,
//! pruned by age and per key), and charts and usage figures come from rollups alone.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use latchkey::db::schema::{audit_events, request_log, usage_rollups};
use serde_json::json;

use crate::fixtures::{channel, key, key_id_of, rollup_total, stored};
use crate::helpers::{Options, TestApp, spawn_app_with};

fn options(extra: &[(&str, &str)]) -> Options {
    let mut env = vec![
        ("LATCHKEY_USAGE_FLUSH_MS".to_owned(), "50".to_owned()),
        ("LATCHKEY_RETENTION_EVERY_MS".to_owned(), "100".to_owned()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Options { env }
}

/// Waits (up to 5 s) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < Duration::from_secs(5), "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn raw_rows(app: &TestApp, api_key_id: i64) -> i64 {
    request_log::table
        .filter(request_log::api_key_id.eq(api_key_id))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

fn all_raw_rows(app: &TestApp) -> i64 {
    request_log::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

fn day_string(days_ago: i64) -> String {
    (latchkey::db::now() - time::Duration::days(days_ago))
        .format(&time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap()
}

#[tokio::test]
async fn rollups_count_every_use_by_outcome_and_unknown_keys_leave_no_rows() {
    let app = spawn_app_with(options(&[])).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Counted", "50").await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let target = key(
        &admin,
        cid,
        "target",
        &["keys:read"],
        &[("cidr", "10.0.0.0/8")],
    )
    .await;
    let api = app.api(&verifier);
    for _ in 0..7 {
        assert_eq!(api.code(&target, Some("10.1.2.3"), &[]).await, "VALID");
    }
    for _ in 0..3 {
        assert_eq!(
            api.code(&target, Some("192.0.2.1"), &[]).await,
            "IP_NOT_ALLOWED"
        );
    }
    assert_eq!(
        api.code(&target, Some("10.1.2.3"), &["keys:write"]).await,
        "INSUFFICIENT_SCOPE"
    );
    // Refused before any key is known: a malformed key, an unknown key, a bad bearer.
    let mut broken = target.clone();
    broken.pop();
    broken.push(if target.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(api.code(&broken, None, &[]).await, "MALFORMED");
    assert_eq!(api.code("not a key at all", None, &[]).await, "MALFORMED");
    let (unknown, _) = latchkey::domain::key::PlainKey::generate("lk");
    let unknown = unknown.reveal().to_owned();
    assert_eq!(api.code(&unknown, None, &[]).await, "NOT_FOUND");
    for bearer in ["lk_nonsense", unknown.as_str()] {
        assert_eq!(app.api(bearer).get("/keys").await.status, 401);
    }

    let (verifier_id, target_id) = (
        stored(&app, &key_id_of(&verifier)).id,
        stored(&app, &key_id_of(&target)).id,
    );
    eventually("the flusher wrote every count", || {
        rollup_total(&app, 0, "day", None) == 5 && rollup_total(&app, target_id, "day", None) == 11
    })
    .await;
    for period in ["minute", "hour", "day"] {
        assert_eq!(rollup_total(&app, target_id, period, Some("VALID")), 7);
        assert_eq!(
            rollup_total(&app, target_id, period, Some("IP_NOT_ALLOWED")),
            3
        );
        assert_eq!(
            rollup_total(&app, target_id, period, Some("INSUFFICIENT_SCOPE")),
            1
        );
        // Every request the verifier made, counted as its own API use.
        assert_eq!(rollup_total(&app, verifier_id, period, Some("API_2XX")), 14);
        assert_eq!(rollup_total(&app, 0, period, Some("MALFORMED")), 2);
        assert_eq!(rollup_total(&app, 0, period, Some("NOT_FOUND")), 1);
        assert_eq!(rollup_total(&app, 0, period, Some("UNAUTHENTICATED")), 2);
    }
    // One raw row per verification (the verified key's), none for the caller's
    // verification requests, none for anything refused before a key was known.
    assert_eq!(raw_rows(&app, target_id), 11);
    assert_eq!(raw_rows(&app, verifier_id), 0);
    assert_eq!(raw_rows(&app, 0), 0);
    assert_eq!(all_raw_rows(&app), 11);
    // The key's figures grew with its uses.
    let k = stored(&app, &key_id_of(&target));
    assert_eq!((k.uses_24h, k.uses_30d), (11, 11));
}

#[tokio::test]
async fn retention_prunes_the_raw_log_by_age_and_per_key_and_old_rollups_and_audit_lines() {
    let app = spawn_app_with(options(&[
        ("LATCHKEY_REQUEST_LOG_PER_KEY", "10"),
        ("LATCHKEY_REQUEST_LOG_DAYS", "7"),
        ("LATCHKEY_AUDIT_KEEP_DAYS", "30"),
    ]))
    .await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Kept", "50").await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let target = key(&admin, cid, "target", &[], &[]).await;
    let quiet = key(&admin, cid, "quiet", &[], &[]).await;
    let (target_id, quiet_id) = (
        stored(&app, &key_id_of(&target)).id,
        stored(&app, &key_id_of(&quiet)).id,
    );
    // Rows from before: 8 days old (past the age limit) and 2 days old (kept).
    for (days, n) in [(8, 5), (2, 3)] {
        for _ in 0..n {
            app.exec(&format!(
                "INSERT INTO request_log (occurred_at, api_key_id, channel_id, method, route, status, kind) \
                 VALUES ('{} 12:00:00', {quiet_id}, {cid}, 'GET', '/api/v1/keys', 200, 'api')",
                day_string(days)
            ));
        }
    }
    // Rollups past their periods' retention (minute 48 h, hour 90 days, day 400 days)
    // and within it.
    for (period, days, n) in [
        ("minute", 3, 1),
        ("minute", 1, 2),
        ("hour", 91, 4),
        ("hour", 89, 8),
        ("day", 401, 16),
        ("day", 399, 32),
    ] {
        app.exec(&format!(
            "INSERT INTO usage_rollups (api_key_id, period, bucket_start, outcome, count) \
             VALUES ({quiet_id}, '{period}', '{} 00:00:00', 'VALID', {n})",
            day_string(days)
        ));
    }
    // Audit lines older and younger than LATCHKEY_AUDIT_KEEP_DAYS.
    for days in [40, 10] {
        app.exec(&format!(
            "INSERT INTO audit_events (occurred_at, actor, action, details, repeat_count) \
             VALUES ('{} 00:00:00', 'old-admin', 'test.line{days}', '', 1)",
            day_string(days)
        ));
    }
    let api = app.api(&verifier);
    for _ in 0..25 {
        assert_eq!(api.code(&target, None, &[]).await, "VALID");
    }
    // Counts are never pruned with the raw rows; once all 25 are counted, all are
    // written (one transaction per flush), so the cap is what remains to be seen.
    eventually("rollups count all 25", || {
        rollup_total(&app, target_id, "day", Some("VALID")) == 25
    })
    .await;
    eventually("the log keeps the 10 newest rows of the busy key", || {
        raw_rows(&app, target_id) == 10
    })
    .await;
    eventually("rows past 7 days are gone", || {
        raw_rows(&app, quiet_id) == 3
    })
    .await;
    // The 10 kept are the newest.
    let newest: Vec<i64> = request_log::table
        .filter(request_log::api_key_id.eq(target_id))
        .select(request_log::id)
        .load(&mut *app.conn())
        .unwrap();
    let max: Option<i64> = request_log::table
        .filter(request_log::api_key_id.eq(target_id))
        .select(diesel::dsl::max(request_log::id))
        .first(&mut *app.conn())
        .unwrap();
    assert!(
        newest.iter().all(|id| *id > max.unwrap() - 10 - 5),
        "{newest:?} {max:?}"
    );
    eventually("old rollups are gone", || {
        rollup_total(&app, quiet_id, "minute", None) == 2
            && rollup_total(&app, quiet_id, "hour", None) == 8
            && rollup_total(&app, quiet_id, "day", None) == 32
    })
    .await;
    eventually("old audit lines are gone", || {
        let lines: Vec<String> = audit_events::table
            .filter(audit_events::actor.eq("old-admin"))
            .select(audit_events::action)
            .load(&mut *app.conn())
            .unwrap();
        lines == ["test.line10"]
    })
    .await;
}

#[tokio::test]
async fn the_audit_log_is_kept_for_ever_by_default() {
    let app = spawn_app_with(options(&[])).await;
    app.exec(&format!(
        "INSERT INTO audit_events (occurred_at, actor, action, details, repeat_count) \
         VALUES ('{} 00:00:00', 'old-admin', 'test.ancient', '', 1)",
        day_string(3000)
    ));
    // A few retention passes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n: i64 = audit_events::table
        .filter(audit_events::actor.eq("old-admin"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn charts_figures_sorting_and_idle_checks_come_from_rollups_alone() {
    let app = spawn_app_with(options(&[])).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Charted", "50").await;
    let busy = key(&admin, cid, "busy", &[], &[]).await;
    let calm = key(&admin, cid, "calm", &[], &[]).await;
    let reader = key(&admin, cid, "reader", &["keys:read"], &[]).await;
    key(&admin, cid, "never", &[], &[]).await;
    let (busy_id, calm_id) = (
        stored(&app, &key_id_of(&busy)).id,
        stored(&app, &key_id_of(&calm)).id,
    );
    // Rollups only: the raw log stays empty.
    let now = latchkey::db::now();
    let this_hour = now.replace_time(time::Time::from_hms(now.hour(), 0, 0).unwrap());
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let at = |t: time::PrimitiveDateTime| t.format(&fmt).unwrap();
    let today = now.replace_time(time::Time::MIDNIGHT);
    let rows = [
        // busy: 1,000 this hour and 500 three hours ago (today or yesterday), 4,000
        // ten days ago; calm: 7 today.
        (busy_id, "hour", at(this_hour), "VALID", 1000),
        (
            busy_id,
            "hour",
            at(this_hour - time::Duration::hours(3)),
            "IP_NOT_ALLOWED",
            500,
        ),
        (busy_id, "day", at(today), "VALID", 1000),
        (
            busy_id,
            "day",
            at((this_hour - time::Duration::hours(3)).replace_time(time::Time::MIDNIGHT)),
            "IP_NOT_ALLOWED",
            500,
        ),
        (
            busy_id,
            "day",
            at(today - time::Duration::days(10)),
            "VALID",
            4000,
        ),
        (calm_id, "hour", at(this_hour), "VALID", 7),
        (calm_id, "day", at(today), "VALID", 7),
    ];
    for (id, period, start, outcome, n) in rows {
        app.exec(&format!(
            "INSERT INTO usage_rollups (api_key_id, period, bucket_start, outcome, count) \
             VALUES ({id}, '{period}', '{start}', '{outcome}', {n}) \
             ON CONFLICT (api_key_id, period, bucket_start, outcome) DO UPDATE SET count = usage_rollups.count + excluded.count"
        ));
    }
    assert_eq!(all_raw_rows(&app), 0);

    // The figures are recomputed from rollups by the retention (every ten passes).
    eventually("busy's figures come from its rollups", || {
        let k = stored(&app, &key_id_of(&busy));
        (k.uses_24h, k.uses_30d) == (1500, 5500)
    })
    .await;

    // The key's page: charts and figures.
    let page = admin.get(&format!("/keys/{}", key_id_of(&busy))).await;
    page.assert_status(200);
    assert!(
        page.body
            .contains("Requests per day, last 30 days <span class=\"muted\">· 5500 total"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Requests per hour, last 48 hours <span class=\"muted\">· 1500 total")
    );
    assert!(
        page.body
            .contains("<strong>1500</strong> requests in 24 hours")
    );
    assert!(page.body.contains("<code>VALID</code> 5000"));
    assert!(page.body.contains("<code>IP_NOT_ALLOWED</code> 500"));

    // The table's column, sorted by it (most used first).
    let list = admin.get(&format!("/channels/{cid}/keys?sort=uses")).await;
    let (b, c, r) = (
        list.body.find(">busy<").unwrap(),
        list.body.find(">calm<").unwrap(),
        list.body.find(">reader<").unwrap(),
    );
    assert!(b < c && c < r, "sorted by requests in 30 days");
    assert!(list.body.contains("aria-sort=\"descending\""));
    assert!(
        list.body
            .contains("1500 <span class=\"muted\">/ 5500 requests</span>")
    );
    let asc = admin
        .get(&format!("/channels/{cid}/keys?sort=uses&dir=asc"))
        .await;
    assert!(asc.body.find(">reader<").unwrap() < asc.body.find(">busy<").unwrap());

    // The API shows the same figures and sorts by them.
    let api = app.api(&reader);
    let one = api.get(&format!("/keys/{}", key_id_of(&busy))).await;
    assert_eq!(one.status, 200);
    assert_eq!(
        (
            one.body["requests_24h"].clone(),
            one.body["requests_30d"].clone()
        ),
        (json!(1500), json!(5500))
    );
    let listed = api.get("/keys?sort=uses").await;
    assert_eq!(listed.body["data"][0]["name"], "busy", "{}", listed.body);

    // Idle (no use in 90 days): busy and calm have seeded rollups, reader has its own
    // API requests' rollups (just written), never has none.
    eventually("the reader's requests are rolled up", || {
        rollup_total(&app, stored(&app, &key_id_of(&reader)).id, "day", None) >= 2
    })
    .await;
    let idle = admin.get("/keys?risk=idle").await;
    assert!(idle.body.contains(">never<"));
    for used in [">busy<", ">calm<", ">reader<"] {
        assert!(!idle.body.contains(used), "{used} is not idle");
    }
    let rolled: i64 = usage_rollups::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert!(rolled >= 7);
}
