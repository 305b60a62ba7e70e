//! Rolling a key: a new key with every setting copied, shown once; the old key keeps
//! working for the chosen grace, never past its own expiry.

use diesel::prelude::*;
use latchkey::db::schema::api_keys;
use serde_json::json;

use crate::fixtures::{
    ALL_SCOPES, assert_refused, channel, error_code, generate, key, key_id_of, lift_system_limit,
    revealed, rows_in, stored, system_channel,
};
use crate::helpers::spawn_app;

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
    // Rolling another key through the API needs keys:admin.
    let manager = generate(
        &admin,
        cid,
        &[
            ("name", "manager"),
            ("scopes", "keys:write"),
            ("scopes", "keys:admin"),
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

#[tokio::test]
async fn a_roll_with_a_grace_needs_a_free_slot_and_a_roll_with_no_grace_does_not() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Full", "2").await;
    lift_system_limit(&app);
    // The verifier lives in the system channel, so it takes no slot of "Full".
    let verifier = key(&admin, system_channel(&app), "verifier", &["verify"], &[]).await;
    let writer = key(&admin, cid, "writer", &["keys:write"], &[]).await;
    let other = key(&admin, cid, "other", &[], &[]).await;
    let (wid, oid) = (key_id_of(&writer), key_id_of(&other));
    let api = app.api(&writer);
    for grace in ["24h", "1h"] {
        let res = api
            .post(&format!("/keys/{wid}/roll"), json!({ "grace": grace }))
            .await;
        assert_refused(
            &res,
            409,
            "LIMIT_REACHED",
            &format!("API self-roll {grace}"),
        );
    }
    admin.get(&format!("/channels/{cid}/keys")).await;
    for grace in ["24h", "1h"] {
        admin
            .hx_post(
                &format!("/keys/{oid}/roll"),
                "roll-form",
                &[("grace", grace)],
            )
            .await
            .assert_status(409);
    }
    assert_eq!(rows_in(&app, cid), 2, "no successor was made");
    assert_eq!(stored(&app, &wid).rolled_to_key_id, None);
    assert_eq!(stored(&app, &oid).rolled_to_key_id, None);

    // Grace "now": the old key stops at once, so no free slot is needed.
    let res = api
        .post(&format!("/keys/{wid}/roll"), json!({ "grace": "now" }))
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let new_writer = res.body["key"].as_str().unwrap().to_owned();
    let res = admin
        .hx_post(
            &format!("/keys/{oid}/roll"),
            "roll-form",
            &[("grace", "now")],
        )
        .await;
    res.assert_status(200);
    let new_other = revealed(&res.body);
    // The successors fill the channel again.
    let res = app
        .api(&new_writer)
        .post(
            &format!("/keys/{}/roll", key_id_of(&new_writer)),
            json!({ "grace": "1h" }),
        )
        .await;
    assert_refused(&res, 409, "LIMIT_REACHED", "the successor's graced roll");

    let check = app.api(&verifier);
    let mut valid = 0;
    for k in [&writer, &other, &new_writer, &new_other] {
        if check.code(k, None, &[]).await == "VALID" {
            valid += 1;
        }
    }
    assert!(valid <= 2, "{valid} keys work in a channel limited to 2");
    assert_eq!(check.code(&new_writer, None, &[]).await, "VALID");
    assert_eq!(check.code(&new_other, None, &[]).await, "VALID");
}

#[tokio::test]
async fn twenty_simultaneous_api_rolls_of_one_key_make_exactly_one_successor() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Race", "100").await;
    let manager = key(&admin, cid, "manager", ALL_SCOPES, &[]).await;
    let target = key(&admin, cid, "target", &[], &[]).await;
    let tid = key_id_of(&target);
    let api = app.api(&manager);
    let path = format!("/keys/{tid}/roll");
    let results =
        futures_util::future::join_all((0..20).map(|_| api.post(&path, json!({ "grace": "1h" }))))
            .await;
    let statuses: Vec<(u16, &str)> = results.iter().map(|r| (r.status, error_code(r))).collect();
    assert_eq!(
        statuses.iter().filter(|s| s.0 == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == (409, "ALREADY_ROLLED"))
            .count(),
        19,
        "{statuses:?}"
    );
    let winner = results.iter().find(|r| r.status == 201).unwrap();
    assert_eq!(
        stored(&app, &tid).rolled_to_key_id.as_deref(),
        winner.body["data"]["key_id"].as_str()
    );
    assert_eq!(rows_in(&app, cid), 3, "manager, target and one successor");
}

#[tokio::test]
async fn twenty_simultaneous_dashboard_rolls_of_one_key_make_exactly_one_successor() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Race", "100").await;
    // The race is run on several keys: one round alone rarely shows a double roll.
    for round in 1..=8 {
        let target = key(&admin, cid, &format!("target-{round}"), &[], &[]).await;
        let tid = key_id_of(&target);
        admin.get(&format!("/channels/{cid}/keys")).await;
        let path = format!("/keys/{tid}/roll");
        let results = futures_util::future::join_all(
            (0..20).map(|_| admin.hx_post(&path, "roll-form", &[("grace", "1h")])),
        )
        .await;
        let statuses: Vec<u16> = results.iter().map(|r| r.status.as_u16()).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 409).count(),
            19,
            "round {round}: {statuses:?}"
        );
        let winner = results.iter().find(|r| r.status.as_u16() == 200).unwrap();
        assert_eq!(
            stored(&app, &tid).rolled_to_key_id,
            Some(key_id_of(&revealed(&winner.body)))
        );
        assert_eq!(
            rows_in(&app, cid),
            2 * round,
            "round {round}: each key and one successor"
        );
    }
}

#[tokio::test]
async fn a_successor_can_be_rolled_right_after_its_predecessor() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Chain", "").await;
    // Through the API, each key rolling itself.
    let mut current = key(&admin, cid, "chain", &["keys:write"], &[]).await;
    let mut old_names = Vec::new();
    for _ in 0..2 {
        let kid = key_id_of(&current);
        let res = app
            .api(&current)
            .post(&format!("/keys/{kid}/roll"), json!({ "grace": "1h" }))
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        old_names.push(stored(&app, &kid).name);
        current = res.body["key"].as_str().unwrap().to_owned();
    }
    assert_eq!(stored(&app, &key_id_of(&current)).name, "chain");
    assert!(
        old_names.iter().all(|n| n.starts_with("chain (rolled ")),
        "{old_names:?}"
    );
    assert_ne!(old_names[0], old_names[1]);

    // In the dashboard.
    let mut current = key(&admin, cid, "dash", &[], &[]).await;
    admin.get(&format!("/channels/{cid}/keys")).await;
    for _ in 0..2 {
        let res = admin
            .hx_post(
                &format!("/keys/{}/roll", key_id_of(&current)),
                "roll-form",
                &[("grace", "1h")],
            )
            .await;
        res.assert_status(200);
        current = revealed(&res.body);
    }
    assert_eq!(stored(&app, &key_id_of(&current)).name, "dash");
}
