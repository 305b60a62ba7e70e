//! Several instances on one database (PostgreSQL in CI's second pass): sessions work
//! on any instance, a revocation on one is refused by the other within a second, and
//! background work (POSTback delivery, request-log batches) is neither lost nor done
//! twice.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use latchkey::db::schema::{api_keys, request_log};

use crate::fixtures::{channel, generate, key, key_id_of, range_of, save_channel, within_a_second};
use crate::helpers::{Api, Browser, Options, TestApp, spawn_app, spawn_app_with, spawn_on};
use crate::postback::{Receiver, fast_postbacks};

#[tokio::test]
async fn two_instances_share_sessions_revocations_and_background_work() {
    let receiver = Receiver::start(1).await;
    let mut opts = fast_postbacks();
    opts.env
        .push(("LATCHKEY_USAGE_FLUSH_MS".into(), "100".into()));
    let one = spawn_app_with(opts).await;
    let mut opts = fast_postbacks();
    opts.env
        .push(("LATCHKEY_USAGE_FLUSH_MS".into(), "100".into()));
    let two = spawn_on(one.db.clone(), opts).await;

    // A login on one instance works on the other (same cookie, same session row).
    let admin = one.admin().await;
    let on_two = Browser::with_jar(&two.base, admin.jar.clone(), Some(&admin));
    on_two.get("/channels").await.assert_status(200);

    let cid = channel(&one, &admin, "Shared", "100").await;
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
    let target = generate(&on_two, cid, &[("name", "target"), ("enabled", "on")]).await;
    let (api_one, api_two) = (one.api(&verifier), two.api(&verifier));
    assert_eq!(api_two.code(&target, None, &[]).await, "VALID"); // cached on two
    assert_eq!(api_one.code(&target, None, &[]).await, "VALID"); // cached on one

    // Revoked on one, refused by two within a second.
    admin
        .post_form(&format!("/keys/{}/deactivate", key_id_of(&target)), &[])
        .await
        .assert_status(303);
    let revoked_at = Instant::now();
    let mut calls = 2;
    loop {
        calls += 1;
        if api_two.code(&target, None, &[]).await == "DISABLED" {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "instance two still accepts a key revoked on one"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        api_one.code(&target, None, &[]).await,
        "DISABLED",
        "and one at once"
    );
    calls += 1;

    // Request-log batches from both instances all land.
    for _ in 0..20 {
        api_one.code(&target, None, &[]).await;
        api_two.code(&target, None, &[]).await;
        calls += 2;
    }
    // POSTback events queued through both instances are each delivered once, with both
    // workers polling the same outbox.
    let url = receiver.url();
    for i in 0..10 {
        let b = if i % 2 == 0 { &admin } else { &on_two };
        generate(
            b,
            cid,
            &[
                ("name", &format!("hooked-{i}")),
                ("postback_url", url.as_str()),
                ("enabled", "on"),
            ],
        )
        .await;
    }
    let got = receiver.wait_for(10, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got_all = receiver.delivered();
    assert_eq!(got.len(), 10);
    assert_eq!(got_all.len(), 10, "nothing delivered twice");
    let ids: std::collections::HashSet<&String> = got_all.iter().map(|r| &r.delivery).collect();
    assert_eq!(ids.len(), 10);

    // A filtered total remembered on two is counted again after a create on one.
    let hooked = format!("/channels/{cid}/keys?q=hooked");
    assert_eq!(range_of(&on_two.get(&hooked).await.body), "1–10 of 10");
    generate(&admin, cid, &[("name", "hooked-extra"), ("enabled", "on")]).await;
    let created_at = Instant::now();
    while range_of(&on_two.get(&hooked).await.body) != "1–11 of 11" {
        assert!(
            created_at.elapsed() < Duration::from_secs(2),
            "instance two still shows the total from before a create on one"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let verifier_id: i64 = api_keys::table
        .filter(api_keys::key_id.eq(key_id_of(&verifier)))
        .select(api_keys::id)
        .first(&mut *one.conn())
        .unwrap();
    let target_id = crate::fixtures::stored(&one, &key_id_of(&target)).id;
    let logged: i64 = request_log::table
        .filter(request_log::api_key_id.eq(target_id))
        .count()
        .get_result(&mut *one.conn())
        .unwrap();
    assert_eq!(
        logged, calls,
        "every verification from both instances is logged once"
    );
    // Both instances add into the same rollup rows.
    for period in ["minute", "hour", "day"] {
        assert_eq!(
            crate::fixtures::rollup_total(&one, target_id, period, None),
            calls,
            "{period} rollups of the verified key"
        );
        assert_eq!(
            crate::fixtures::rollup_total(&one, verifier_id, period, Some("API_2XX")),
            calls,
            "{period} rollups of the caller"
        );
    }
}

/// The `name` and `channel` that `api`'s `/verify` answers for `key`.
async fn seen_by(api: &Api, key: &str) -> (String, String) {
    let res = api.verify(key).await;
    assert_eq!(res.status, 200, "{}", res.body);
    (
        res.body["name"].as_str().unwrap_or_default().to_owned(),
        res.body["channel"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Two instances on one database, each with a key of channel "Before" named
/// "old name" cached, and every change before it taken in.
struct Pair {
    _one: TestApp,
    _two: TestApp,
    admin: Browser,
    channel_id: i64,
    api_one: Api,
    api_two: Api,
    target: String,
}

async fn settled_pair() -> Pair {
    let one = spawn_app().await;
    let two = spawn_on(one.db.clone(), Options { env: vec![] }).await;
    let admin = one.admin().await;
    let cid = channel(&one, &admin, "Before", "").await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let target = key(&admin, cid, "old name", &[], &[]).await;
    let canary = key(&admin, cid, "canary", &[], &[]).await;
    let (api_one, api_two) = (one.api(&verifier), two.api(&verifier));
    // Let each instance take in every change made so far (the creates), so that what
    // it caches next is refreshed by the renames alone: a cached canary that changes
    // on the other instance is seen only after the changes made before it.
    let on_two = Browser::with_jar(&two.base, admin.jar.clone(), Some(&admin));
    let canary_id = key_id_of(&canary);
    for (by, seen_here, seen_on, action, code) in [
        (&admin, &api_one, &api_two, "deactivate", "DISABLED"),
        (&on_two, &api_two, &api_one, "activate", "VALID"),
    ] {
        // Cached as it is now where it changes, then seen from the other instance.
        assert_ne!(seen_on.code(&canary, None, &[]).await, code);
        by.get(&format!("/channels/{cid}/keys")).await;
        by.post_form(&format!("/keys/{canary_id}/{action}"), &[])
            .await
            .assert_status(303);
        assert_eq!(seen_here.code(&canary, None, &[]).await, code);
        within_a_second("a canary change on the other instance", || async {
            seen_on.code(&canary, None, &[]).await == code
        })
        .await;
    }
    // Both instances have the key (and the caller) cached with the old names.
    let before = ("old name".to_owned(), "Before".to_owned());
    assert_eq!(seen_by(&api_one, &target).await, before);
    assert_eq!(seen_by(&api_two, &target).await, before);
    Pair {
        _one: one,
        _two: two,
        admin,
        channel_id: cid,
        api_one,
        api_two,
        target,
    }
}

#[tokio::test]
async fn a_key_renamed_on_one_instance_is_verified_under_its_new_name_on_the_other_within_a_second()
{
    let p = settled_pair().await;
    let kid = key_id_of(&p.target);
    p.admin
        .get(&format!("/keys/{kid}/rename"))
        .await
        .assert_status(200);
    p.admin
        .post_form(&format!("/keys/{kid}/rename"), &[("name", "new name")])
        .await
        .assert_status(303);
    within_a_second("the key's new name on instance two", || async {
        seen_by(&p.api_two, &p.target).await.0 == "new name"
    })
    .await;
    assert_eq!(seen_by(&p.api_one, &p.target).await.0, "new name");
}

#[tokio::test]
async fn a_channel_renamed_on_one_instance_is_verified_under_its_new_name_on_both_within_a_second()
{
    let p = settled_pair().await;
    save_channel(&p.admin, p.channel_id, "After", "").await;
    within_a_second("the channel's new name on both instances", || async {
        seen_by(&p.api_two, &p.target).await.1 == "After"
            && seen_by(&p.api_one, &p.target).await.1 == "After"
    })
    .await;
}
