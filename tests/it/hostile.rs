//! Issue 11, "Requests and headers": hostile input that once crashed a request or
//! slipped past a check, each answered now with a clear 4xx and nothing weakened.

use serde_json::json;

use crate::fixtures::{channel, key};
use crate::helpers::{Options, spawn_app, spawn_app_with};

#[tokio::test]
async fn audit_dates_at_the_edges_are_answered_with_a_message_not_a_closed_connection() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for (query, status) in [
        ("to=9999-12-31", 400),
        ("from=9999-12-31", 200),
        ("from=0000-01-01&to=9999-12-30", 200),
        ("to=2026-02-30", 400),
        ("from=yesterday", 400),
        ("channel=not-a-number", 400),
    ] {
        let res = admin.get(&format!("/audit?{query}")).await;
        assert_eq!(res.status.as_u16(), status, "{query}: {}", res.body);
        if status == 400 {
            assert!(
                res.body.contains("date") || res.body.contains("channel"),
                "{query}: the message says what is wrong"
            );
        }
    }
    // The server keeps serving.
    admin.get("/audit").await.assert_status(200);
}

#[tokio::test]
async fn an_unreadable_forwarded_address_from_a_trusted_proxy_is_refused_not_taken_as_the_proxy() {
    let app = spawn_app_with(Options {
        env: vec![("LATCHKEY_TRUSTED_PROXIES".into(), "127.0.0.1/32".into())],
    })
    .await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Proxied", "").await;
    // Usable only from loopback: a forged header must not make it usable from elsewhere.
    let local = key(
        &admin,
        cid,
        "local",
        &["verify"],
        &[("cidr", "127.0.0.0/8")],
    )
    .await;
    let target = key(&admin, cid, "target", &[], &[]).await;
    let api = app.api(&local);
    let call = |forwarded: &'static str| {
        let (api, local, target) = (&api, &local, &target);
        async move {
            api.client
                .post(format!("{}/keys/verify", api.base))
                .bearer_auth(local)
                .header("X-Forwarded-For", forwarded)
                .json(&json!({ "key": target }))
                .send()
                .await
                .unwrap()
        }
    };
    for bad in [
        "203.0.113.9:4444",
        "[2001:db8::1]",
        "unknown",
        "203.0.113.9, garbage",
    ] {
        let res = call(bad).await;
        assert_eq!(res.status().as_u16(), 400, "{bad}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "BAD_REQUEST", "{bad}");
    }
    assert_eq!(call("127.0.0.5").await.status().as_u16(), 200);
    assert_eq!(call("203.0.113.9").await.status().as_u16(), 403);
    // The dashboard refuses it too.
    let res = admin
        .client
        .get(admin.url("/channels"))
        .header("X-Forwarded-For", "unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
}

#[tokio::test]
async fn an_ipv4_mapped_address_is_checked_as_its_ipv4_address() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Mapped", "").await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let local = key(&admin, cid, "local", &[], &[("cidr", "127.0.0.0/8")]).await;
    let api = app.api(&verifier);
    assert_eq!(
        api.code(&local, Some("::ffff:127.0.0.1"), &[]).await,
        "VALID"
    );
    assert_eq!(
        api.code(&local, Some("::ffff:10.0.0.1"), &[]).await,
        "IP_NOT_ALLOWED"
    );
}
