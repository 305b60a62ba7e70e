//! No SSRF: POSTbacks never reach internal addresses unless an operator allows them.
//! Every URL refused here is refused when it is saved, so none is ever stored; the
//! delivery-time guard is shown with `localhost`, which resolves to loopback.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use latchkey::db::schema::api_keys;
use serde_json::json;

use crate::fixtures::{channel, key, key_id_of, stored};
use crate::helpers::{Options, spawn_app_with, spawn_on};
use crate::postback::{LOOPBACK, Receiver, Reply, fast_postbacks, hooked_key, with};

/// Every internal form the issue names, and more notations of the same addresses.
const INTERNAL: &[&str] = &[
    "http://127.0.0.1:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1:8500/v1/kv/",
    "http://[::1]:6379/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://localhost:5432/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[::ffff:127.0.0.1]:6379/",
    "http://[::ffff:169.254.169.254]/",
    "http://100.64.0.1/",
    "http://192.168.0.1/",
    "http://172.16.0.1/",
    "http://0.0.0.0:8080/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[fe80::1]/",
    "http://[fd12:3456::1]/",
    "http://192.0.2.10/",
    "http://198.51.100.10/",
    "http://203.0.113.10/",
    "http://[2001:db8::1]/",
    "http://redis:6379/",
];

/// Credentials in the URL are refused whatever the host (this one is never stored).
const WITH_CREDENTIALS: &str = "https://user:pass@hooks.example.com/latchkey";

fn hooked_rows(app: &crate::helpers::TestApp) -> i64 {
    api_keys::table
        .filter(api_keys::postback_url.is_not_null())
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

#[tokio::test]
async fn every_internal_address_form_is_refused_at_save_by_api_and_dashboard() {
    let app = spawn_app_with(Options::default()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Guarded", "50").await;
    let keyadmin = key(
        &admin,
        cid,
        "key-admin",
        &["keys:read", "keys:write", "keys:admin"],
        &[],
    )
    .await;
    let target = key_id_of(&key(&admin, cid, "target", &[], &[]).await);
    let api = app.api(&keyadmin);
    for url in INTERNAL.iter().chain([&WITH_CREDENTIALS]) {
        let res = api
            .post("/keys", json!({ "name": "internal", "postback_url": url }))
            .await;
        assert_eq!(res.status, 422, "API create with {url}: {}", res.body);
        let message = res.body["error"]["fields"]["postback_url"]
            .as_str()
            .unwrap();
        if *url == WITH_CREDENTIALS {
            assert!(message.contains("user name and password"), "{message}");
        } else {
            assert!(message.contains("internal"), "{url}: {message}");
        }
        let res = api
            .send(
                reqwest::Method::PATCH,
                &format!("/keys/{target}"),
                Some(json!({ "postback_url": url })),
            )
            .await;
        assert_eq!(res.status, 422, "API update with {url}: {}", res.body);
        admin.get(&format!("/channels/{cid}/keys/new")).await;
        let res = admin
            .post_form(
                &format!("/channels/{cid}/keys"),
                &[
                    ("name", "internal"),
                    ("postback_url", url),
                    ("enabled", "on"),
                ],
            )
            .await;
        res.assert_status(422);
        assert!(
            res.body.contains("id=\"key-postback-error\""),
            "a field message beside the URL for {url}"
        );
        admin.get(&format!("/keys/{target}/edit")).await;
        admin
            .post_form(
                &format!("/keys/{target}"),
                &[("name", "target"), ("postback_url", url), ("enabled", "on")],
            )
            .await
            .assert_status(422);
    }
    assert_eq!(hooked_rows(&app), 0, "no internal URL was stored");
}

#[tokio::test]
async fn the_allow_list_admits_loopback_receivers_and_nothing_else() {
    let opts = Options {
        env: vec![("LATCHKEY_POSTBACK_ALLOW".into(), LOOPBACK.into())],
    };
    let app = spawn_app_with(opts).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Allowed", "50").await;
    for (i, url) in [
        "http://127.0.0.1:9/a",
        "http://[::1]:9/b",
        "http://localhost:9/c",
    ]
    .iter()
    .enumerate()
    {
        hooked_key(&admin, cid, &format!("allowed-{i}"), url).await;
    }
    for url in [
        "http://10.0.0.1:8500/",
        "http://169.254.169.254/",
        WITH_CREDENTIALS,
    ] {
        admin.get(&format!("/channels/{cid}/keys/new")).await;
        admin
            .post_form(
                &format!("/channels/{cid}/keys"),
                &[
                    ("name", "outside"),
                    ("postback_url", url),
                    ("enabled", "on"),
                ],
            )
            .await
            .assert_status(422);
    }
    assert_eq!(hooked_rows(&app), 3);
}

/// A name that resolves to loopback is delivered only while the allow list admits it:
/// the same stored URL is refused at delivery once the server runs without it.
#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_delivery_without_the_allow_list() {
    let receiver = Receiver::start(0).await;
    let url = format!("http://localhost:{}/hooks/latchkey", receiver.port);
    let mut allowed = spawn_app_with(fast_postbacks()).await;
    let admin = allowed.admin().await;
    let cid = channel(&allowed, &admin, "Names", "").await;
    let (plain, secret) = hooked_key(&admin, cid, "by-name", &url).await;
    let kid = key_id_of(&plain);
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "allowed on purpose: delivered");
    assert!(got[0].verifies_with(&secret));
    assert!(allowed.terminate().success());
    let db = allowed.db.clone();
    drop(allowed);

    // The same database, served without LATCHKEY_POSTBACK_ALLOW.
    let guarded = spawn_on(
        db,
        Options {
            env: fast_postbacks()
                .env
                .into_iter()
                .filter(|(k, _)| k != "LATCHKEY_POSTBACK_ALLOW")
                .collect(),
        },
    )
    .await;
    let admin = guarded.admin().await;
    admin.get(&format!("/keys/{kid}")).await;
    admin
        .post_form(&format!("/keys/{kid}/postback/test"), &[])
        .await
        .assert_status(303);
    let started = Instant::now();
    loop {
        let page = admin.get(&format!("/keys/{kid}")).await.body;
        if page.contains("Refused by policy") {
            for internal in [
                "error sending",
                "onnection refused",
                "tcp connect",
                "dns error",
            ] {
                assert!(
                    !page.contains(internal),
                    "internal error text shown: {internal}"
                );
            }
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no refusal shown"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.all().len(),
        1,
        "nothing reached the loopback receiver"
    );
    assert!(stored(&guarded, &kid).postback_url.is_some());
}

#[tokio::test]
async fn redirects_are_not_followed_and_outcomes_are_coarse() {
    let target = Receiver::start(0).await;
    let location = target.url();
    let redirecting = Receiver::scripted(move |_| Reply {
        status: 302,
        delay: Duration::ZERO,
        headers: vec![("Location".into(), location.clone())],
    })
    .await;
    let slow = Receiver::scripted(|_| Reply {
        status: 200,
        delay: Duration::from_secs(3),
        headers: Vec::new(),
    })
    .await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}/hook")
    };
    let opts = with(
        fast_postbacks(),
        &[
            ("LATCHKEY_POSTBACK_TIMEOUT_MS", "500"),
            ("LATCHKEY_POSTBACK_RETRY_MS", "60000"),
        ],
    );
    let app = spawn_app_with(opts).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Outcomes", "").await;
    let cases = [
        (redirecting.url(), "Failed with HTTP 302"),
        (slow.url(), "Timed out"),
        (closed, "Failed: no answer"),
    ];
    for (i, (url, shown)) in cases.iter().enumerate() {
        let (plain, _) = hooked_key(&admin, cid, &format!("outcome-{i}"), url).await;
        let kid = key_id_of(&plain);
        let started = Instant::now();
        loop {
            let page = admin.get(&format!("/keys/{kid}")).await.body;
            if page.contains(shown) {
                assert!(page.contains("Retrying"));
                for internal in [
                    "error sending",
                    "onnection refused",
                    "tcp connect",
                    "operation timed out",
                ] {
                    assert!(!page.contains(internal), "internal error text: {internal}");
                }
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{shown} not shown"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(redirecting.all().len(), 1);
    assert!(target.all().is_empty(), "the redirect was not followed");
}

/// A receiver that announces a 10 MB answer, sends 64 KiB and then stalls: Latchkey
/// reads a few KiB, counts the 200, and does not wait for the rest (or time out).
#[tokio::test]
async fn only_a_few_kib_of_an_answer_are_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = sock.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\n\r\n";
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&vec![b'x'; 64 * 1024]).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let app = spawn_app_with(fast_postbacks()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Chatty", "").await;
    let url = format!("http://127.0.0.1:{port}/hook");
    let (plain, _) = hooked_key(&admin, cid, "chatty", &url).await;
    let kid = key_id_of(&plain);
    let started = Instant::now();
    loop {
        let page = admin.get(&format!("/keys/{kid}")).await.body;
        if page.contains("HTTP 200") {
            break;
        }
        assert!(!page.contains("Timed out"), "the whole answer was awaited");
        assert!(started.elapsed() < Duration::from_secs(5), "not delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
