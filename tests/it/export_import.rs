//! Export of a filter (CSV and JSON, streamed, every page, never a secret) and import
//! of keys from another system by digest (all or nothing, errors by line; imported keys
//! verify with their plaintext, are marked, and roll into Latchkey keys).

use diesel::prelude::*;
use latchkey::db::schema::{api_keys, audit_events};
use latchkey::domain::imported::{Algorithm, hex_digest};
use latchkey::domain::role::Role;

use crate::fixtures::{
    assert_refused, channel, key, key_id_of, revealed, rows_in, save_channel, seed, stored,
};
use crate::helpers::{Browser, Options, TestApp, spawn_app, spawn_on};

/// Audit details of `action`, oldest first.
fn audit_details(app: &TestApp, action: &str) -> Vec<String> {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .order(audit_events::id.asc())
        .select(audit_events::details)
        .load(&mut *app.conn())
        .unwrap()
}

/// The data lines of a CSV export (without the header).
fn csv_rows(body: &str) -> Vec<&str> {
    let mut lines = body.split("\r\n").filter(|l| !l.is_empty());
    let header = lines.next().unwrap();
    assert!(header.starts_with("key_id,obfuscated,name,"), "{header}");
    lines.collect()
}

#[tokio::test]
async fn exporting_a_filter_streams_every_matching_key_and_never_a_secret() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Exports", "10").await;
    let plain = key(&admin, cid, "match-made, \"quoted\"", &["verify"], &[]).await;
    // More matching keys than one page of the export (500), and some that do not match.
    seed(&app, cid, (0..620).map(|i| format!("match-{i:04}")));
    seed(&app, cid, (0..30).map(|i| format!("other-{i}")));
    // Seeding takes seconds on PostgreSQL: a fresh login, not a connection the server
    // may have closed as idle meanwhile.
    let admin = app.admin().await;
    let made = stored(&app, &key_id_of(&plain));
    let hashes: Vec<String> = api_keys::table
        .select(api_keys::key_hash)
        .load(&mut *app.conn())
        .unwrap();

    let res = admin
        .get(&format!("/channels/{cid}/keys/export?q=match&format=csv"))
        .await;
    res.assert_status(200);
    assert!(res.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        res.header("content-disposition")
            .unwrap()
            .contains("attachment; filename=\"latchkey-keys-exports-")
    );
    let rows = csv_rows(&res.body);
    assert_eq!(rows.len(), 621, "every page of the filter");
    assert!(rows.iter().all(|r| !r.contains("other-")));
    assert!(
        res.body.contains("\"match-made, \"\"quoted\"\"\""),
        "quoted cell"
    );
    assert!(!res.body.contains(&plain), "no plaintext");
    assert!(
        !res.body.contains(&plain[plain.len() - 20..]),
        "no part of the secret"
    );
    for h in &hashes {
        assert!(!res.body.contains(h.as_str()), "no stored hash");
    }
    assert!(!res.body.contains(&made.key_hash));

    let res = admin
        .get(&format!(
            "/channels/{cid}/keys/export?q=match&format=json&sort=name&dir=asc"
        ))
        .await;
    res.assert_status(200);
    let items: Vec<serde_json::Value> = serde_json::from_str(&res.body).unwrap();
    assert_eq!(items.len(), 621);
    assert_eq!(items[0]["name"], "match-0000", "the list's own sort");
    assert!(items.iter().all(|i| i.get("key_hash").is_none()));
    let ids: std::collections::HashSet<&str> = items
        .iter()
        .map(|i| i["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 621, "no key twice");
    assert!(!res.body.contains(&plain));

    let audit = audit_details(&app, "key.export");
    assert_eq!(audit.len(), 2, "one audit line per export: {audit:?}");
    assert!(audit[0].contains("exported 621 keys as csv") && audit[0].contains("q=\"match\""));

    // The keys page carries the export links with its filter.
    let page = admin.get(&format!("/channels/{cid}/keys?q=match")).await;
    let link = format!("/channels/{cid}/keys/export?q=match&#38;format=csv");
    assert!(page.body.contains(&link), "export link with the filter");

    // A bad format is refused with a message.
    let res = admin
        .get(&format!("/channels/{cid}/keys/export?format=xml"))
        .await;
    res.assert_status(400);
    assert!(res.body.contains("use csv or json"));
}

#[tokio::test]
async fn who_may_see_keys_may_export_them_in_the_dashboard_and_the_api() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Mine", "20").await;
    let other = channel(&app, &admin, "Theirs", "20").await;
    key(&admin, other, "foreign", &[], &[]).await;
    let reader = key(&admin, cid, "reader", &["keys:read"], &[]).await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;

    let support = app.user(Role::Support).await;
    support
        .get(&format!("/channels/{cid}/keys/export"))
        .await
        .assert_status(200);
    let all = support.get("/keys/export?format=json").await;
    all.assert_status(200);
    let items: Vec<serde_json::Value> = serde_json::from_str(&all.body).unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().any(|i| i["channel"] == "Theirs"));
    let operator = app.user(Role::Operator).await;
    operator
        .get(&format!("/channels/{cid}/keys/export"))
        .await
        .assert_status(200);
    operator.get("/keys/export").await.assert_status(403);

    let res = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/keys/export?format=json",
            app.base
        ))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let items: Vec<serde_json::Value> = res.json().await.unwrap();
    assert_eq!(items.len(), 2, "its own channel");
    let res = app
        .api(&reader)
        .get(&format!("/keys/export?channel_id={other}"))
        .await;
    assert_refused(&res, 404, "NOT_FOUND", "another channel");
    let res = app.api(&verifier).get("/keys/export").await;
    assert_refused(&res, 403, "INSUFFICIENT_SCOPE", "no keys:read");
    let res = app.api(&reader).get("/keys/export?format=pdf").await;
    assert_eq!(res.status, 422, "{}", res.body);
}

pub(crate) fn sha256(plain: &str) -> String {
    hex_digest(Algorithm::Sha256, plain)
}

fn sha512(plain: &str) -> String {
    hex_digest(Algorithm::Sha512, plain)
}

async fn import_form(b: &Browser, cid: i64, text: &str) -> crate::helpers::Response {
    b.get(&format!("/channels/{cid}/keys/import"))
        .await
        .assert_status(200);
    b.post_form(&format!("/channels/{cid}/keys/import"), &[("text", text)])
        .await
}

#[tokio::test]
async fn an_import_with_a_bad_row_in_the_middle_saves_nothing_and_names_each_line() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Imports", "10").await;
    let text = format!(
        "name,description,scopes,sha256\n\
         first,\"from the old system\",verify,{}\n\
         second,,verify,not-a-digest\n\
         third,,bogus-scope,{}\n\
         fourth,,,{}\n",
        sha256("old-1"),
        sha256("old-3"),
        sha256("old-4")
    );
    let res = import_form(&admin, cid, &text).await;
    res.assert_status(422);
    assert!(res.body.contains("Nothing was imported"), "{}", res.body);
    assert!(res.body.contains("<td>3</td><td><code>sha256</code></td>"));
    assert!(res.body.contains("<td>4</td><td><code>scopes</code></td>"));
    assert!(
        res.body.contains("first,&#34;from the old system&#34;")
            || res.body.contains("first,&quot;from the old system&quot;"),
        "what was typed is kept"
    );
    assert_eq!(rows_in(&app, cid), 0, "nothing half-imported");
    assert!(audit_details(&app, "key.import").is_empty());

    // The same file through the API: 422 with every row's problem.
    let importer = key(&admin, cid, "importer", &["keys:write", "verify"], &[]).await;
    let res = reqwest::Client::new()
        .post(format!("http://{}/api/v1/keys/import", app.base))
        .bearer_auth(&importer)
        .header("content-type", "text/csv")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "IMPORT_INVALID");
    let rows = body["error"]["rows"].as_array().unwrap();
    assert_eq!(rows[0]["line"], 3);
    assert_eq!(rows[0]["field"], "sha256");
    assert_eq!(rows[1]["line"], 4);
    assert_eq!(rows[1]["field"], "scopes");
    assert_eq!(rows_in(&app, cid), 1, "only the importer key");

    // A name already in the channel, and the channel's limit, refuse the whole file.
    let res = import_form(
        &admin,
        cid,
        &format!("name,sha256\nimporter,{}\n", sha256("x")),
    )
    .await;
    res.assert_status(422);
    assert!(res.body.contains("already exists in this channel"));
    save_channel(&admin, cid, "Imports", "3").await;
    let three: String = (0..3)
        .map(|i| format!("n{i},{}\n", sha256(&format!("k{i}"))))
        .collect();
    let res = import_form(&admin, cid, &format!("name,sha256\n{three}")).await;
    res.assert_status(422);
    assert!(res.body.contains("limit of 3 keys"), "{}", res.body);
    assert_eq!(rows_in(&app, cid), 1);
}

#[tokio::test]
async fn imported_keys_verify_with_their_plaintext_are_marked_and_roll_into_latchkey_keys() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Legacy", "10").await;
    let elsewhere = channel(&app, &admin, "Elsewhere", "10").await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let outsider = key(&admin, elsewhere, "outsider", &["verify"], &[]).await;
    // Before any import, a key of another format is malformed.
    assert_eq!(
        app.api(&verifier)
            .code("sk_live_legacy_one", None, &[])
            .await,
        "MALFORMED"
    );

    let json = serde_json::json!([
        { "name": "legacy one", "scopes": ["verify"], "sha256": sha256("sk_live_legacy_one") },
        { "name": "legacy two", "description": "billing", "cidrs": ["127.0.0.0/8"], "sha512": sha512("sk_live_legacy_two") },
    ]);
    let res = import_form(&admin, cid, &serde_json::to_string_pretty(&json).unwrap()).await;
    res.assert_status(303);
    assert_eq!(rows_in(&app, cid), 3);
    let audit = audit_details(&app, "key.import");
    assert_eq!(audit.len(), 2, "one audit line per imported key");
    assert!(audit[0].contains("imported by its sha256 digest"));

    let res = app.api(&verifier).verify("sk_live_legacy_one").await;
    assert_eq!(res.body["code"], "VALID", "{}", res.body);
    assert_eq!(res.body["name"], "legacy one");
    assert_eq!(
        app.api(&verifier)
            .code("sk_live_legacy_two", Some("127.0.0.1"), &[])
            .await,
        "VALID"
    );
    assert_eq!(
        app.api(&verifier)
            .code("sk_live_legacy_two", Some("10.0.0.1"), &[])
            .await,
        "IP_NOT_ALLOWED"
    );
    assert_eq!(
        app.api(&verifier)
            .code("sk_live_legacy_three", None, &[])
            .await,
        "MALFORMED"
    );
    assert_eq!(
        app.api(&outsider)
            .code("sk_live_legacy_one", None, &[])
            .await,
        "NOT_FOUND",
        "out of reach"
    );

    // Marked in the table, in the API and in the export; the same digest twice is refused.
    let page = admin.get(&format!("/channels/{cid}/keys")).await;
    assert_eq!(page.body.matches("badge-imported").count(), 2);
    let one: String = api_keys::table
        .filter(api_keys::name.eq("legacy one"))
        .select(api_keys::key_id)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(stored(&app, &one).imported_as.as_deref(), Some("sha256"));
    let again = import_form(
        &admin,
        cid,
        &format!(
            "name,sha256\nlegacy again,{}\n",
            sha256("sk_live_legacy_one")
        ),
    )
    .await;
    again.assert_status(422);
    assert!(again.body.contains("imported already"));

    // Rolling gives a Latchkey key; the imported one works through its grace.
    admin.get(&format!("/channels/{cid}/keys")).await;
    let res = admin
        .hx_post(
            &format!("/keys/{one}/roll"),
            "roll-form",
            &[("grace", "1h")],
        )
        .await;
    res.assert_status(200);
    let new = revealed(&res.body);
    assert!(new.starts_with("lk_"));
    let successor = stored(&app, &key_id_of(&new));
    assert_eq!(successor.name, "legacy one");
    assert_eq!(successor.imported_as, None, "a normal Latchkey key");
    assert_eq!(app.api(&verifier).code(&new, None, &[]).await, "VALID");
    assert_eq!(
        app.api(&verifier)
            .code("sk_live_legacy_one", None, &[])
            .await,
        "VALID",
        "the imported key keeps working for the grace"
    );
    assert!(stored(&app, &one).rolled_to_key_id.is_some());
}

#[tokio::test]
async fn importing_needs_the_create_permission_and_stays_within_the_importing_keys_powers() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Guarded", "20").await;
    let support = app.user(Role::Support).await;
    support
        .get(&format!("/channels/{cid}/keys/import"))
        .await
        .assert_status(403);
    let res = support
        .post_form(
            &format!("/channels/{cid}/keys/import"),
            &[("text", &format!("name,sha256\nx,{}\n", sha256("x")))],
        )
        .await;
    res.assert_status(403);
    let operator = app.user(Role::Operator).await;
    let res = import_form(
        &operator,
        cid,
        &format!("name,sha256\nby operator,{}\n", sha256("op")),
    )
    .await;
    res.assert_status(303);

    let reader = key(&admin, cid, "reader", &["keys:read"], &[]).await;
    let res = app
        .api(&reader)
        .post("/keys/import", serde_json::json!([]))
        .await;
    assert_refused(&res, 403, "INSUFFICIENT_SCOPE", "keys:read cannot import");
    let writer = key(&admin, cid, "writer", &["keys:write"], &[]).await;
    let res = app
        .api(&writer)
        .post(
            "/keys/import",
            serde_json::json!([
                { "name": "weaker", "sha256": sha256("w1") },
                { "name": "stronger", "scopes": ["keys:admin"], "sha256": sha256("w2") },
            ]),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.body["error"]["rows"][0]["item"], 2, "the second key");
    assert_eq!(res.body["error"]["rows"][0]["field"], "scopes");
    let res = app
        .api(&writer)
        .post(
            "/keys/import",
            serde_json::json!([{ "name": "weaker", "sha256": sha256("w1") }]),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["imported"], 1);
    assert_eq!(res.body["data"][0]["imported_as"], "sha256");
    assert!(res.body["data"][0].get("key").is_none());

    // Larger than 2 MiB: refused before it is read.
    let big = "x".repeat(2 * 1024 * 1024 + 1);
    let res = reqwest::Client::new()
        .post(format!("http://{}/api/v1/keys/import", app.base))
        .bearer_auth(&writer)
        .header("content-type", "text/csv")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn a_key_imported_on_one_instance_verifies_on_another_within_about_a_second() {
    let one = spawn_app().await;
    let two = spawn_on(one.db.clone(), Options::default()).await;
    let admin = one.admin().await;
    let cid = channel(&one, &admin, "Shared", "10").await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    // The second instance has looked: no imported keys yet.
    assert_eq!(
        two.api(&verifier).code("legacy_shared_1", None, &[]).await,
        "MALFORMED"
    );
    import_form(
        &admin,
        cid,
        &format!("name,sha512\nshared,{}\n", sha512("legacy_shared_1")),
    )
    .await
    .assert_status(303);
    let started = std::time::Instant::now();
    loop {
        if two.api(&verifier).code("legacy_shared_1", None, &[]).await == "VALID" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "the other instance learns of imports within about a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // An imported key's page opens like any key's.
    let kid: String = api_keys::table
        .filter(api_keys::name.eq("shared"))
        .select(api_keys::key_id)
        .first(&mut *one.conn())
        .unwrap();
    let page = admin.get(&format!("/keys/{kid}")).await;
    page.assert_status(200);
}

#[tokio::test]
async fn the_dashboard_takes_imports_larger_than_other_forms_up_to_256_kib() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Bulk", "1000").await;
    // About 110 KiB: past the 64 KiB of the other forms.
    let rows: String = (0..600)
        .map(|i| {
            format!(
                "bulk-{i:04},\"{}\",{}\n",
                "d".repeat(40),
                sha512(&format!("bulk-{i}"))
            )
        })
        .collect();
    let text = format!("name,description,sha512\n{rows}");
    assert!(text.len() > 100 * 1024);
    import_form(&admin, cid, &text).await.assert_status(303);
    assert_eq!(rows_in(&app, cid), 600);
    // Past 256 KiB: 413 with a message that names the import's limit.
    let huge = format!("name,sha256\n{}", "x".repeat(300 * 1024));
    let res = admin
        .post_form(&format!("/channels/{cid}/keys/import"), &[("text", &huge)])
        .await;
    res.assert_status(413);
    assert!(res.body.contains("256 KiB"), "{}", res.body);
}
