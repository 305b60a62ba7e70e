//! Rolling a key: a new key with every setting copied, shown once; the old key keeps
//! working for the chosen grace, never past its own expiry.

use diesel::prelude::*;
use latchkey::db::schema::api_keys;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::keys::{channel, generate, key_id_of, revealed, stored};

#[tokio::test]
async fn rolling_in_the_dashboard_reveals_a_copy_and_keeps_the_old_key_for_the_grace() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Roll", "").await;
    let verifier = generate(
        &admin,
        cid,
        &[
            ("name", "verifier"),
            ("scopes", "verify"),
            ("enabled", "on"),
        ],
    )
    .await;
    let old = generate(
        &admin,
        cid,
        &[
            ("name", "billing"),
            ("description", "d"),
            ("scopes", "keys:read"),
            ("cidr", "203.0.113.0/24"),
            ("off_the_record", "on"),
            ("enabled", "on"),
        ],
    )
    .await;
    let old_id = key_id_of(&old);
    let form = admin
        .hx_get(&format!("/keys/{old_id}/roll"), "modal-stack")
        .await;
    form.assert_status(200);
    assert!(
        form.body.contains("value=\"1h\"")
            && form.body.contains("value=\"7d\"")
            && form.body.contains("value=\"now\"")
    );
    let res = admin
        .hx_post(
            &format!("/keys/{old_id}/roll"),
            "roll-form",
            &[("grace", "1h")],
        )
        .await;
    res.assert_status(200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(
        res.body.contains("data-require-ack=\"key-saved\""),
        "the same reveal modal"
    );
    let new = revealed(&res.body);
    assert_ne!(new, old);
    let (o, n) = (stored(&app, &old_id), stored(&app, &key_id_of(&new)));
    assert_eq!(n.name, "billing", "the new key takes the name");
    assert!(o.name.starts_with("billing (rolled "));
    assert_eq!(
        (
            n.scopes.as_str(),
            n.allowed_cidrs.as_str(),
            n.description.as_deref(),
            n.off_the_record
        ),
        ("keys:read", "203.0.113.0/24", Some("d"), true)
    );
    assert_eq!(o.rolled_to_key_id.as_deref(), Some(n.key_id.as_str()));
    let ends = o.roll_ends_at.unwrap();
    let hour = latchkey::db::now() + time::Duration::hours(1);
    assert!(
        (hour - ends).whole_seconds().abs() < 30,
        "grace of one hour"
    );
    // Both work during the grace; the table says so.
    let api = app.api(&verifier);
    assert_eq!(api.code(&old, Some("203.0.113.5"), &[]).await, "VALID");
    assert_eq!(api.code(&new, Some("203.0.113.5"), &[]).await, "VALID");
    let page = admin.get(&format!("/channels/{cid}/keys")).await;
    assert!(page.body.contains("Rolling — ends "));
    // When the grace is over the table shows the old key as expired...
    app.exec(&format!(
        "UPDATE api_keys SET roll_ends_at = '2001-01-01 00:00:00' WHERE key_id = '{old_id}'"
    ));
    let page = admin.get(&format!("/channels/{cid}/keys")).await;
    let row = &page.body[page.body.find(&format!("id=\"key-{old_id}\"")).unwrap()..];
    assert!(row[..row.find("</tr>").unwrap()].contains("Expired"));
    // ...and verification refuses it (a grace of "now" shows it without waiting).
    let again = generate(&admin, cid, &[("name", "short"), ("enabled", "on")]).await;
    admin
        .hx_post(
            &format!("/keys/{}/roll", key_id_of(&again)),
            "roll-form",
            &[("grace", "now")],
        )
        .await
        .assert_status(200);
    assert_eq!(
        api.code(&again, None, &[]).await,
        "EXPIRED",
        "grace 'now' stops the old key at once"
    );
    // A rolled key cannot be rolled twice.
    let twice = admin
        .hx_post(
            &format!("/keys/{}/roll", key_id_of(&again)),
            "roll-form",
            &[("grace", "now")],
        )
        .await;
    twice.assert_status(409);
}

#[tokio::test]
async fn the_grace_never_runs_past_the_old_keys_expiry() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Cap", "").await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .unwrap();
    let old = generate(
        &admin,
        cid,
        &[
            ("name", "expiring"),
            ("expires_at", soon.as_str()),
            ("enabled", "on"),
        ],
    )
    .await;
    let old_id = key_id_of(&old);
    admin
        .hx_post(
            &format!("/keys/{old_id}/roll"),
            "roll-form",
            &[("grace", "7d")],
        )
        .await
        .assert_status(200);
    let o = stored(&app, &old_id);
    assert_eq!(
        o.roll_ends_at, o.expires_at,
        "capped at the key's own expiry, not 7 days"
    );
}

#[tokio::test]
async fn rolling_through_the_api() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "ApiRoll", "").await;
    let manager = generate(
        &admin,
        cid,
        &[
            ("name", "manager"),
            ("scopes", "keys:write"),
            ("scopes", "verify"),
            ("enabled", "on"),
        ],
    )
    .await;
    let target = generate(&admin, cid, &[("name", "target"), ("enabled", "on")]).await;
    let api = app.api(&manager);
    let bad = api
        .post(
            &format!("/keys/{}/roll", key_id_of(&target)),
            json!({ "grace": "forever" }),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body["error"]["fields"]["grace"].is_string());
    let res = api
        .post(
            &format!("/keys/{}/roll", key_id_of(&target)),
            json!({ "grace": "24h" }),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let new = res.body["key"].as_str().unwrap().to_owned();
    assert_eq!(res.body["data"]["name"], "target");
    assert_eq!(res.body["old"]["rolled_to_key_id"], key_id_of(&new));
    assert!(res.body["old"]["roll_ends_at"].is_string());
    assert_eq!(api.code(&target, None, &[]).await, "VALID");
    assert_eq!(api.code(&new, None, &[]).await, "VALID");
    let count: i64 = api_keys::table
        .filter(api_keys::channel_id.eq(cid))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(count, 3);
}
