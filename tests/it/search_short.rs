//! Filters of one or two characters through the grams index (issue 16, migration
//! `2026-11-30-000013_key_name_grams`): one no name holds answers "no keys" without
//! reading the channel, one a few names hold is found and counted exactly, and the
//! index follows every write (created, renamed, moved to another channel, deleted).

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use latchkey::db::DbConnection;
use serde_json::json;

use crate::fixtures::{ALL_SCOPES, channel, key, range_of, seed};
use crate::helpers::{TestApp, spawn_app};
use crate::search::{assert_filters_agree, listed, naive};

#[derive(diesel::QueryableByName)]
struct KeyIdRow {
    #[diesel(sql_type = Text)]
    key_id: String,
}

/// The key ids the grams index itself holds for `gram` in the channel, read straight
/// from it (SQLite's own `hex()` makes the token), so a trigger that forgets a write
/// shows here even when the list would fall back to `LIKE`.
fn indexed(app: &TestApp, cid: i64, gram: &str) -> BTreeSet<String> {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    let rows: Vec<KeyIdRow> = match conn {
        DbConnection::Sqlite(_) => diesel::sql_query(
            "SELECT key_id FROM api_keys WHERE id IN (SELECT rowid % 1099511627776 \
             FROM key_grams WHERE key_grams MATCH '\"' || hex(?) || '\"' \
             AND rowid BETWEEN ? * 1099511627776 AND ? * 1099511627776 + 1099511627775)",
        )
        .bind::<Text, _>(gram)
        .bind::<BigInt, _>(cid)
        .bind::<BigInt, _>(cid)
        .load(conn),
        DbConnection::Postgresql(_) => diesel::sql_query(
            "SELECT a.key_id FROM key_search s JOIN api_keys a ON a.id = s.id \
             WHERE s.channel_id = $1 AND key_name_grams(s.name_lower) @> ARRAY[$2::text]",
        )
        .bind::<BigInt, _>(cid)
        .bind::<Text, _>(gram)
        .load(conn),
    }
    .unwrap();
    rows.into_iter().map(|r| r.key_id).collect()
}

/// Grams of the names below and around them, LIKE's wildcards and FTS5's syntax
/// among them, and some no name holds.
const GRAMS: &[&str] = &[
    "a", "e", "-", "%", "_", "\\", "\"", "*", "ä", "л", "語", "al", "ph", "a-", "%_", "_o", "ka",
    "z", "zz", "q", "qx", "x", "я",
];

async fn assert_index_agrees(app: &TestApp, cid: i64) {
    for g in GRAMS {
        assert_eq!(
            indexed(app, cid, g),
            naive(app, cid, g),
            "grams index, {g:?}"
        );
    }
}

#[tokio::test]
async fn a_short_filter_no_name_holds_finds_no_keys_and_counts_zero() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Short", "").await;
    let other = channel(&app, &admin, "Other", "").await;
    seed(&app, cid, (0..300).map(|n| format!("svc-{n:03}")));
    // What the channel lacks, another channel has: it must not leak in.
    seed(&app, other, ["zq-only-here".to_owned(), "x%_y".to_owned()]);
    let admin = app.admin().await;
    let reader = key(&admin, cid, "reader", &["keys:read"], &[]).await;
    let api = app.api(&reader);
    for f in ["z", "q", "zq", "x", "%", "_", "%_", "Я", "\"", "*"] {
        let (ids, total) = listed(&api, cid, f).await;
        assert!(ids.is_empty(), "{f:?}: {ids:?}");
        assert_eq!(total, 0, "{f:?}");
        let qs = serde_urlencoded::to_string([("q", f)]).unwrap();
        let page = admin
            .hx_get(&format!("/channels/{cid}/keys?{qs}"), "keys-results")
            .await;
        page.assert_status(200);
        assert_eq!(range_of(&page.body), "0 keys", "{f:?}");
        assert!(indexed(&app, cid, f).is_empty(), "{f:?}");
    }
    // The other channel's own names are in the index there.
    assert_eq!(indexed(&app, other, "zq").len(), 1);
    assert_eq!(indexed(&app, other, "%_"), naive(&app, other, "%_"));
}

#[tokio::test]
async fn a_short_filter_few_names_hold_is_found_and_counted_exactly() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Sparse", "").await;
    // 1,000 names, 30 of them holding `q` (never the first few hundred, which
    // PostgreSQL's sample reads), 3 holding `%_`.
    let names: Vec<String> = (0..1000)
        .map(|n| match n {
            500..530 => format!("svc-q{n:03}"),
            600..603 => format!("svc-50%_{n:03}"),
            _ => format!("svc-{n:03}"),
        })
        .collect();
    seed(&app, cid, names.clone());
    let admin = app.admin().await;
    let reader = key(&admin, cid, "reader", &["keys:read"], &[]).await;
    let api = app.api(&reader);
    for (f, n) in [("q", 30), ("q5", 30), ("%_", 3), ("%", 3), ("_", 3)] {
        let expected = naive(&app, cid, f);
        assert_eq!(expected.len(), n, "{f:?}");
        let (ids, total) = listed(&api, cid, f).await;
        assert_eq!(ids, expected, "{f:?}");
        assert_eq!(total, expected.len() as i64, "{f:?}");
        assert_eq!(indexed(&app, cid, f), expected, "{f:?}");
    }
    // The dashboard's total is exact, and the next page holds the rest.
    let page = admin
        .hx_get(&format!("/channels/{cid}/keys?q=q"), "keys-results")
        .await;
    assert_eq!(range_of(&page.body), "1–20 of 30");
    let page = admin
        .get(&format!("/channels/{cid}/keys?q=q&size=10"))
        .await;
    assert_eq!(range_of(&page.body), "1–10 of 30");
}

#[tokio::test]
async fn the_grams_index_follows_creates_renames_moves_and_deletes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Grams", "").await;
    let other = channel(&app, &admin, "Elsewhere", "").await;
    let writer = key(&admin, cid, "writer-key", ALL_SCOPES, &[]).await;
    let api = app.api(&writer);
    let writer_id = crate::fixtures::key_id_of(&writer);
    // A write through the server after one made in SQL: it forgets the totals it
    // remembers (a write it did not see would leave them stale for up to a minute).
    let touch = |n: u32| {
        let api = &api;
        let writer_id = writer_id.clone();
        async move {
            let res = api
                .send(
                    reqwest::Method::PATCH,
                    &format!("/keys/{writer_id}"),
                    Some(json!({ "description": format!("touched {n}") })),
                )
                .await;
            assert_eq!(res.status, 200, "{}", res.body);
        }
    };
    let check = |label: &'static str| {
        let app = &app;
        let api = &api;
        async move {
            for c in [cid, other] {
                assert_index_agrees(app, c).await;
            }
            assert_filters_agree(app, api, cid, GRAMS).await;
            eprintln!("checked: {label}");
        }
    };

    key(&admin, cid, "alpha-%_one", &["verify"], &[]).await;
    let created = api.post("/keys", json!({ "name": "Käse \"*\\" })).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let kase = created.body["data"]["key_id"].as_str().unwrap().to_owned();
    check("created").await;

    // Renamed through the API, then in the dashboard; an edit that keeps the name.
    let res = api
        .send(
            reqwest::Method::PATCH,
            &format!("/keys/{kase}"),
            Some(json!({ "name": "ключ-語" })),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    check("renamed by the API").await;
    assert!(
        listed(&api, cid, "ä").await.0.is_empty(),
        "the old name is gone"
    );
    admin
        .post_form(&format!("/keys/{kase}/rename"), &[("name", "qx-renamed")])
        .await
        .assert_status(303);
    check("renamed in the dashboard").await;
    let res = api
        .send(
            reqwest::Method::PATCH,
            &format!("/keys/{kase}"),
            Some(json!({ "description": "d" })),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(listed(&api, cid, "qx").await.1, 1);

    // Moved to another channel (no page does it; the triggers must still follow).
    app.exec(&format!(
        "UPDATE api_keys SET channel_id = {other} WHERE key_id = '{kase}'"
    ));
    touch(1).await;
    check("moved away").await;
    assert_eq!(indexed(&app, other, "qx").len(), 1);
    assert!(indexed(&app, cid, "qx").is_empty());
    app.exec(&format!(
        "UPDATE api_keys SET channel_id = {cid} WHERE key_id = '{kase}'"
    ));
    touch(2).await;
    check("moved back").await;

    // Renamed and moved by one statement.
    app.exec(&format!(
        "UPDATE api_keys SET channel_id = {other}, name = 'ya-я', name_lower = 'ya-я' \
         WHERE key_id = '{kase}'"
    ));
    touch(3).await;
    check("renamed and moved").await;
    assert_eq!(indexed(&app, other, "я").len(), 1);

    // Deleted.
    let res = api
        .send(reqwest::Method::DELETE, &format!("/keys/{kase}"), None)
        .await;
    assert_eq!(res.status, 404, "another channel's key is out of reach");
    app.exec(&format!("DELETE FROM api_keys WHERE key_id = '{kase}'"));
    touch(4).await;
    check("deleted").await;
    assert!(indexed(&app, other, "я").is_empty());
    let alpha = naive(&app, cid, "%_").into_iter().next().unwrap();
    let res = api
        .send(reqwest::Method::DELETE, &format!("/keys/{alpha}"), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    check("deleted through the API").await;
    assert!(indexed(&app, cid, "%_").is_empty());
}
