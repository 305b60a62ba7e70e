//! The API-key policy (contract of issue 10): a key acting through the API can never
//! make or change a key into something more powerful than itself, never act on a key
//! more powerful than itself, and never undo what a person decided in the dashboard.
//! One regression test per attack.

use reqwest::Method;
use serde_json::json;

use crate::fixtures::{
    ALL_SCOPES, UNREACHABLE_HOOK, assert_refused, channel, days_from_now, exists, key, key_id_of,
    loopback_receivers, named, rows_in, stored,
};
use crate::helpers::{Browser, TestApp, spawn_app, spawn_app_with};

/// A server offering every scope, its admin, and a channel "Acme" with room for keys.
/// Loopback receivers are allowed, so `UNREACHABLE_HOOK` can be stored.
async fn acme() -> (TestApp, Browser, i64) {
    let app = spawn_app_with(loopback_receivers()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Acme", "50").await;
    (app, admin, cid)
}

#[tokio::test]
async fn keys_admin_is_one_of_the_scopes_a_deployment_offers_by_default() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Default", "").await;
    admin
        .get(&format!("/channels/{cid}/keys/new"))
        .await
        .assert_status(200);
    let res = admin
        .post_form(
            &format!("/channels/{cid}/keys"),
            &[
                ("name", "admin"),
                ("scopes", "keys:admin"),
                ("enabled", "on"),
            ],
        )
        .await;
    res.assert_status(200);
    assert!(named(&app, cid, "admin"));
}

#[tokio::test]
async fn a_key_cannot_create_a_key_with_more_scopes_than_its_own() {
    let (app, admin, cid) = acme().await;
    let writer = key(&admin, cid, "writer", &["keys:write"], &[]).await;
    let api = app.api(&writer);
    let before = rows_in(&app, cid);
    let res = api
        .post(
            "/keys",
            json!({ "name": "wider", "scopes": ["keys:read", "keys:write", "verify"] }),
        )
        .await;
    assert_refused(&res, 403, "SCOPE_ESCALATION", "more scopes than its own");
    let res = api
        .post(
            "/keys",
            json!({ "name": "admin", "scopes": ["keys:admin"] }),
        )
        .await;
    assert_refused(&res, 403, "SCOPE_ESCALATION", "a scope it does not hold");
    assert_eq!(rows_in(&app, cid), before, "no key was created");
    assert!(!named(&app, cid, "wider") && !named(&app, cid, "admin"));

    let res = api
        .post(
            "/keys",
            json!({ "name": "equal", "scopes": ["keys:write"] }),
        )
        .await;
    assert_eq!(res.status, 201, "the same scopes are fine: {}", res.body);
    let made = res.body["data"]["key_id"].as_str().unwrap();
    assert_eq!(stored(&app, made).scopes, "keys:write");
}

#[tokio::test]
async fn a_key_cannot_create_a_key_that_reaches_further_or_lives_longer_than_itself() {
    let (app, admin, cid) = acme().await;
    let ends = days_from_now(30);
    let writer = key(
        &admin,
        cid,
        "fenced",
        &["keys:write"],
        &[("cidr", "127.0.0.0/8"), ("expires_at", &ends)],
    )
    .await;
    let api = app.api(&writer);
    let before = rows_in(&app, cid);
    for (body, code, what) in [
        (
            json!({ "name": "anywhere", "expires_at": days_from_now(10) }),
            "NETWORK_ESCALATION",
            "no networks from a fenced key",
        ),
        (
            json!({ "name": "outside", "allowed_cidrs": ["10.0.0.0/8"], "expires_at": days_from_now(10) }),
            "NETWORK_ESCALATION",
            "a network outside the caller's",
        ),
        (
            json!({ "name": "forever", "allowed_cidrs": ["127.0.0.0/24"] }),
            "EXPIRY_ESCALATION",
            "no expiry from an expiring key",
        ),
        (
            json!({ "name": "longer", "allowed_cidrs": ["127.0.0.0/24"], "expires_at": days_from_now(60) }),
            "EXPIRY_ESCALATION",
            "an expiry after the caller's",
        ),
    ] {
        let res = api.post("/keys", body).await;
        assert_refused(&res, 403, code, what);
    }
    assert_eq!(rows_in(&app, cid), before, "no key was created");
    let res = api
        .post(
            "/keys",
            json!({ "name": "narrower", "allowed_cidrs": ["127.0.0.0/24"], "expires_at": days_from_now(10) }),
        )
        .await;
    assert_eq!(res.status, 201, "a narrower key is fine: {}", res.body);
}

/// The settings a key could widen itself with.
type Reach = (
    String,
    String,
    Option<time::PrimitiveDateTime>,
    bool,
    Option<String>,
    bool,
);

fn reach_of(app: &TestApp, key_id: &str) -> Reach {
    let k = stored(app, key_id);
    (
        k.scopes,
        k.allowed_cidrs,
        k.expires_at,
        k.off_the_record,
        k.postback_url,
        k.enabled,
    )
}

#[tokio::test]
async fn a_key_cannot_widen_itself_but_may_narrow_itself() {
    let (app, admin, cid) = acme().await;
    let ends = days_from_now(30);
    let own = key(
        &admin,
        cid,
        "self",
        &["keys:write"],
        &[("cidr", "127.0.0.0/8"), ("expires_at", &ends)],
    )
    .await;
    let kid = key_id_of(&own);
    let api = app.api(&own);
    let path = format!("/keys/{kid}");
    let before = reach_of(&app, &kid);
    for (body, code, what) in [
        (
            json!({ "allowed_cidrs": [] }),
            "NETWORK_ESCALATION",
            "removing its networks",
        ),
        (
            json!({ "allowed_cidrs": ["127.0.0.0/8", "10.0.0.0/8"] }),
            "NETWORK_ESCALATION",
            "adding an outside network",
        ),
        (
            json!({ "expires_at": "" }),
            "EXPIRY_ESCALATION",
            "clearing its expiry",
        ),
        (
            json!({ "expires_at": days_from_now(60) }),
            "EXPIRY_ESCALATION",
            "extending its expiry",
        ),
        (
            json!({ "off_the_record": true }),
            "ADMIN_SCOPE_REQUIRED",
            "going off the record",
        ),
        (
            json!({ "postback_url": UNREACHABLE_HOOK }),
            "ADMIN_SCOPE_REQUIRED",
            "setting a POSTback URL",
        ),
        (
            json!({ "scopes": ["keys:write", "verify"] }),
            "SCOPE_ESCALATION",
            "adding a scope",
        ),
    ] {
        let res = api.send(Method::PATCH, &path, Some(body)).await;
        assert_refused(&res, 403, code, what);
    }
    assert_eq!(reach_of(&app, &kid), before, "the key is unchanged");

    let res = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "allowed_cidrs": ["127.0.0.0/24"] })),
        )
        .await;
    assert_eq!(res.status, 200, "a narrower network: {}", res.body);
    assert_eq!(stored(&app, &kid).allowed_cidrs, "127.0.0.0/24");
    let earlier = days_from_now(10);
    let res = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "expires_at": earlier.as_str() })),
        )
        .await;
    assert_eq!(res.status, 200, "an earlier expiry: {}", res.body);
    assert_eq!(
        stored(&app, &kid)
            .expires_at
            .map(latchkey::domain::clock::input_time),
        Some(earlier)
    );
}

#[tokio::test]
async fn a_key_deactivated_by_a_person_cannot_be_reactivated_by_any_api_key() {
    let (app, admin, cid) = acme().await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let strongest = key(&admin, cid, "strongest", ALL_SCOPES, &[]).await;
    let target = key(&admin, cid, "target", &[], &[]).await;
    let tid = key_id_of(&target);
    admin
        .post_form(&format!("/keys/{tid}/deactivate"), &[])
        .await
        .assert_status(303);
    let check = app.api(&verifier);
    let api = app.api(&strongest);
    for (method, path, body) in [
        (Method::POST, format!("/keys/{tid}/enable"), json!({})),
        (Method::POST, format!("/keys/{tid}/activate"), json!({})),
        (
            Method::PATCH,
            format!("/keys/{tid}"),
            json!({ "enabled": true }),
        ),
    ] {
        let what = format!("{method} {path}");
        let res = api.send(method, &path, Some(body)).await;
        assert_refused(&res, 403, "PERSON_DEACTIVATED", &what);
        assert_eq!(check.code(&target, None, &[]).await, "DISABLED", "{what}");
    }
    assert!(!stored(&app, &tid).enabled);
    // A person still can.
    admin
        .post_form(&format!("/keys/{tid}/activate"), &[])
        .await
        .assert_status(303);
    assert_eq!(check.code(&target, None, &[]).await, "VALID");
}

#[tokio::test]
async fn a_persons_deactivation_survives_a_second_deactivation_and_a_roll_by_a_key() {
    let (app, admin, cid) = acme().await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let strongest = key(&admin, cid, "strongest", ALL_SCOPES, &[]).await;
    let target = key(&admin, cid, "target", &[], &[]).await;
    let tid = key_id_of(&target);
    admin
        .post_form(&format!("/keys/{tid}/deactivate"), &[])
        .await
        .assert_status(303);
    let api = app.api(&strongest);
    // Deactivating it again through the API must not wash out the person's mark.
    let res = api
        .post(&format!("/keys/{tid}/deactivate"), json!({}))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let res = api.post(&format!("/keys/{tid}/activate"), json!({})).await;
    assert_refused(
        &res,
        403,
        "PERSON_DEACTIVATED",
        "activate after a second deactivation",
    );
    // Nor may a roll hand out an active copy: the successor keeps the mark.
    let rolled = api
        .post(&format!("/keys/{tid}/roll"), json!({ "grace": "now" }))
        .await;
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let successor = rolled.body["key"].as_str().unwrap().to_owned();
    let sid = key_id_of(&successor);
    let res = api.post(&format!("/keys/{sid}/activate"), json!({})).await;
    assert_refused(&res, 403, "PERSON_DEACTIVATED", "activate the successor");
    assert_eq!(
        app.api(&verifier).code(&successor, None, &[]).await,
        "DISABLED"
    );
}

#[tokio::test]
async fn reactivating_another_key_deactivated_through_the_api_needs_keys_admin() {
    let (app, admin, cid) = acme().await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let writer = key(&admin, cid, "writer", &["keys:write"], &[]).await;
    let keyadmin = key(&admin, cid, "key-admin", &["keys:write", "keys:admin"], &[]).await;
    let target = key(&admin, cid, "target", &[], &[]).await;
    let tid = key_id_of(&target);
    let check = app.api(&verifier);
    let writer_api = app.api(&writer);
    let res = writer_api
        .post(&format!("/keys/{tid}/disable"), json!({}))
        .await;
    assert_eq!(res.status, 200, "keys:write deactivates: {}", res.body);
    for (method, path, body) in [
        (Method::POST, format!("/keys/{tid}/enable"), json!({})),
        (Method::POST, format!("/keys/{tid}/activate"), json!({})),
        (
            Method::PATCH,
            format!("/keys/{tid}"),
            json!({ "enabled": true }),
        ),
    ] {
        let what = format!("{method} {path} with keys:write only");
        let res = writer_api.send(method, &path, Some(body)).await;
        assert_refused(&res, 403, "ADMIN_SCOPE_REQUIRED", &what);
    }
    assert_eq!(check.code(&target, None, &[]).await, "DISABLED");
    let res = app
        .api(&keyadmin)
        .post(&format!("/keys/{tid}/activate"), json!({}))
        .await;
    assert_eq!(res.status, 200, "keys:admin re-activates: {}", res.body);
    assert_eq!(check.code(&target, None, &[]).await, "VALID");
}

#[tokio::test]
async fn a_key_without_keys_admin_cannot_take_over_another_key_by_rolling_it() {
    let (app, admin, cid) = acme().await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let writer = key(&admin, cid, "writer", &["keys:write"], &[]).await;
    let victim = key(&admin, cid, "victim", &[], &[]).await;
    let vid = key_id_of(&victim);
    let api = app.api(&writer);
    let before = rows_in(&app, cid);
    let res = api
        .post(&format!("/keys/{vid}/roll"), json!({ "grace": "now" }))
        .await;
    assert_refused(&res, 403, "ADMIN_SCOPE_REQUIRED", "rolling another key");
    assert!(
        res.body.get("key").is_none(),
        "no successor key is revealed"
    );
    assert_eq!(app.api(&verifier).code(&victim, None, &[]).await, "VALID");
    assert_eq!(stored(&app, &vid).rolled_to_key_id, None);
    assert_eq!(rows_in(&app, cid), before, "no successor row");

    let wid = key_id_of(&writer);
    let res = api
        .post(&format!("/keys/{wid}/roll"), json!({ "grace": "1h" }))
        .await;
    assert_eq!(res.status, 201, "a key rolls itself: {}", res.body);
    assert_eq!(
        stored(&app, &wid).rolled_to_key_id.as_deref(),
        res.body["data"]["key_id"].as_str()
    );
}

#[tokio::test]
async fn a_key_cannot_deactivate_delete_or_change_a_key_holding_more_scopes() {
    let (app, admin, cid) = acme().await;
    let writer = key(&admin, cid, "writer", &["keys:write"], &[]).await;
    let strong = key(&admin, cid, "strong", &["keys:write", "keys:admin"], &[]).await;
    let sid = key_id_of(&strong);
    let api = app.api(&writer);
    let before = stored(&app, &sid);
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/keys/{sid}"),
            Some(json!({ "name": "hijacked" })),
        ),
        (
            Method::POST,
            format!("/keys/{sid}/disable"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/keys/{sid}/deactivate"),
            Some(json!({})),
        ),
        (Method::DELETE, format!("/keys/{sid}"), None),
    ] {
        let what = format!("{method} {path}");
        let res = api.send(method, &path, body).await;
        assert_refused(&res, 403, "TARGET_MORE_POWERFUL", &what);
    }
    assert!(exists(&app, &sid), "not deleted");
    let after = stored(&app, &sid);
    assert_eq!(
        (after.name, after.enabled, after.scopes),
        (before.name, before.enabled, before.scopes)
    );
}

#[tokio::test]
async fn a_fenced_or_expiring_key_cannot_change_a_key_that_reaches_further_or_lives_longer() {
    let (app, admin, cid) = acme().await;
    let (ends, sooner, later) = (days_from_now(30), days_from_now(10), days_from_now(60));
    let writer = key(
        &admin,
        cid,
        "writer",
        &["keys:write"],
        &[("cidr", "127.0.0.0/8"), ("expires_at", &ends)],
    )
    .await;
    let api = app.api(&writer);
    let targets = [
        ("anywhere", vec![("expires_at", sooner.as_str())], true),
        (
            "outside",
            vec![("cidr", "10.0.0.0/8"), ("expires_at", sooner.as_str())],
            true,
        ),
        ("forever", vec![("cidr", "127.0.0.0/24")], true),
        (
            "longer",
            vec![("cidr", "127.0.0.0/24"), ("expires_at", later.as_str())],
            true,
        ),
        (
            "weaker",
            vec![("cidr", "127.0.0.0/24"), ("expires_at", sooner.as_str())],
            false,
        ),
    ];
    for (name, extra, more_powerful) in targets {
        let tid = key_id_of(&key(&admin, cid, name, &[], &extra).await);
        let res = api
            .send(
                Method::PATCH,
                &format!("/keys/{tid}"),
                Some(json!({ "description": "touched" })),
            )
            .await;
        if more_powerful {
            assert_refused(&res, 403, "TARGET_MORE_POWERFUL", name);
            assert_eq!(stored(&app, &tid).description, None, "{name} unchanged");
        } else {
            assert_eq!(res.status, 200, "{name}: {}", res.body);
        }
    }
}

#[tokio::test]
async fn postback_urls_and_off_the_record_are_set_through_the_api_only_with_keys_admin() {
    let (app, admin, cid) = acme().await;
    let writer = key(&admin, cid, "writer", &["keys:write"], &[]).await;
    let keyadmin = key(&admin, cid, "key-admin", &["keys:write", "keys:admin"], &[]).await;
    let target = key(&admin, cid, "target", &[], &[]).await;
    let tid = key_id_of(&target);
    let path = format!("/keys/{tid}");
    let api = app.api(&writer);
    for (method, path, body, what) in [
        (
            Method::PATCH,
            path.as_str(),
            json!({ "postback_url": UNREACHABLE_HOOK }),
            "changing a POSTback URL",
        ),
        (
            Method::PATCH,
            path.as_str(),
            json!({ "off_the_record": true }),
            "going off the record",
        ),
        (
            Method::POST,
            "/keys",
            json!({ "name": "hooked", "postback_url": UNREACHABLE_HOOK }),
            "creating with a POSTback URL",
        ),
        (
            Method::POST,
            "/keys",
            json!({ "name": "quiet", "off_the_record": true }),
            "creating off the record",
        ),
    ] {
        let res = api.send(method, path, Some(body)).await;
        assert_refused(&res, 403, "ADMIN_SCOPE_REQUIRED", what);
    }
    let t = stored(&app, &tid);
    assert_eq!((t.postback_url, t.off_the_record), (None, false));
    assert!(!named(&app, cid, "hooked") && !named(&app, cid, "quiet"));

    let res = app
        .api(&keyadmin)
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "postback_url": UNREACHABLE_HOOK })),
        )
        .await;
    assert_eq!(res.status, 200, "keys:admin sets it: {}", res.body);
    assert_eq!(
        stored(&app, &tid).postback_url.as_deref(),
        Some(UNREACHABLE_HOOK)
    );
    // Any change, removing it too.
    let res = api
        .send(Method::PATCH, &path, Some(json!({ "postback_url": "" })))
        .await;
    assert_refused(&res, 403, "ADMIN_SCOPE_REQUIRED", "removing a POSTback URL");
    assert_eq!(
        stored(&app, &tid).postback_url.as_deref(),
        Some(UNREACHABLE_HOOK)
    );
}
