//! Filtering keys by name through the substring index (issue 16): exact text on both
//! backends whatever the filter holds (LIKE wildcards, FTS5 query syntax, quotes,
//! non-ASCII), the index kept in step by every way a key is written, and totals capped
//! at 1000 with the exact figure on demand.

use std::collections::BTreeSet;

use diesel::prelude::*;
use latchkey::db::schema::api_keys;
use serde_json::json;

use crate::export_import::sha256;
use crate::fixtures::{ALL_SCOPES, channel, key, key_id_of, range_of, seed};
use crate::helpers::{Api, TestApp, spawn_app};

/// Names chosen to trip a filter that is not taken literally: LIKE's `%` and `_`,
/// FTS5's quotes, `*`, `^`, `:`, `-`, parentheses and operators, backslashes, case and
/// characters outside ASCII.
const NAMES: &[&str] = &[
    "50%_off",
    "50 percent off",
    "5000_offers",
    "500% x",
    "say \"cheese\"",
    "star*gazer",
    "(paren) key",
    "caret^up",
    "colon:key",
    "dash-key",
    "NOT this",
    "a OR b",
    "NEAR(x y)",
    "naïve-ключ",
    "日本語キー",
    "back\\slash",
    "Straße",
];

const FILTERS: &[&str] = &[
    "50%_off",
    "50%",
    "%",
    "_",
    "0_o",
    "%_",
    "\"",
    "\"cheese\"",
    "y \"c",
    "*",
    "r*g",
    "star*",
    "(",
    ")",
    "(paren)",
    "^",
    "caret^",
    ":",
    "colon:k",
    "-",
    "dash-",
    "-key",
    "not",
    "not this",
    "or",
    "a or b",
    "near(",
    "(x y)",
    "ïve",
    "ключ",
    "本語",
    "日本語キー",
    "\\",
    "k\\s",
    "straße",
    "STRASSE",
    "50",
    "of",
    "o",
    "e",
    "zz",
    "zzz",
    "key",
    "off",
];

/// The key ids of the channel's keys whose name contains `filter`, by plain Rust.
pub(crate) fn naive(app: &TestApp, cid: i64, filter: &str) -> BTreeSet<String> {
    let rows: Vec<(String, String)> = api_keys::table
        .filter(api_keys::channel_id.eq(cid))
        .select((api_keys::key_id, api_keys::name_lower))
        .load(&mut *app.conn())
        .unwrap();
    let needle = filter.trim().to_lowercase();
    rows.into_iter()
        .filter(|(_, name)| name.contains(&needle))
        .map(|(id, _)| id)
        .collect()
}

/// The key ids the API lists for `filter` in the channel, and its total.
pub(crate) async fn listed(api: &Api, cid: i64, filter: &str) -> (BTreeSet<String>, i64) {
    let qs = serde_urlencoded::to_string([
        ("channel_id", cid.to_string()),
        ("q", filter.to_owned()),
        ("size", "100".to_owned()),
    ])
    .unwrap();
    let res = api.get(&format!("/keys?{qs}")).await;
    assert_eq!(res.status, 200, "{filter:?}: {}", res.body);
    let ids = res.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap().to_owned())
        .collect();
    (ids, res.body["total"].as_i64().unwrap())
}

pub(crate) async fn assert_filters_agree(app: &TestApp, api: &Api, cid: i64, filters: &[&str]) {
    for f in filters {
        let expected = naive(app, cid, f);
        let (ids, total) = listed(api, cid, f).await;
        assert_eq!(ids, expected, "filter {f:?}");
        assert_eq!(total, expected.len() as i64, "total of filter {f:?}");
    }
}

#[tokio::test]
async fn filters_match_exactly_their_text_whatever_characters_it_holds() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Odd names", "").await;
    let elsewhere = channel(&app, &admin, "Elsewhere", "").await;
    seed(&app, cid, NAMES.iter().map(|n| (*n).to_owned()));
    // The same names in another channel must not leak into this one's results.
    seed(
        &app,
        elsewhere,
        NAMES.iter().map(|n| format!("{n} (other)")),
    );
    let reader = key(&admin, cid, "reader", &["keys:read"], &[]).await;
    let api = app.api(&reader);
    assert_filters_agree(&app, &api, cid, FILTERS).await;
    // The two that LIKE would confuse without escaping.
    let (ids, _) = listed(&api, cid, "50%_off").await;
    assert_eq!(ids.len(), 1, "`50%_off` matches only itself");
    let (ids, _) = listed(&api, cid, "%").await;
    assert_eq!(ids.len(), 2, "`%` matches the two names holding one");

    // The dashboard agrees, on the page and in its range line.
    for (f, n) in [("50%_off", 1), ("\"cheese\"", 1), ("-key", 1), ("zzz", 0)] {
        let qs = serde_urlencoded::to_string([("q", f)]).unwrap();
        let page = admin.get(&format!("/channels/{cid}/keys?{qs}")).await;
        page.assert_status(200);
        let range = |n: usize| match n {
            0 => "0 keys".to_owned(),
            n => format!("1–{n} of {n}"),
        };
        assert_eq!(range_of(&page.body), range(n), "{f:?}");
        // All keys: the same name in the other channel too.
        let all = admin.get(&format!("/keys?{qs}")).await;
        assert_eq!(range_of(&all.body), range(n * 2), "All keys, {f:?}");
    }
}

#[tokio::test]
async fn the_index_follows_every_way_a_key_is_written() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Writes", "").await;
    let writer = key(&admin, cid, "writer-key", ALL_SCOPES, &[]).await;
    let api = app.api(&writer);
    let filters = [
        "alpha", "beta", "gamma", "legacy", "rolled", "key", "-ke", "a-o",
    ];

    // Created in the dashboard and through the API.
    key(&admin, cid, "alpha-one", &["verify"], &[]).await;
    let created = api.post("/keys", json!({ "name": "beta-one" })).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let beta = created.body["data"]["key_id"].as_str().unwrap().to_owned();
    assert_filters_agree(&app, &api, cid, &filters).await;

    // Renamed (through the API's update) and renamed back in the dashboard.
    let res = api
        .send(
            reqwest::Method::PATCH,
            &format!("/keys/{beta}"),
            Some(json!({ "name": "gamma-one" })),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_filters_agree(&app, &api, cid, &filters).await;
    assert_eq!(
        listed(&api, cid, "beta").await.0.len(),
        0,
        "the old name is gone"
    );
    admin
        .post_form(&format!("/keys/{beta}/rename"), &[("name", "beta-again")])
        .await
        .assert_status(303);
    assert_filters_agree(&app, &api, cid, &filters).await;
    // An edit that keeps the name (every field is saved) leaves it findable.
    let res = api
        .send(
            reqwest::Method::PATCH,
            &format!("/keys/{beta}"),
            Some(json!({ "description": "d" })),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(listed(&api, cid, "beta-again").await.0.len(), 1);

    // Rolled: the successor is a new key, the old one renamed.
    let res = api
        .post(&format!("/keys/{beta}/roll"), json!({ "grace": "1h" }))
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_filters_agree(&app, &api, cid, &filters).await;

    // Imported by digest.
    let import = json!([{ "name": "legacy-import", "scopes": ["verify"], "sha256": sha256("sk_legacy_search") }]);
    admin
        .get(&format!("/channels/{cid}/keys/import"))
        .await
        .assert_status(200);
    admin
        .post_form(
            &format!("/channels/{cid}/keys/import"),
            &[("text", &import.to_string())],
        )
        .await
        .assert_status(303);
    assert_filters_agree(&app, &api, cid, &filters).await;
    assert_eq!(listed(&api, cid, "legacy").await.0.len(), 1);

    // Deleted one by one and in bulk.
    let res = api
        .send(reqwest::Method::DELETE, &format!("/keys/{beta}"), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert_filters_agree(&app, &api, cid, &filters).await;
    let res = api
        .post(
            "/keys/bulk",
            json!({ "action": "delete", "filter": { "channel_id": cid, "q": "alpha" } }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_filters_agree(&app, &api, cid, &filters).await;
    assert_eq!(listed(&api, cid, "alpha").await.0.len(), 0);
}

#[tokio::test]
async fn a_pasted_key_id_finds_its_key_and_names_that_contain_it() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Support", "").await;
    let target = key(&admin, cid, "target", &["keys:read"], &[]).await;
    let id = key_id_of(&target);
    // A name holding the id (a person pasted it there) is found too, by the index.
    key(&admin, cid, &format!("notes about {id}"), &[], &[]).await;
    key(&admin, cid, "unrelated", &[], &[]).await;
    let api = app.api(&target);
    let (ids, total) = listed(&api, cid, &id).await;
    assert_eq!(total, 2);
    assert!(ids.contains(&id));
    let page = admin.get(&format!("/channels/{cid}/keys?q={id}")).await;
    assert_eq!(range_of(&page.body), "1–2 of 2");
}

#[tokio::test]
async fn a_frequent_filter_counts_to_a_thousand_and_the_rest_on_demand() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Many", "").await;
    seed(&app, cid, (0..1005).map(|n| format!("bulk-{n:04}")));
    seed(&app, cid, ["other".to_owned()]);
    // A new session: seeding takes seconds on PostgreSQL, longer than the server keeps
    // an idle connection open, and the client would reuse the one it closed.
    let admin = app.admin().await;
    let url = |q: &str| format!("/channels/{cid}/keys?q={q}");

    // Index path over the cap, and LIKE path (one character).
    for q in ["bulk", "b"] {
        let page = admin.hx_get(&url(q), "keys-results").await;
        page.assert_status(200);
        assert_eq!(range_of(&page.body), "1–20 of 1000+ ", "{q}");
        // askama writes `&` as `&#38;` in attributes.
        let link = format!("href=\"/channels/{cid}/keys?q={q}&#38;count=all\"");
        assert!(page.body.contains(&link), "{q}: {}", page.body);
        assert!(page.body.contains("Select all 1000+ keys"), "{q}");
        assert_eq!(page.body.matches("<tr id=\"key-").count(), 20);
    }
    // "Count all" counts every match, and the exact total is remembered.
    let all = admin
        .hx_get(&format!("{}&count=all", url("bulk")), "keys-results")
        .await;
    assert_eq!(range_of(&all.body), "1–20 of 1005");
    assert!(!all.body.contains("count=all"));
    let again = admin.hx_get(&url("bulk"), "keys-results").await;
    assert_eq!(range_of(&again.body), "1–20 of 1005");
    // Rare filters are exact at once, short or long; the page after is right too.
    let page = admin.get(&url("bulk-100")).await;
    assert_eq!(range_of(&page.body), "1–5 of 5");
    let page = admin.get(&format!("{}&size=50", url("bulk-09"))).await;
    assert_eq!(range_of(&page.body), "1–50 of 100");
    let page = admin.get(&url("ot")).await;
    assert_eq!(range_of(&page.body), "1–1 of 1");
    // The API's total is always exact.
    let reader = key(&admin, cid, "reader", &["keys:read"], &[]).await;
    let (_, total) = listed(&app.api(&reader), cid, "ulk-").await;
    assert_eq!(total, 1005);
    // Paging a capped filter walks on to the end.
    let mut path = format!("{}&size=100", url("ulk-"));
    let mut seen = 0;
    for _ in 0..20 {
        let page = admin.get(&path).await;
        seen += page.body.matches("<tr id=\"key-").count();
        let Some(at) = page.body.find("rel=\"next\" href=\"") else {
            break;
        };
        let start = at + "rel=\"next\" href=\"".len();
        let end = page.body[start..].find('"').unwrap() + start;
        path = page.body[start..end].replace("&#38;", "&");
    }
    assert_eq!(seen, 1005);
}

#[tokio::test]
async fn a_short_filter_over_many_keys_is_exact_below_a_thousand_and_capped_above() {
    use diesel::connection::SimpleConnection;
    use latchkey::db::schema::channels;
    use latchkey::domain::key::PlainKey;

    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Ten thousand", "").await;
    // 30 names hold `q`, in the middle (PostgreSQL's sample reads the first few hundred).
    let names: Vec<String> = (0..10_050)
        .map(|n| match n {
            5000..5030 => format!("q{n:05}"),
            _ => format!("k{n:05}"),
        })
        .collect();
    {
        let mut conn = app.conn();
        for chunk in names.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|name| {
                    let (key, parts) = PlainKey::generate("lk");
                    format!(
                        "({cid}, '{}', '{}', '{}', 'lk', '{name}', '{name}', 'verify', '', \
                         '2026-11-30 00:00:00', 'test', '2026-11-30 00:00:00')",
                        parts.key_id,
                        key.hash().as_str(),
                        parts.last_four
                    )
                })
                .collect();
            conn.batch_execute(&format!(
                "INSERT INTO api_keys (channel_id, key_id, key_hash, last_four, prefix, name, \
                 name_lower, scopes, allowed_cidrs, created_at, created_by, updated_at) VALUES {}",
                values.join(",")
            ))
            .unwrap();
        }
        diesel::update(channels::table.find(cid))
            .set(channels::key_count.eq(10_050i64))
            .execute(&mut *conn)
            .unwrap();
    }
    let admin = app.admin().await;
    let all = |f: &str| names.iter().filter(|n| n.contains(f)).count();
    // Rare: the grams index finds and counts every match, wherever it lies (before it,
    // the count read the newest 10,000 keys only and said "30+").
    for q in ["q", "q0"] {
        let page = admin
            .hx_get(&format!("/channels/{cid}/keys?q={q}"), "keys-results")
            .await;
        assert_eq!(range_of(&page.body), "1–20 of 30", "{q}");
    }
    // Counted on demand, every match.
    assert!(all("12") < 1000);
    let page = admin
        .hx_get(
            &format!("/channels/{cid}/keys?q=12&count=all"),
            "keys-results",
        )
        .await;
    assert_eq!(range_of(&page.body), format!("1–20 of {}", all("12")));
    // Frequent: over 1,000.
    let page = admin
        .hx_get(&format!("/channels/{cid}/keys?q=k0"), "keys-results")
        .await;
    assert_eq!(range_of(&page.body), "1–20 of 1000+ ");
    // Three characters: the index counts exactly, over every key.
    let page = admin
        .hx_get(&format!("/channels/{cid}/keys?q=k00"), "keys-results")
        .await;
    assert_eq!(range_of(&page.body), format!("1–20 of {}", all("k00")));
}
