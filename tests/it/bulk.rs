//! Bulk actions: every key a filter matches across pages (resolved on the server),
//! explicit selections, refused keys reported, each key audited with its event in the
//! outbox, and the same rules over the API.

use diesel::prelude::*;
use latchkey::db::schema::{api_keys, audit_events, outbox};
use latchkey::domain::role::Role;
use serde_json::json;

use crate::fixtures::{
    UNREACHABLE_HOOK, channel, error_code, key, key_id_of, loopback_receivers, range_of, seed,
    stored, system_channel,
};
use crate::helpers::{Browser, TestApp, spawn_app_with};

fn enabled_named(app: &TestApp, channel_id: i64, prefix: &str) -> (i64, i64) {
    let rows: Vec<bool> = api_keys::table
        .filter(api_keys::channel_id.eq(channel_id))
        .filter(api_keys::name.like(format!("{prefix}%")))
        .select(api_keys::enabled)
        .load(&mut *app.conn())
        .unwrap();
    let on = rows.iter().filter(|e| **e).count() as i64;
    (on, rows.len() as i64 - on)
}

fn audited(app: &TestApp, action: &str) -> i64 {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

fn queued(app: &TestApp, event_type: &str) -> i64 {
    outbox::table
        .filter(outbox::event_type.eq(event_type))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

/// A channel with 120 keys named `match-…` and 30 named `other-…`, each with a POSTback
/// URL (so each change queues an event).
async fn crowded(app: &TestApp, admin: &Browser) -> i64 {
    let cid = channel(app, admin, "Crowded", "500").await;
    seed(app, cid, (0..120).map(|i| format!("match-{i:03}")));
    seed(app, cid, (0..30).map(|i| format!("other-{i:03}")));
    diesel::update(api_keys::table.filter(api_keys::channel_id.eq(cid)))
        .set(api_keys::postback_url.eq(Some(UNREACHABLE_HOOK)))
        .execute(&mut *app.conn())
        .unwrap();
    cid
}

#[tokio::test]
async fn all_matching_a_filter_across_three_pages_deactivates_exactly_those_keys() {
    let app = spawn_app_with(loopback_receivers()).await;
    let admin = app.admin().await;
    let cid = crowded(&app, &admin).await;
    let list = format!("/channels/{cid}/keys?q=match&size=50");
    let page = admin.get(&list).await;
    page.assert_status(200);
    assert_eq!(range_of(&page.body), "1–50 of 120");
    assert!(
        page.body
            .contains("Select all 120 keys matching this filter"),
        "the offer to select across pages"
    );
    assert!(page.body.contains("id=\"bulk-form\""));
    assert!(page.body.contains("form=\"bulk-form\" data-bulk-row"));

    let cid_s = cid.to_string();
    let confirm = admin
        .get(&format!(
            "/keys/bulk/confirm?action=deactivate&all=1&channel={cid}&q=match"
        ))
        .await;
    confirm.assert_status(200);
    assert!(
        confirm.body.contains("Deactivate 120 keys?"),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("Deactivate 120 keys</button>"));

    let res = admin
        .post_form(
            "/keys/bulk",
            &[
                ("action", "deactivate"),
                ("all", "1"),
                ("channel", &cid_s),
                ("q", "match"),
            ],
        )
        .await;
    res.assert_status(303);
    assert_eq!(
        res.location(),
        Some(format!("/channels/{cid}/keys?q=match").as_str())
    );
    let back = admin.get(&format!("/channels/{cid}/keys?q=match")).await;
    assert!(back.body.contains("120 keys deactivated."), "the summary");

    assert_eq!(enabled_named(&app, cid, "match-"), (0, 120));
    assert_eq!(
        enabled_named(&app, cid, "other-"),
        (30, 0),
        "others untouched"
    );
    assert_eq!(audited(&app, "key.deactivate"), 120, "each key audited");
    assert_eq!(
        queued(&app, "key.deactivated"),
        120,
        "each key's event queued"
    );

    // Again: nothing left to do, and nothing audited twice.
    let again = admin
        .hx_post(
            "/keys/bulk",
            "bulk-confirm",
            &[
                ("action", "deactivate"),
                ("all", "1"),
                ("channel", &cid_s),
                ("q", "match"),
            ],
        )
        .await;
    again.assert_status(200);
    assert!(
        again
            .body
            .contains("0 keys deactivated. 120 already inactive."),
        "{}",
        again.body
    );
    assert_eq!(again.header("hx-trigger"), Some("keys-changed"));
    assert_eq!(audited(&app, "key.deactivate"), 120);
}

#[tokio::test]
async fn explicit_ids_set_the_expiry_and_bad_input_is_refused_with_a_message() {
    let app = spawn_app_with(loopback_receivers()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Few", "20").await;
    let a = key_id_of(&key(&admin, cid, "a", &["verify"], &[]).await);
    let b = key_id_of(&key(&admin, cid, "b", &["verify"], &[]).await);
    let c = key_id_of(&key(&admin, cid, "c", &["verify"], &[]).await);
    let when = crate::fixtures::days_from_now(3);
    let res = admin
        .hx_post(
            "/keys/bulk",
            "bulk-confirm",
            &[
                ("action", "expiry"),
                ("ids", &a),
                ("ids", &b),
                ("expires_at", &when),
            ],
        )
        .await;
    res.assert_status(200);
    assert!(
        res.body.contains("2 keys given the new expiry."),
        "{}",
        res.body
    );
    assert!(stored(&app, &a).expires_at.is_some());
    assert!(stored(&app, &b).expires_at.is_some());
    assert!(stored(&app, &c).expires_at.is_none(), "not selected");
    assert_eq!(audited(&app, "key.update"), 2);

    // The table shows how far off that is, and the expiry filter finds them.
    let page = admin
        .get(&format!("/channels/{cid}/keys?risk=expiring&sort=expires"))
        .await;
    assert!(page.body.contains("in 2 days") || page.body.contains("in 3 days"));
    assert_eq!(range_of(&page.body), "1–2 of 2");

    // A past expiry is refused next to the field, with what was typed.
    let past = admin
        .hx_post(
            "/keys/bulk",
            "bulk-confirm",
            &[
                ("action", "expiry"),
                ("ids", &c),
                ("expires_at", "2001-01-01T00:00"),
            ],
        )
        .await;
    past.assert_status(422);
    assert!(past.body.contains("Choose a time in the future"));
    assert!(past.body.contains("value=\"2001-01-01T00:00\""));
    // Junk selections get a clear 400.
    for fields in [
        vec![("action", "explode"), ("ids", a.as_str())],
        vec![("action", "delete")],
        vec![("action", "delete"), ("ids", "not a key id")],
    ] {
        let res = admin.post_form("/keys/bulk", &fields).await;
        res.assert_status(400);
    }
}

#[tokio::test]
async fn support_may_bulk_revoke_and_system_keys_are_refused_and_reported() {
    let app = spawn_app_with(loopback_receivers()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Shop", "20").await;
    let a = key_id_of(&key(&admin, cid, "a", &["verify"], &[]).await);
    let b = key_id_of(&key(&admin, cid, "b", &["verify"], &[]).await);
    let sys = key_id_of(&key(&admin, system_channel(&app), "sys", &["verify"], &[]).await);
    let gone = key_id_of(&key(&admin, cid, "gone", &["verify"], &[]).await);
    admin
        .post_form(&format!("/keys/{gone}/delete"), &[])
        .await
        .assert_status(303);

    let support = app.user(Role::Support).await;
    // All keys shows support the bulk bar with revoke actions only.
    let page = support.get("/keys").await;
    assert!(page.body.contains("value=\"deactivate\""));
    assert!(page.body.contains("value=\"delete\""));
    assert!(!page.body.contains("value=\"activate\""));
    assert!(!page.body.contains("value=\"expiry\""));

    let res = support
        .hx_post(
            "/keys/bulk",
            "bulk-confirm",
            &[
                ("action", "deactivate"),
                ("ids", &a),
                ("ids", &sys),
                ("ids", &b),
                ("ids", &gone),
            ],
        )
        .await;
    res.assert_status(200);
    assert!(
        res.body.contains("2 keys deactivated. 2 refused: 1 in the system channel, which only admins may change; 1 not found"),
        "{}",
        res.body
    );
    assert!(!stored(&app, &a).enabled && !stored(&app, &b).enabled);
    assert!(stored(&app, &sys).enabled, "the system key is untouched");

    // What support may not do singly, it may not do in bulk either.
    for action in ["activate", "expiry"] {
        let res = support
            .post_form("/keys/bulk", &[("action", action), ("ids", &a)])
            .await;
        res.assert_status(403);
        let res = support
            .get(&format!("/keys/bulk/confirm?action={action}&ids={a}"))
            .await;
        res.assert_status(403);
    }
    assert!(!stored(&app, &a).enabled);
    // "All matching" on All keys never reaches the hidden system channel.
    let res = support
        .post_form("/keys/bulk", &[("action", "delete"), ("all", "1")])
        .await;
    res.assert_status(303);
    assert!(crate::fixtures::exists(&app, &sys));
    assert!(!crate::fixtures::exists(&app, &a));
    // Operators have no All keys: a selection by filter needs a channel.
    let operator = app.user(Role::Operator).await;
    operator
        .post_form("/keys/bulk", &[("action", "deactivate"), ("all", "1")])
        .await
        .assert_status(403);
}

#[tokio::test]
async fn bulk_over_the_api_needs_the_scope_and_applies_the_key_policy_per_key() {
    let app = spawn_app_with(loopback_receivers()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Api", "50").await;
    let other = channel(&app, &admin, "Elsewhere", "50").await;
    let reader = key(&admin, cid, "reader", &["keys:read"], &[]).await;
    let writer = key(&admin, cid, "writer", &["keys:read", "keys:write"], &[]).await;
    let weak = key_id_of(&key(&admin, cid, "weak", &["keys:read"], &[]).await);
    let strong = key_id_of(&key(&admin, cid, "strong", &["keys:admin"], &[]).await);
    let far = key_id_of(&key(&admin, other, "far", &["verify"], &[]).await);

    let res = app
        .api(&reader)
        .post(
            "/keys/bulk",
            json!({ "action": "deactivate", "ids": [weak] }),
        )
        .await;
    assert_eq!((res.status, error_code(&res)), (403, "INSUFFICIENT_SCOPE"));
    assert!(stored(&app, &weak).enabled);

    let api = app.api(&writer);
    let res = api
        .post(
            "/keys/bulk",
            json!({ "action": "deactivate", "ids": [weak, strong, far] }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["changed"], json!([weak]));
    let refused = res.body["refused"].as_array().unwrap();
    let code_of = |id: &str| {
        refused
            .iter()
            .find(|r| r["key_id"] == id)
            .map(|r| r["code"].as_str().unwrap().to_owned())
    };
    assert_eq!(code_of(&strong).as_deref(), Some("TARGET_MORE_POWERFUL"));
    assert_eq!(
        code_of(&far).as_deref(),
        Some("NOT_FOUND"),
        "another channel is out of reach"
    );
    assert!(!stored(&app, &weak).enabled);
    assert!(stored(&app, &strong).enabled && stored(&app, &far).enabled);

    // Re-activating another key needs keys:admin, as it does singly.
    let res = api
        .post("/keys/bulk", json!({ "action": "activate", "ids": [weak] }))
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["refused"][0]["code"], "ADMIN_SCOPE_REQUIRED");

    // A filter stays inside the key's reach: its own channel.
    let res = api
        .post(
            "/keys/bulk",
            json!({ "action": "deactivate", "filter": { "q": "far" } }),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["changed"], json!([]));
    assert!(stored(&app, &far).enabled);
    let res = api
        .post(
            "/keys/bulk",
            json!({ "action": "deactivate", "filter": { "channel_id": other } }),
        )
        .await;
    assert_eq!(res.status, 404);
    // A filter never takes the calling key with it (named by id, it may).
    let res = api
        .post(
            "/keys/bulk",
            json!({ "action": "deactivate", "filter": { "q": "writer" } }),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["refused"][0]["code"], "CALLING_KEY");
    assert!(stored(&app, &key_id_of(&writer)).enabled);

    // Bad bodies: a clear 4xx naming the field.
    for body in [
        json!({ "action": "explode", "ids": [weak] }),
        json!({ "action": "delete" }),
        json!({ "action": "delete", "ids": [weak], "filter": {} }),
        json!({ "action": "delete", "ids": ["nope"] }),
        json!({ "action": "expiry", "ids": [weak], "expires_at": "2001-01-01T00:00:00Z" }),
        json!({ "action": "delete", "ids": [weak], "expires_at": "2031-01-01T00:00:00Z" }),
    ] {
        let res = api.post("/keys/bulk", body.clone()).await;
        assert!(
            (400..500).contains(&res.status) && res.status != 404,
            "{body}: {} {}",
            res.status,
            res.body
        );
    }
    assert!(crate::fixtures::exists(&app, &weak));
}
