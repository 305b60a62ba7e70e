//! One key status, the same everywhere: the channel table row, the key's own page and
//! the API agree, and verification answers the matching code.

use crate::fixtures::{
    channel, days_from_now, key, key_id_of, lift_system_limit, revealed, system_channel,
};
use crate::helpers::{Browser, spawn_app};

/// The `data-status` of the `<tr id="key-KEYID"` row in a keys page.
fn row_status(body: &str, key_id: &str) -> Option<String> {
    let at = body.find(&format!("<tr id=\"key-{key_id}\""))?;
    let tag = &body[at..at + body[at..].find('>')?];
    attribute(tag, "data-status")
}

/// The one `data-status` on a page; `None` when there is none or more than one.
fn only_status(body: &str) -> Option<String> {
    match body.matches("data-status=\"").count() {
        1 => attribute(body, "data-status"),
        _ => None,
    }
}

fn attribute(html: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

async fn roll(admin: &Browser, plain: &str, grace: &str) -> String {
    let res = admin
        .hx_post(
            &format!("/keys/{}/roll", key_id_of(plain)),
            "roll-form",
            &[("grace", grace)],
        )
        .await;
    res.assert_status(200);
    revealed(&res.body)
}

#[tokio::test]
async fn the_table_the_key_page_and_the_api_show_the_same_status_for_every_kind_of_key() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "States", "").await;
    lift_system_limit(&app);
    // Outside the channel, so that its table shows only the keys under test.
    let observer = key(
        &admin,
        system_channel(&app),
        "observer",
        &["keys:read", "verify"],
        &[],
    )
    .await;

    let active = key(&admin, cid, "active", &[], &[]).await;
    let inactive = key(&admin, cid, "inactive", &[], &[]).await;
    admin
        .post_form(&format!("/keys/{}/deactivate", key_id_of(&inactive)), &[])
        .await
        .assert_status(303);
    let soon = days_from_now(1);
    let expired = key(&admin, cid, "expired", &[], &[("expires_at", &soon)]).await;
    // Deactivated and expired: inactive is checked first.
    let both = key(&admin, cid, "both", &[], &[("expires_at", &soon)]).await;
    admin
        .post_form(&format!("/keys/{}/deactivate", key_id_of(&both)), &[])
        .await
        .assert_status(303);
    app.exec(&format!(
        "UPDATE api_keys SET expires_at = '2001-01-01 00:00:00' WHERE key_id IN ('{}', '{}')",
        key_id_of(&expired),
        key_id_of(&both)
    ));
    admin.get(&format!("/channels/{cid}/keys")).await;
    let rolling = key(&admin, cid, "rolling", &[], &[]).await;
    let rolling_successor = roll(&admin, &rolling, "1h").await;
    let rolled = key(&admin, cid, "rolled", &[], &[]).await;
    let rolled_successor = roll(&admin, &rolled, "now").await;

    let cases = [
        ("active", &active, "active", "VALID"),
        ("deactivated", &inactive, "inactive", "DISABLED"),
        ("expired", &expired, "expired", "EXPIRED"),
        ("deactivated and expired", &both, "inactive", "DISABLED"),
        ("rolled with an hour of grace", &rolling, "rolling", "VALID"),
        ("rolled with no grace", &rolled, "expired", "EXPIRED"),
        (
            "successor of a rolling key",
            &rolling_successor,
            "active",
            "VALID",
        ),
        (
            "successor of a rolled key",
            &rolled_successor,
            "active",
            "VALID",
        ),
    ];
    let table = admin.get(&format!("/channels/{cid}/keys")).await;
    table.assert_status(200);
    let api = app.api(&observer);
    // (what, table row, key page, API status, verification code) for every key.
    let mut seen = Vec::new();
    let mut expected = Vec::new();
    for (what, plain, status, code) in cases {
        let kid = key_id_of(plain);
        let page = admin.get(&format!("/keys/{kid}")).await;
        page.assert_status(200);
        let json = api.get(&format!("/keys/{kid}")).await;
        assert_eq!(json.status, 200, "{what}: {}", json.body);
        seen.push((
            what,
            row_status(&table.body, &kid),
            only_status(&page.body),
            json.body["status"].as_str().map(str::to_owned),
            api.code(plain, None, &[]).await,
        ));
        let status = Some(status.to_owned());
        expected.push((
            what,
            status.clone(),
            status.clone(),
            status,
            code.to_owned(),
        ));
    }
    assert_eq!(seen, expected);
}
