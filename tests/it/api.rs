use std::time::Duration;

use diesel::prelude::*;
use latchkey::db::schema::{api_keys, request_log};
use serde_json::json;

use crate::fixtures::{ALL_SCOPES, channel, key, key_id_of, rollup_total, seed, system_channel};
use crate::helpers::{Browser, Options, TestApp, spawn_app, spawn_app_with};

fn fast_flush() -> Options {
    Options {
        env: vec![("LATCHKEY_USAGE_FLUSH_MS".into(), "50".into())],
    }
}

struct World {
    app: TestApp,
    admin: Browser,
    acme: i64,
    other: i64,
    /// A verifier key of the Acme channel.
    verifier: String,
}

async fn world_with(options: Options) -> World {
    let app = spawn_app_with(options).await;
    let admin = app.admin().await;
    let acme = channel(&app, &admin, "Acme", "50").await;
    let other = channel(&app, &admin, "Other", "50").await;
    let verifier = key(&admin, acme, "verifier", &["verify"], &[]).await;
    World {
        app,
        admin,
        acme,
        other,
        verifier,
    }
}

async fn world() -> World {
    world_with(fast_flush()).await
}

#[tokio::test]
async fn verification_answers_every_code() {
    let w = world().await;
    let api = w.app.api(&w.verifier);
    let good = key(&w.admin, w.acme, "good", &["keys:read"], &[]).await;
    let res = api
        .post(
            "/keys/verify",
            json!({ "key": good, "ip": "203.0.113.7", "scopes": ["keys:read"] }),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["valid"], true);
    assert_eq!(res.body["code"], "VALID");
    assert_eq!(res.body["key_id"], key_id_of(&good));
    assert_eq!(res.body["channel"], "Acme");
    assert_eq!(res.body["name"], "good");
    assert_eq!(res.body["scopes"], json!(["keys:read"]));
    assert_eq!(res.body["expires_at"], serde_json::Value::Null);

    assert_eq!(
        api.code(&good, None, &["keys:write"]).await,
        "INSUFFICIENT_SCOPE"
    );
    // Malformed: bad checksum, wrong length, garbage.
    let mut typo = good.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    for bad in [
        String::from_utf8(typo).unwrap(),
        good[..63].to_owned(),
        "hello".into(),
        "💥".repeat(16),
    ] {
        let res = api.verify(&bad).await;
        assert_eq!(res.body["code"], "MALFORMED", "{bad}");
        assert_eq!(res.body["valid"], false);
        assert_eq!(res.body["key_id"], serde_json::Value::Null);
    }
    let (unknown, _) = latchkey::domain::key::PlainKey::generate("lk");
    assert_eq!(api.code(unknown.reveal(), None, &[]).await, "NOT_FOUND");

    let limited = key(
        &w.admin,
        w.acme,
        "limited",
        &[],
        &[("cidr", "198.51.100.0/24"), ("cidr", "2001:db8::/32")],
    )
    .await;
    assert_eq!(
        api.code(&limited, Some("198.51.100.20"), &[]).await,
        "VALID"
    );
    assert_eq!(api.code(&limited, Some("2001:db8::42"), &[]).await, "VALID");
    assert_eq!(
        api.code(&limited, Some("203.0.113.7"), &[]).await,
        "IP_NOT_ALLOWED"
    );
    assert_eq!(
        api.code(&limited, Some("2001:db9::1"), &[]).await,
        "IP_NOT_ALLOWED"
    );
    assert_eq!(api.code(&limited, None, &[]).await, "IP_NOT_ALLOWED");

    let disabled = key(&w.admin, w.acme, "disabled", &[], &[]).await;
    w.admin
        .post_form(&format!("/keys/{}/deactivate", key_id_of(&disabled)), &[])
        .await
        .assert_status(303);
    assert_eq!(api.code(&disabled, None, &[]).await, "DISABLED");

    let bad_ip = api
        .post("/keys/verify", json!({ "key": good, "ip": "not-an-ip" }))
        .await;
    assert_eq!(bad_ip.status, 400);
    assert_eq!(bad_ip.body["error"]["fields"]["ip"], "Not an IP address.");
}

#[tokio::test]
async fn an_expiry_is_enforced_by_the_clock_on_the_next_request() {
    let w = world().await;
    let writer = key(&w.admin, w.acme, "writer", &["keys:write"], &[]).await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap();
    let created = w
        .app
        .api(&writer)
        .post("/keys", json!({ "name": "brief", "expires_at": soon }))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let brief = created.body["key"].as_str().unwrap().to_owned();
    let api = w.app.api(&w.verifier);
    assert_eq!(api.code(&brief, None, &[]).await, "VALID");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(api.code(&brief, None, &[]).await, "EXPIRED");
}

#[tokio::test]
async fn revocation_in_the_dashboard_is_refused_by_the_very_next_request() {
    let w = world().await;
    let api = w.app.api(&w.verifier);
    let k = key(&w.admin, w.acme, "revoked", &[], &[]).await;
    let kid = key_id_of(&k);
    assert_eq!(api.code(&k, None, &[]).await, "VALID"); // now cached
    w.admin
        .hx_post(
            &format!("/keys/{kid}/deactivate"),
            &format!("key-{kid}"),
            &[],
        )
        .await
        .assert_status(200);
    assert_eq!(api.code(&k, None, &[]).await, "DISABLED");
    w.admin
        .hx_post(&format!("/keys/{kid}/activate"), &format!("key-{kid}"), &[])
        .await
        .assert_status(200);
    assert_eq!(api.code(&k, None, &[]).await, "VALID");
    w.admin
        .hx_post(&format!("/keys/{kid}/delete"), &format!("key-{kid}"), &[])
        .await
        .assert_status(200);
    assert_eq!(api.code(&k, None, &[]).await, "NOT_FOUND");
    // A caller key revoked mid-session stops authenticating at once.
    let vid = key_id_of(&w.verifier);
    w.admin
        .post_form(&format!("/keys/{vid}/deactivate"), &[])
        .await
        .assert_status(303);
    let res = api.verify(&k).await;
    assert_eq!(res.status, 401);
    assert_eq!(res.body["error"]["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn callers_reach_their_own_channel_and_system_keys_reach_all() {
    let w = world().await;
    let foreign = key(&w.admin, w.other, "foreign", &[], &[]).await;
    let own = key(&w.admin, w.acme, "own", &[], &[]).await;
    let api = w.app.api(&w.verifier);
    assert_eq!(api.code(&own, None, &[]).await, "VALID");
    assert_eq!(
        api.code(&foreign, None, &[]).await,
        "NOT_FOUND",
        "existence never leaks across channels"
    );
    let system = system_channel(&w.app);
    let root = key(&w.admin, system, "root", &["verify", "keys:read"], &[]).await;
    let sys = w.app.api(&root);
    assert_eq!(sys.code(&foreign, None, &[]).await, "VALID");
    assert_eq!(sys.code(&own, None, &[]).await, "VALID");
    // The same reach rule holds for management.
    let reader = key(&w.admin, w.acme, "reader", &["keys:read"], &[]).await;
    let acme_api = w.app.api(&reader);
    assert_eq!(
        acme_api
            .get(&format!("/keys/{}", key_id_of(&foreign)))
            .await
            .status,
        404
    );
    assert_eq!(
        acme_api
            .get(&format!("/keys?channel_id={}", w.other))
            .await
            .status,
        404
    );
    assert_eq!(
        sys.get(&format!("/keys/{}", key_id_of(&foreign)))
            .await
            .status,
        200
    );
    assert_eq!(
        sys.get(&format!("/keys?channel_id={}", w.other)).await.body["total"],
        1
    );
}

#[tokio::test]
async fn callers_need_a_good_key_with_the_right_scope() {
    let w = world().await;
    let target = key(&w.admin, w.acme, "target", &[], &[]).await;
    let no_auth = reqwest::Client::new()
        .post(format!("http://{}/api/v1/keys/verify", w.app.base))
        .json(&json!({ "key": target }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status().as_u16(), 401);
    let body: serde_json::Value = no_auth.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
    assert_eq!(w.app.api("garbage").verify(&target).await.status, 401);
    let (unknown, _) = latchkey::domain::key::PlainKey::generate("lk");
    assert_eq!(
        w.app.api(unknown.reveal()).verify(&target).await.status,
        401
    );
    let reader = key(&w.admin, w.acme, "reader", &["keys:read"], &[]).await;
    let res = w.app.api(&reader).verify(&target).await;
    assert_eq!(res.status, 403);
    assert_eq!(res.body["error"]["code"], "INSUFFICIENT_SCOPE");
    let res = w
        .app
        .api(&reader)
        .post("/keys", json!({ "name": "nope" }))
        .await;
    assert_eq!(res.body["error"]["code"], "INSUFFICIENT_SCOPE");
    let writer = key(&w.admin, w.acme, "writer", &["keys:write"], &[]).await;
    assert_eq!(w.app.api(&writer).get("/keys").await.status, 403);
    // A caller limited to other networks is refused (tests connect from 127.0.0.1).
    let fenced = key(
        &w.admin,
        w.acme,
        "fenced",
        &["verify"],
        &[("cidr", "10.0.0.0/8")],
    )
    .await;
    let res = w.app.api(&fenced).verify(&target).await;
    assert_eq!(res.status, 403);
    assert_eq!(res.body["error"]["code"], "IP_NOT_ALLOWED");
    let local = key(
        &w.admin,
        w.acme,
        "local",
        &["verify"],
        &[("cidr", "127.0.0.0/8")],
    )
    .await;
    assert_eq!(w.app.api(&local).verify(&target).await.status, 200);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let trusted = spawn_app_with(Options {
        env: vec![("LATCHKEY_TRUSTED_PROXIES".into(), "127.0.0.1/32".into())],
    })
    .await;
    let untrusted = spawn_app().await;
    for (app, believed) in [(&trusted, true), (&untrusted, false)] {
        let admin = app.admin().await;
        let cid = channel(app, &admin, "Proxy", "").await;
        let v6 = key(
            &admin,
            cid,
            "v6-only",
            &["verify"],
            &[("cidr", "2001:db8::/32")],
        )
        .await;
        let target = key(&admin, cid, "target", &[], &[]).await;
        let api = app.api(&v6);
        let res = api
            .client
            .post(format!("{}/keys/verify", api.base))
            .bearer_auth(&v6)
            .header("X-Forwarded-For", "2001:db8::5")
            .json(&json!({ "key": target }))
            .send()
            .await
            .unwrap();
        let expected = if believed { 200 } else { 403 };
        assert_eq!(
            res.status().as_u16(),
            expected,
            "trusted proxies: {believed}"
        );
    }
}

#[tokio::test]
async fn the_management_api_follows_the_dashboard_rules() {
    let w = world().await;
    // Every scope: setting off_the_record through the API needs keys:admin.
    let admin_key = key(&w.admin, w.acme, "manager", ALL_SCOPES, &[]).await;
    let api = w.app.api(&admin_key);
    let created = api
        .post(
            "/keys",
            json!({ "name": "from-api", "scopes": ["verify"], "allowed_cidrs": ["203.0.113.0/24"], "description": "d" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers.get("cache-control").unwrap(), "no-store");
    let plain = created.body["key"].as_str().unwrap().to_owned();
    assert_eq!(plain.len(), 64);
    let kid = created.body["data"]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.body["data"]["created_by"],
        format!("api:{}", key_id_of(&admin_key))
    );
    // Get and list never show the key.
    let got = api.get(&format!("/keys/{kid}")).await;
    assert_eq!(got.status, 200);
    assert!(!got.body.to_string().contains(&plain[16..56]));
    assert_eq!(got.body["allowed_cidrs"], json!(["203.0.113.0/24"]));
    // Validation is field by field.
    let bad = api
        .post(
            "/keys",
            json!({ "name": "", "allowed_cidrs": ["nope"], "postback_url": "ftp://x" }),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["error"]["code"], "VALIDATION");
    assert!(bad.body["error"]["fields"]["name"].is_string());
    assert!(bad.body["error"]["fields"]["allowed_cidrs[0]"].is_string());
    assert!(bad.body["error"]["fields"]["postback_url"].is_string());
    let dup = api.post("/keys", json!({ "name": "FROM-API" })).await;
    assert_eq!(dup.status, 422);
    assert!(
        dup.body["error"]["fields"]["name"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    // Update merges; disable/enable; delete.
    let patched = api
        .send(
            reqwest::Method::PATCH,
            &format!("/keys/{kid}"),
            Some(json!({ "name": "renamed", "off_the_record": true })),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["name"], "renamed");
    assert_eq!(patched.body["description"], "d", "fields not sent are kept");
    assert_eq!(patched.body["off_the_record"], true);
    let off = api.post(&format!("/keys/{kid}/disable"), json!({})).await;
    assert_eq!(off.body["enabled"], false);
    assert_eq!(off.body["status"], "inactive");
    assert_eq!(
        w.app
            .api(&w.verifier)
            .code(&plain, Some("203.0.113.1"), &[])
            .await,
        "DISABLED"
    );
    let on = api.post(&format!("/keys/{kid}/enable"), json!({})).await;
    assert_eq!(on.body["enabled"], true);
    assert_eq!(
        w.app
            .api(&w.verifier)
            .code(&plain, Some("203.0.113.1"), &[])
            .await,
        "VALID"
    );
    let gone = api
        .send(reqwest::Method::DELETE, &format!("/keys/{kid}"), None)
        .await;
    assert_eq!(gone.status, 204);
    assert_eq!(
        w.app
            .api(&w.verifier)
            .code(&plain, Some("203.0.113.1"), &[])
            .await,
        "NOT_FOUND"
    );
    assert_eq!(api.get(&format!("/keys/{kid}")).await.status, 404);
    // The audit log names the API key as the actor.
    let actors: Vec<String> = latchkey::db::schema::audit_events::table
        .filter(latchkey::db::schema::audit_events::key_id.eq(&kid))
        .select(latchkey::db::schema::audit_events::actor)
        .load(&mut *w.app.conn())
        .unwrap();
    assert!(
        actors.len() >= 4 && actors.iter().all(|a| a.starts_with("api:")),
        "{actors:?}"
    );
}

#[tokio::test]
async fn the_api_refuses_creates_past_the_limit() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Small", "2").await;
    let manager = key(&admin, cid, "manager", &["keys:write"], &[]).await;
    let api = app.api(&manager);
    assert_eq!(
        api.post("/keys", json!({ "name": "second" })).await.status,
        201
    );
    let third = api.post("/keys", json!({ "name": "third" })).await;
    assert_eq!(third.status, 409);
    assert_eq!(third.body["error"]["code"], "LIMIT_REACHED");
}

#[tokio::test]
async fn listing_pages_with_cursors() {
    let w = world().await;
    let reader = key(&w.admin, w.acme, "reader", &["keys:read"], &[]).await;
    seed(&w.app, w.acme, (0..25).map(|i| format!("bulk-{i:02}")));
    let api = w.app.api(&reader);
    let first = api.get("/keys?size=10&sort=name&q=bulk").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["total"], 25);
    assert_eq!(first.body["data"].as_array().unwrap().len(), 10);
    assert_eq!(first.body["data"][0]["name"], "bulk-00");
    assert_eq!(first.body["prev_before"], serde_json::Value::Null);
    let after = first.body["next_after"].as_i64().unwrap();
    let second = api
        .get(&format!("/keys?size=10&sort=name&q=bulk&after={after}"))
        .await;
    assert_eq!(second.body["data"][0]["name"], "bulk-10");
    let last = api
        .get(&format!(
            "/keys?size=10&sort=name&q=bulk&after={}",
            second.body["next_after"]
        ))
        .await;
    assert_eq!(last.body["data"].as_array().unwrap().len(), 5);
    assert_eq!(last.body["next_after"], serde_json::Value::Null);
}

#[tokio::test]
async fn bad_bodies_get_json_errors_and_the_server_keeps_serving() {
    let w = world().await;
    let api = w.app.api(&w.verifier);
    let url = format!("{}/keys/verify", api.base);
    let send = |body: Vec<u8>, ct: &'static str| {
        // A fresh connection per request: after refusing an oversized body the server
        // closes the connection, which a pooled client could try to reuse.
        let req = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&w.verifier)
            .header("content-type", ct)
            .body(body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let ctype = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body: serde_json::Value =
                serde_json::from_str(&res.text().await.unwrap()).expect("JSON error body");
            (status, ctype, body)
        }
    };
    let cases: Vec<(Vec<u8>, &str, u16)> = vec![
        (b"{not json".to_vec(), "application/json", 400),
        (br#"{"key": 5}"#.to_vec(), "application/json", 400),
        (
            br#"{"key": "x", "extra": 1}"#.to_vec(),
            "application/json",
            400,
        ),
        (br#"{"scopes": "verify"}"#.to_vec(), "application/json", 400),
        (vec![0xff, 0xfe, 0x00], "application/json", 400),
        (
            format!(r#"{{"key": "{}"}}"#, "a".repeat(200_000)).into_bytes(),
            "application/json",
            413,
        ),
        (br#"{"key": "x"}"#.to_vec(), "text/plain", 415),
    ];
    for (body, ct, expected) in cases {
        let (status, ctype, json) = send(body, ct).await;
        assert_eq!(status, expected, "{json}");
        assert!(ctype.starts_with("application/json"), "{ctype}");
        assert!(json["error"]["code"].is_string());
    }
    let missing = api.get("/nothing-here").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "NOT_FOUND");
    let wrong_method = api.get("/keys/verify").await;
    assert!(wrong_method.body["error"]["code"].is_string());
    // Still serving, and still right.
    let good = key(&w.admin, w.acme, "after", &[], &[]).await;
    assert_eq!(api.code(&good, None, &[]).await, "VALID");
}

#[tokio::test]
async fn requests_are_logged_with_last_used_unless_off_the_record() {
    let w = world().await;
    let api = w.app.api(&w.verifier);
    let target = key(&w.admin, w.acme, "target", &[], &[]).await;
    let quiet = key(
        &w.admin,
        w.acme,
        "quiet",
        &["verify"],
        &[("off_the_record", "on")],
    )
    .await;
    assert_eq!(w.app.api(&quiet).code(&target, None, &[]).await, "VALID");
    for _ in 0..5 {
        assert_eq!(api.code(&target, Some("198.51.100.4"), &[]).await, "VALID");
    }
    let reader = key(&w.admin, w.acme, "reader", &["keys:read"], &[]).await;
    assert_eq!(
        w.app.api(&reader).get("/keys/verify-me-not").await.status,
        404
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut conn = w.app.conn();
    let id_of = |kid: String| -> i64 {
        api_keys::table
            .filter(api_keys::key_id.eq(kid))
            .select(api_keys::id)
            .first(&mut *w.app.conn())
            .unwrap()
    };
    let (verifier_id, target_id, quiet_id) = (
        id_of(key_id_of(&w.verifier)),
        id_of(key_id_of(&target)),
        id_of(key_id_of(&quiet)),
    );
    // The caller's verification requests are counted, not logged: the verified key's
    // row tells the story (one row per verification).
    let verifier_rows: i64 = request_log::table
        .filter(request_log::api_key_id.eq(verifier_id))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(verifier_rows, 0);
    assert_eq!(rollup_total(&w.app, verifier_id, "day", Some("API_2XX")), 5);
    type Row = (String, String, i32, Option<String>, String, Option<String>);
    let rows: Vec<Row> = request_log::table
        .filter(request_log::api_key_id.eq(target_id))
        .select((
            request_log::method,
            request_log::route,
            request_log::status,
            request_log::source_ip,
            request_log::kind,
            request_log::code,
        ))
        .load(&mut *conn)
        .unwrap();
    assert_eq!(
        rows.len(),
        6,
        "the verified key's uses are logged, one row each"
    );
    assert!(rows.iter().all(|r| r.0 == "POST"
        && r.1 == "/api/v1/keys/verify"
        && r.2 == 200
        && r.4 == "verify"
        && r.5.as_deref() == Some("VALID")));
    assert_eq!(
        rows.iter()
            .filter(|r| r.3.as_deref() == Some("198.51.100.4"))
            .count(),
        5,
        "the address the verification vouched for"
    );
    assert_eq!(rollup_total(&w.app, target_id, "minute", Some("VALID")), 6);
    let quiet_rows: i64 = request_log::table
        .filter(request_log::api_key_id.eq(quiet_id))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(quiet_rows, 0, "off the record");
    let (used_at, used_ip): (Option<time::PrimitiveDateTime>, Option<String>) = api_keys::table
        .find(quiet_id)
        .select((api_keys::last_used_at, api_keys::last_used_ip))
        .first(&mut *conn)
        .unwrap();
    assert!(used_at.is_some());
    assert_eq!(
        used_ip, None,
        "no address is kept for an off-the-record key"
    );
    let (_, target_ip): (Option<time::PrimitiveDateTime>, Option<String>) = api_keys::table
        .find(target_id)
        .select((api_keys::last_used_at, api_keys::last_used_ip))
        .first(&mut *conn)
        .unwrap();
    assert_eq!(
        target_ip.as_deref(),
        Some("198.51.100.4"),
        "the address the verified key was used from"
    );
    // A refused request is logged against the key that tried, with its status and the
    // route pattern (never the raw path).
    let reader_rows: Vec<(i32, String, String)> = request_log::table
        .filter(request_log::api_key_id.eq(id_of(key_id_of(&reader))))
        .select((request_log::status, request_log::route, request_log::kind))
        .load(&mut *conn)
        .unwrap();
    assert_eq!(
        reader_rows,
        [(404, "/api/v1/keys/{key_id}".to_owned(), "api".to_owned())]
    );
}

#[tokio::test]
async fn buffered_log_lines_survive_a_graceful_shutdown() {
    let mut w = world_with(Options {
        env: vec![("LATCHKEY_USAGE_FLUSH_MS".into(), "600000".into())],
    })
    .await;
    let api = w.app.api(&w.verifier);
    let target = key(&w.admin, w.acme, "target", &[], &[]).await;
    for _ in 0..30 {
        assert_eq!(api.code(&target, None, &[]).await, "VALID");
    }
    let before: i64 = request_log::table
        .count()
        .get_result(&mut *w.app.conn())
        .unwrap();
    assert_eq!(before, 0, "nothing is written before the batch is due");
    let status = w.app.terminate();
    assert!(status.success(), "clean exit: {status}");
    let after: i64 = request_log::table
        .count()
        .get_result(&mut *w.app.conn())
        .unwrap();
    assert_eq!(after, 30, "one line per verification: the verified key's");
    let target_id = crate::fixtures::stored(&w.app, &key_id_of(&target)).id;
    let verifier_id = crate::fixtures::stored(&w.app, &key_id_of(&w.verifier)).id;
    assert_eq!(rollup_total(&w.app, target_id, "hour", Some("VALID")), 30);
    assert_eq!(
        rollup_total(&w.app, verifier_id, "hour", Some("API_2XX")),
        30
    );
    assert!(w.app.logs().contains("request log flushed at shutdown"));
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let res = reqwest::get(format!("http://{}/api/v1/openapi.json", app.base))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let doc: serde_json::Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/keys/verify",
        "/keys",
        "/keys/{key_id}",
        "/keys/{key_id}/enable",
        "/keys/{key_id}/disable",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let ping = reqwest::get(format!("http://{}/api/v1/ping", app.base))
        .await
        .unwrap();
    assert_eq!(ping.status().as_u16(), 200);
}

#[tokio::test]
async fn the_key_detail_view_shows_usage_charts_and_a_filterable_log() {
    let w = world().await;
    let api = w.app.api(&w.verifier);
    let target = key(&w.admin, w.acme, "target", &["verify"], &[]).await;
    for _ in 0..3 {
        assert_eq!(api.code(&target, Some("198.51.100.4"), &[]).await, "VALID");
    }
    assert_eq!(
        api.code(&target, Some("198.51.100.4"), &["keys:write"])
            .await,
        "INSUFFICIENT_SCOPE"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let vid = key_id_of(&w.verifier);
    let page = w.admin.get(&format!("/keys/{vid}")).await;
    page.assert_status(200);
    assert!(page.body.contains("Requests per day, last 30 days"));
    assert!(page.body.contains("Requests per hour, last 48 hours"));
    assert!(
        page.body.contains("· 4 total"),
        "both charts count the 4 requests"
    );
    assert_eq!(
        page.body.matches("<rect class=\"chart-bar\"").count(),
        2,
        "one non-empty bar per chart"
    );
    assert!(page.body.contains("<code>API_2XX</code> 4"));
    // The caller's verification requests are counted (above), not logged: each is the
    // verified key's row.
    assert_eq!(page.body.matches("<td data-label=\"Status\">").count(), 0);
    assert!(
        page.body.contains("from <code>127.0.0.1</code>"),
        "last used address"
    );
    // The verified key's own log: 3 successes and 1 refusal, filterable.
    let tid = key_id_of(&target);
    let all = w.admin.get(&format!("/keys/{tid}")).await;
    assert_eq!(all.body.matches("<td data-label=\"Status\">").count(), 4);
    assert_eq!(all.body.matches(">Verified by a caller<").count(), 4);
    assert!(
        all.body.contains("<code>VALID</code> 3")
            && all.body.contains("<code>INSUFFICIENT_SCOPE</code> 1")
    );
    let refused = w
        .admin
        .hx_get(&format!("/keys/{tid}?status=4xx"), "request-log")
        .await;
    assert!(refused.body.starts_with("<section id=\"request-log\""));
    assert_eq!(
        refused.body.matches("<td data-label=\"Status\">").count(),
        1
    );
    assert!(refused.body.contains(">INSUFFICIENT_SCOPE<"));
    let ok = w
        .admin
        .hx_get(&format!("/keys/{tid}?status=2xx"), "request-log")
        .await;
    assert_eq!(ok.body.matches("<td data-label=\"Status\">").count(), 3);
    // Off the record says so instead of a log.
    let quiet = key(&w.admin, w.acme, "quiet", &[], &[("off_the_record", "on")]).await;
    let q = w.admin.get(&format!("/keys/{}", key_id_of(&quiet))).await;
    assert!(
        q.body
            .contains("its requests are counted in the charts but not written to the request log")
    );
}

#[tokio::test]
async fn the_request_log_pages_backwards_in_time() {
    let w = world().await;
    let vid = key_id_of(&w.verifier);
    let id: i64 = api_keys::table
        .filter(api_keys::key_id.eq(&vid))
        .select(api_keys::id)
        .first(&mut *w.app.conn())
        .unwrap();
    let now = latchkey::db::now();
    let rows: Vec<latchkey::db::usage::NewRequest> = (0..120)
        .map(|i| latchkey::db::usage::NewRequest {
            occurred_at: now - time::Duration::minutes(i),
            api_key_id: id,
            channel_id: w.acme,
            method: "GET",
            route: format!("/api/v1/keys#{i}"),
            status: 200,
            source_ip: None,
            kind: "api",
            code: None,
        })
        .collect();
    // Through the raw rows' own connection on SQLite (db::raw_log), COPY on PostgreSQL.
    let raw = latchkey::db::raw_log::RawLogWriter::default();
    let unwritten = latchkey::db::usage::write_batch(&mut w.app.conn(), &raw, &rows, &[], &[])
        .expect("counts written");
    assert!(unwritten.is_none(), "rows written: {unwritten:?}");
    let first = w.admin.get(&format!("/keys/{vid}")).await;
    assert_eq!(first.body.matches("<td data-label=\"Status\">").count(), 50);
    assert!(first.body.contains("disabled>← Newest</button>"));
    let marker = "rel=\"next\" href=\"";
    let at = first.body.find(marker).unwrap() + marker.len();
    let older = first.body[at..at + first.body[at..].find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let second = w.admin.get(&older).await;
    assert_eq!(
        second.body.matches("<td data-label=\"Status\">").count(),
        50
    );
    assert!(!second.body.contains("disabled>← Newest</button>"));
    // Rows are paged by id, newest id first: page two holds rows 51–100 of 120.
    assert!(second.body.contains("/api/v1/keys#30<") && !second.body.contains("/api/v1/keys#70<"));
}

#[tokio::test]
async fn metrics_count_requests_verifications_and_the_outbox() {
    let mut opts = fast_flush();
    opts.env.extend(crate::fixtures::loopback_receivers().env);
    let w = world_with(opts).await;
    let api = w.app.api(&w.verifier);
    let target = key(
        &w.admin,
        w.acme,
        "target",
        &[],
        &[("postback_url", "http://127.0.0.1:9/x")],
    )
    .await;
    assert_eq!(api.code(&target, None, &[]).await, "VALID");
    assert_eq!(api.verify("garbage").await.body["code"], "MALFORMED");
    let res = reqwest::get(format!("http://{}/metrics", w.app.base))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            "latchkey_http_requests_total{route=\"/api/v1/keys/verify\",status=\"200\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains("latchkey_verifications_total{code=\"VALID\"} 1"));
    assert!(text.contains("latchkey_verifications_total{code=\"MALFORMED\"} 1"));
    assert!(text.contains("latchkey_http_request_duration_seconds_count"));
    assert!(text.contains("latchkey_db_pool_connections"));
    assert!(
        text.contains("latchkey_outbox_backlog 1"),
        "the created event waits for an unreachable receiver"
    );
    assert!(
        !text.contains(&target[16..56]),
        "no key material in metrics"
    );
}

/// Metrics name the route pattern of every key route, never the key id in the path —
/// also when a literal segment is taken as a key id (`GET /keys/verify`), and an
/// unknown path is "unmatched".
#[tokio::test]
async fn metrics_label_each_key_route_by_its_pattern() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Routes", "").await;
    let writer = key(&admin, cid, "writer", ALL_SCOPES, &[]).await;
    let target = key(&admin, cid, "target", &[], &[]).await;
    let tid = key_id_of(&target);
    let api = app.api(&writer);
    use reqwest::Method;
    let calls = [
        (Method::GET, format!("/keys/{tid}"), None),
        (
            Method::PATCH,
            format!("/keys/{tid}"),
            Some(json!({"name": "renamed"})),
        ),
        (
            Method::POST,
            format!("/keys/{tid}/credits"),
            Some(json!({"op": "set", "amount": 5})),
        ),
        (Method::POST, format!("/keys/{tid}/postback/secret"), None),
        (Method::POST, format!("/keys/{tid}/postback/test"), None),
        (Method::POST, format!("/keys/{tid}/disable"), None),
        (Method::POST, format!("/keys/{tid}/roll"), Some(json!({}))),
        (Method::GET, "/keys/verify".to_owned(), None),
        (Method::GET, format!("/keys/{tid}/no/such/route"), None),
        (Method::DELETE, format!("/keys/{tid}"), None),
    ];
    for (method, path, body) in calls {
        let res = api.send(method.clone(), &path, body).await;
        assert!(res.status < 500, "{method} {path}: {}", res.body);
    }
    let text = app.metrics_text().await;
    let labels: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("latchkey_http_requests_total{route=\""))
        .filter_map(|l| l.split('"').next())
        .collect();
    let keyed: Vec<&str> = labels
        .iter()
        .copied()
        .filter(|l| l.starts_with("/api/v1/keys/"))
        .collect();
    assert_eq!(
        keyed,
        [
            "/api/v1/keys/{key_id}",
            "/api/v1/keys/{key_id}/credits",
            "/api/v1/keys/{key_id}/postback/secret",
            "/api/v1/keys/{key_id}/postback/test",
            "/api/v1/keys/{key_id}/roll",
            "/api/v1/keys/{key_id}/{action}",
        ],
        "{labels:?}"
    );
    assert!(labels.contains("unmatched"), "{labels:?}");
    assert!(!text.contains(&tid), "a key id in the metrics");
}
