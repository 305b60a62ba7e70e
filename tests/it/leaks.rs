//! Leak reports in GitHub's secret-scanning partner format, signed with ECDSA keys made
//! here: a signed report deactivates (or flags) each reported key once, audits the URL
//! and sends `key.leaked`; forged, tampered, unsigned and replayed reports change
//! nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use diesel::prelude::*;
use latchkey::db::schema::{audit_events, outbox};
use latchkey::domain::imported::{Algorithm, hex_digest};
use latchkey::domain::leak_report::pem_of_p256_point;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

use crate::fixtures::{UNREACHABLE_HOOK, channel, key, key_id_of, stored};
use crate::helpers::{Options, TestApp, spawn_app, spawn_app_with};

const KEY_ID: &str = "f9525bf080f75b3506ca1ead061add62b8633a346606dc5fe544e29231c6ee0d";

fn pair() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

fn sign(k: &EcdsaKeyPair, body: &[u8]) -> String {
    STANDARD.encode(k.sign(&SystemRandom::new(), body).unwrap().as_ref())
}

/// The trusted keys as GitHub publishes them, inline.
fn keys_setting(k: &EcdsaKeyPair) -> String {
    serde_json::json!({ "public_keys": [{
        "key_identifier": KEY_ID,
        "key": pem_of_p256_point(k.public_key().as_ref()),
        "is_current": true,
    }]})
    .to_string()
}

async fn spawn(k: &EcdsaKeyPair, action: &str) -> TestApp {
    spawn_with(keys_setting(k), action).await
}

async fn spawn_with(setting: String, action: &str) -> TestApp {
    spawn_app_with(Options {
        env: vec![
            ("LATCHKEY_LEAK_REPORT_KEYS".into(), setting),
            ("LATCHKEY_LEAK_ACTION".into(), action.into()),
            (
                "LATCHKEY_POSTBACK_ALLOW".into(),
                crate::postback::LOOPBACK.into(),
            ),
            // Events stay in the outbox, where the test reads them.
            ("LATCHKEY_POSTBACK_POLL_MS".into(), "1000000000".into()),
        ],
    })
    .await
}

/// Posts a report: `(status, body)`.
async fn post(
    app: &TestApp,
    body: &str,
    identifier: Option<&str>,
    signature: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(format!("http://{}/api/v1/leak-reports", app.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(i) = identifier {
        req = req.header("Github-Public-Key-Identifier", i);
    }
    if let Some(s) = signature {
        req = req.header("Github-Public-Key-Signature", s);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

fn count(app: &TestApp, action: &str) -> i64 {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

fn leaked_events(app: &TestApp) -> Vec<String> {
    outbox::table
        .filter(outbox::event_type.eq("key.leaked"))
        .select(outbox::payload)
        .load(&mut *app.conn())
        .unwrap()
}

#[tokio::test]
async fn a_signed_report_deactivates_each_reported_key_once_and_answers_in_githubs_format() {
    let github = pair();
    let app = spawn(&github, "deactivate").await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Leaky", "20").await;
    let leaked = key(
        &admin,
        cid,
        "leaked",
        &["verify"],
        &[("postback_url", UNREACHABLE_HOOK)],
    )
    .await;
    let safe = key(&admin, cid, "safe", &["verify"], &[]).await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let leaked_id = key_id_of(&leaked);
    let url = "http://127.0.0.1:9/octo/repo/blob/abc/config.env";
    let body = serde_json::json!([
        { "token": leaked, "type": "latchkey_api_key", "url": url, "source": "content" },
        { "token": "lk_notARealKey_123", "type": "latchkey_api_key", "url": url, "source": "content" },
    ])
    .to_string();

    // Forged (another key under the trusted identifier), tampered, unsigned, unknown
    // identifier: refused, and nothing changes.
    let forged = sign(&pair(), body.as_bytes());
    let tampered = body.replace("config.env", "other.env");
    let good = sign(&github, body.as_bytes());
    for (what, b, id, sig) in [
        ("forged", body.as_str(), Some(KEY_ID), Some(forged.as_str())),
        (
            "tampered",
            tampered.as_str(),
            Some(KEY_ID),
            Some(good.as_str()),
        ),
        ("unsigned", body.as_str(), None, None),
        ("no signature", body.as_str(), Some(KEY_ID), None),
        (
            "unknown key",
            body.as_str(),
            Some("abc"),
            Some(good.as_str()),
        ),
        ("not base64", body.as_str(), Some(KEY_ID), Some("!!!")),
    ] {
        let (status, res) = post(&app, b, id, sig).await;
        assert_eq!(status, 401, "{what}: {res}");
        assert!(res["error"]["code"].is_string(), "{what}: {res}");
    }
    assert!(stored(&app, &leaked_id).enabled, "nothing changed");
    assert_eq!(count(&app, "key.leak"), 0);
    assert!(leaked_events(&app).is_empty());

    let (status, res) = post(&app, &body, Some(KEY_ID), Some(&good)).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(
        res,
        serde_json::json!([
            { "token_raw": leaked, "token_type": "latchkey_api_key", "label": "true_positive" },
            { "token_raw": "lk_notARealKey_123", "token_type": "latchkey_api_key", "label": "false_positive" },
        ])
    );
    let k = stored(&app, &leaked_id);
    assert!(!k.enabled && k.deactivated_by_person && k.leaked_at.is_some());
    assert!(stored(&app, &key_id_of(&safe)).enabled);
    assert_eq!(
        app.api(&verifier).code(&leaked, None, &[]).await,
        "DISABLED",
        "revoked at once"
    );
    let details: String = audit_events::table
        .filter(audit_events::action.eq("key.leak"))
        .select(audit_events::details)
        .first(&mut *app.conn())
        .unwrap();
    assert!(
        details.contains(url) && details.contains("deactivated"),
        "{details}"
    );
    let events = leaked_events(&app);
    assert_eq!(events.len(), 1);
    assert!(events[0].contains(&leaked_id) && !events[0].contains(&leaked));

    // Replayed: the same answer, and no second audit line or event.
    let (status, again) = post(&app, &body, Some(KEY_ID), Some(&good)).await;
    assert_eq!(status, 200);
    assert_eq!(again, res);
    assert_eq!(count(&app, "key.leak"), 1);
    assert_eq!(leaked_events(&app).len(), 1);

    // A leaked key shows its badge; an API key cannot turn it back on.
    let page = admin.get(&format!("/channels/{cid}/keys")).await;
    assert!(page.body.contains(">leaked</span>"));
    let writer = key(&admin, cid, "writer", &["keys:write", "keys:admin"], &[]).await;
    let res = app
        .api(&writer)
        .post(
            &format!("/keys/{leaked_id}/activate"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);

    // Malformed but signed: 400, nothing done.
    let junk = "{\"not\": \"an array\"}";
    let (status, _) = post(
        &app,
        junk,
        Some(KEY_ID),
        Some(&sign(&github, junk.as_bytes())),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn flag_mode_marks_and_audits_without_deactivating_and_imported_keys_are_found_too() {
    let github = pair();
    // The keys in a file this time, as GitHub's document would be saved.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("github-keys.json");
    std::fs::write(&file, keys_setting(&github)).unwrap();
    let app = spawn_with(file.display().to_string(), "flag").await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Flags", "20").await;
    let leaked = key(&admin, cid, "leaked", &["verify"], &[]).await;
    admin
        .get(&format!("/channels/{cid}/keys/import"))
        .await
        .assert_status(200);
    admin
        .post_form(
            &format!("/channels/{cid}/keys/import"),
            &[(
                "text",
                &format!(
                    "name,sha256\nlegacy,{}\n",
                    hex_digest(Algorithm::Sha256, "legacy_secret_1")
                ),
            )],
        )
        .await
        .assert_status(303);
    let body = serde_json::json!([
        { "token": leaked, "type": "latchkey_api_key", "url": "http://127.0.0.1:9/gist/x", "source": "gist" },
        { "token": "legacy_secret_1", "type": "latchkey_api_key", "url": "http://127.0.0.1:9/y", "source": "content" },
    ])
    .to_string();
    let (status, res) = post(
        &app,
        &body,
        Some(KEY_ID),
        Some(&sign(&github, body.as_bytes())),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res[0]["label"], "true_positive");
    assert_eq!(res[1]["label"], "true_positive", "the imported key");
    let k = stored(&app, &key_id_of(&leaked));
    assert!(k.enabled, "flag only");
    assert!(k.leaked_at.is_some());
    assert_eq!(count(&app, "key.leak"), 2);
    let details: Vec<String> = audit_events::table
        .filter(audit_events::action.eq("key.leak"))
        .select(audit_events::details)
        .load(&mut *app.conn())
        .unwrap();
    assert!(details.iter().all(|d| d.contains("flagged")), "{details:?}");
}

#[tokio::test]
async fn without_trusted_keys_the_endpoint_is_not_there() {
    let app = spawn_app().await;
    let (status, res) = post(&app, "[]", Some(KEY_ID), Some("x")).await;
    assert_eq!(status, 404, "{res}");
}

#[test]
fn the_documented_regular_expression_is_the_one_the_code_describes() {
    let pattern = latchkey::domain::leak_report::key_pattern("lk");
    assert_eq!(pattern, r"\blk_[A-Za-z0-9]{12}_[A-Za-z0-9]{48}\b");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for doc in ["README.md", "SECURITY.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        assert!(text.contains(&pattern), "{doc} documents {pattern}");
    }
}
