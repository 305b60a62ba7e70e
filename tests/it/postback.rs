//! POSTback events delivered to real receivers on loopback and checked the way a
//! receiver checks them: with the official Standard Webhooks crate.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use latchkey::db::schema::{outbox, postback_secrets};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::fixtures::{channel, key_id_of, revealed, stored};
use crate::helpers::{Browser, Options, TestApp, spawn_app_with, spawn_on};

/// Receivers on loopback are internal: tests allow them on purpose.
pub const LOOPBACK: &str = "127.0.0.0/8,::1/128";

#[derive(Clone, Debug)]
pub struct Received {
    pub event: String,
    /// `webhook-id`
    pub delivery: String,
    pub timestamp: String,
    pub signature: String,
    pub legacy_signature: String,
    pub body: String,
    pub answered: u16,
    pub at: Instant,
}

impl Received {
    /// Checks the delivery with the official crate and `secret`.
    pub fn verifies_with(&self, secret: &str) -> bool {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("webhook-id", self.delivery.parse().unwrap());
        h.insert("webhook-timestamp", self.timestamp.parse().unwrap());
        h.insert("webhook-signature", self.signature.parse().unwrap());
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(self.body.as_bytes(), &h)
            .is_ok()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// How a receiver answers its `n`-th request (from 0).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }
}

type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

/// A tiny HTTP receiver on loopback.
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Answers 500 to the first `fail_first` requests, then 200.
    pub async fn start(fail_first: usize) -> Self {
        Self::scripted(move |n| Reply::status(if n < fail_first { 500 } else { 200 })).await
    }

    pub async fn scripted(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::on_scripted(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            Arc::new(script),
        )
    }

    pub fn on(listener: TcpListener, fail_first: usize) -> Self {
        Self::on_scripted(
            listener,
            Arc::new(move |n| Reply::status(if n < fail_first { 500 } else { 200 })),
        )
    }

    fn on_scripted(listener: TcpListener, script: Script) -> Self {
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = got.clone();
        let seen = Arc::new(Mutex::new(0usize));
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (log, script, seen) = (log.clone(), script.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head, body) = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some(i) = text.find("\r\n\r\n") {
                            let head = text[..i].to_owned();
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if buf.len() >= i + 4 + len {
                                break (
                                    head,
                                    String::from_utf8_lossy(&buf[i + 4..i + 4 + len]).to_string(),
                                );
                            }
                        }
                    };
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| {
                                l.split_once(':')
                                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                                    .map(|(_, v)| v.trim().to_owned())
                            })
                            .unwrap_or_default()
                    };
                    let n = {
                        let mut s = seen.lock().unwrap();
                        *s += 1;
                        *s - 1
                    };
                    let reply = script(n);
                    tokio::time::sleep(reply.delay).await;
                    let event = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["type"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    log.lock().unwrap().push(Received {
                        event,
                        delivery: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        legacy_signature: header("latchkey-signature"),
                        body,
                        answered: reply.status,
                        at: Instant::now(),
                    });
                    let extra: String = reply
                        .headers
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}\r\n"))
                        .collect();
                    let out = format!(
                        "HTTP/1.1 {} X\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n",
                        reply.status
                    );
                    let _ = sock.write_all(out.as_bytes()).await;
                });
            }
        });
        Receiver { port, got }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/latchkey", self.port)
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub fn delivered(&self) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let d = self.delivered();
            if d.len() >= n || start.elapsed() > within {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn fast_postbacks() -> Options {
    Options {
        env: vec![
            ("LATCHKEY_POSTBACK_ALLOW".into(), LOOPBACK.into()),
            ("LATCHKEY_POSTBACK_POLL_MS".into(), "100".into()),
            ("LATCHKEY_POSTBACK_RETRY_MS".into(), "100".into()),
        ],
    }
}

pub fn with(mut opts: Options, extra: &[(&str, &str)]) -> Options {
    for (k, v) in extra {
        opts.env.retain(|(name, _)| name != k);
        opts.env.push(((*k).into(), (*v).into()));
    }
    opts
}

/// The signing secret in a reveal page or modal.
pub fn revealed_secret(body: &str) -> String {
    let at = body
        .find("id=\"revealed-secret\"")
        .unwrap_or_else(|| panic!("no signing secret revealed in {body}"));
    let v = body[at..].find("value=\"").unwrap() + at + 7;
    let end = body[v..].find('"').unwrap() + v;
    body[v..end].to_owned()
}

/// Generates a key with a POSTback URL through the form: (plaintext, signing secret).
pub async fn hooked_key(b: &Browser, cid: i64, name: &str, url: &str) -> (String, String) {
    b.get(&format!("/channels/{cid}/keys/new"))
        .await
        .assert_status(200);
    let res = b
        .post_form(
            &format!("/channels/{cid}/keys"),
            &[("name", name), ("postback_url", url), ("enabled", "on")],
        )
        .await;
    res.assert_status(200);
    (revealed(&res.body), revealed_secret(&res.body))
}

async fn hooks_app(opts: Options) -> (TestApp, Browser, i64) {
    let app = spawn_app_with(opts).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Hooks", "").await;
    (app, admin, cid)
}

#[tokio::test]
async fn key_events_are_signed_retried_and_delivered() {
    let receiver = Receiver::start(2).await;
    let (app, admin, cid) = hooks_app(fast_postbacks()).await;
    let started = Instant::now();
    let (plain, secret) = hooked_key(&admin, cid, "hooked", &receiver.url()).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the dashboard does not wait for the receiver"
    );
    assert!(secret.starts_with("whsec_"));
    let kid = key_id_of(&plain);
    for action in ["deactivate", "activate"] {
        admin
            .post_form(&format!("/keys/{kid}/{action}"), &[])
            .await
            .assert_status(303);
    }
    admin
        .post_form(
            &format!("/keys/{kid}"),
            &[
                ("name", "hooked-2"),
                ("postback_url", receiver.url().as_str()),
                ("enabled", "on"),
            ],
        )
        .await
        .assert_status(303);
    admin
        .hx_post(
            &format!("/keys/{kid}/roll"),
            "roll-form",
            &[("grace", "1h")],
        )
        .await
        .assert_status(200);
    let got = receiver.wait_for(5, Duration::from_secs(20)).await;
    let events: Vec<&str> = got.iter().map(|r| r.event.as_str()).collect();
    for e in [
        "key.created",
        "key.deactivated",
        "key.activated",
        "key.updated",
        "key.rolled",
    ] {
        assert_eq!(
            events.iter().filter(|x| **x == e).count(),
            1,
            "{e} delivered exactly once: {events:?}"
        );
    }
    let ids: HashSet<&String> = got.iter().map(|r| &r.delivery).collect();
    assert_eq!(ids.len(), got.len(), "no event delivered twice");
    let all = receiver.all();
    let failed: Vec<&Received> = all.iter().filter(|r| r.answered == 500).collect();
    assert_eq!(
        failed.len(),
        2,
        "the first two attempts failed and were retried"
    );
    let other = format!("whsec_{}", "A".repeat(43) + "=");
    for r in &all {
        assert!(r.verifies_with(&secret), "signature of {}", r.event);
        assert!(!r.verifies_with(&other), "another secret does not verify");
        assert!(r.delivery.starts_with("msg_"));
        assert!(r.legacy_signature.is_empty(), "no other scheme is sent");
        let mut tampered = r.clone();
        tampered.body = r.body.replace("hooked", "hacked");
        assert!(!tampered.verifies_with(&secret), "a changed body fails");
        let body = r.json();
        assert_eq!(body["type"], r.event.as_str());
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(
            !r.body.contains(&plain[16..56]),
            "events never carry the key"
        );
    }
    // The retried event kept its webhook-id.
    let first = &all[0];
    assert_eq!(first.answered, 500);
    assert!(
        got.iter()
            .any(|r| r.delivery == first.delivery && r.event == first.event),
        "a retry carries the same webhook-id"
    );
    assert_eq!(got[0].json()["data"]["key_id"], kid.as_str());
    // The detail view lists the deliveries.
    let page = admin.get(&format!("/keys/{kid}")).await;
    assert!(page.body.contains("POSTback deliveries"));
    assert!(page.body.contains("<code>key.created</code>") && page.body.contains("Delivered"));
    // Deleting the successor sends its last event, signed with the same secret.
    let new_id =
        got.iter().find(|r| r.event == "key.rolled").unwrap().json()["data"]["rolled_to_key_id"]
            .as_str()
            .unwrap()
            .to_owned();
    admin
        .post_form(&format!("/keys/{new_id}/delete"), &[])
        .await
        .assert_status(303);
    let got = receiver.wait_for(6, Duration::from_secs(10)).await;
    let deleted = got.iter().find(|r| r.event == "key.deleted").unwrap();
    assert!(deleted.verifies_with(&secret));
    drop(app);
}

#[tokio::test]
async fn a_retry_keeps_its_id_and_gets_a_new_timestamp() {
    let receiver = Receiver::start(1).await;
    // Retries after 1.05 to 2.1 s: the second attempt is in another second.
    let opts = with(fast_postbacks(), &[("LATCHKEY_POSTBACK_RETRY_MS", "2100")]);
    let (_app, admin, cid) = hooks_app(opts).await;
    let (_, secret) = hooked_key(&admin, cid, "retried", &receiver.url()).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let all = receiver.all();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].delivery, all[1].delivery, "webhook-id is stable");
    assert_ne!(
        all[0].timestamp, all[1].timestamp,
        "a new timestamp per attempt"
    );
    assert_ne!(all[0].signature, all[1].signature);
    assert!(all[0].verifies_with(&secret) && all[1].verifies_with(&secret));
    assert_eq!(all[0].body, all[1].body);
}

#[tokio::test]
async fn the_signing_secret_is_shown_once_and_nowhere_else() {
    let receiver = Receiver::start(0).await;
    let (app, admin, cid) = hooks_app(fast_postbacks()).await;
    let (plain, secret) = hooked_key(&admin, cid, "once", &receiver.url()).await;
    let kid = key_id_of(&plain);
    admin
        .post_form(&format!("/keys/{kid}/postback/test"), &[])
        .await
        .assert_status(303);
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert!(got.iter().any(|r| r.event == "key.test"));
    // A new key without a URL gets one when its first URL is set: shown once, then.
    let later =
        crate::fixtures::generate(&admin, cid, &[("name", "later"), ("enabled", "on")]).await;
    let lid = key_id_of(&later);
    admin.get(&format!("/keys/{lid}/edit")).await;
    let res = admin
        .post_form(
            &format!("/keys/{lid}"),
            &[
                ("name", "later"),
                ("postback_url", &receiver.url()),
                ("enabled", "on"),
            ],
        )
        .await;
    res.assert_status(200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let later_secret = revealed_secret(&res.body);
    assert_ne!(later_secret, secret);
    // Saving again shows no secret.
    let res = admin
        .post_form(
            &format!("/keys/{lid}"),
            &[
                ("name", "later"),
                ("postback_url", &receiver.url()),
                ("enabled", "on"),
            ],
        )
        .await;
    res.assert_status(303);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen = String::new();
    for path in [
        format!("/keys/{kid}"),
        format!("/keys/{kid}/edit"),
        format!("/keys/{lid}"),
        format!("/channels/{cid}/keys"),
        "/audit".to_owned(),
    ] {
        seen += &admin.get(&path).await.body;
    }
    let api_key = crate::fixtures::key(&admin, cid, "reader", &["keys:read"], &[]).await;
    seen += &app
        .api(&api_key)
        .get(&format!("/keys/{kid}"))
        .await
        .body
        .to_string();
    seen += &app.logs();
    let stored: Vec<String> = postback_secrets::table
        .select(postback_secrets::sealed)
        .load(&mut *app.conn())
        .unwrap();
    assert!(stored.len() >= 2);
    assert!(stored.iter().all(|s| s.starts_with("v1:")), "stored sealed");
    for s in [&secret, &later_secret] {
        let b64 = &s[6..];
        assert!(
            !seen.contains(b64),
            "the signing secret appears after its reveal"
        );
        assert!(
            !stored.iter().any(|x| x.contains(&b64[..20])),
            "never in the clear"
        );
    }
}

#[tokio::test]
async fn the_api_reveals_the_secret_once_and_rolls_it_with_keys_admin_only() {
    let receiver = Receiver::start(0).await;
    let (app, admin, cid) = hooks_app(fast_postbacks()).await;
    let keyadmin = crate::fixtures::key(
        &admin,
        cid,
        "key-admin",
        &["keys:read", "keys:write", "keys:admin"],
        &[],
    )
    .await;
    let writer =
        crate::fixtures::key(&admin, cid, "writer", &["keys:read", "keys:write"], &[]).await;
    let api = app.api(&keyadmin);
    let created = api
        .post(
            "/keys",
            serde_json::json!({ "name": "api-hooked", "postback_url": receiver.url() }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["postback_secret"].as_str().unwrap().to_owned();
    let kid = created.body["data"]["key_id"].as_str().unwrap().to_owned();
    let shown = api.get(&format!("/keys/{kid}")).await;
    assert!(shown.body.get("postback_secret").is_none());
    assert!(!shown.body.to_string().contains(&secret[6..]));
    let refused = app
        .api(&writer)
        .post(
            &format!("/keys/{kid}/postback/secret"),
            serde_json::json!({}),
        )
        .await;
    crate::fixtures::assert_refused(&refused, 403, "ADMIN_SCOPE_REQUIRED", "rolling a secret");
    let refused = app
        .api(&writer)
        .post(&format!("/keys/{kid}/postback/test"), serde_json::json!({}))
        .await;
    crate::fixtures::assert_refused(&refused, 403, "ADMIN_SCOPE_REQUIRED", "a test event");
    let rolled = api
        .post(
            &format!("/keys/{kid}/postback/secret"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let new_secret = rolled.body["postback_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let res = api
        .post(&format!("/keys/{kid}/postback/test"), serde_json::json!({}))
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let test = got.iter().find(|r| r.event == "key.test").unwrap();
    assert!(test.verifies_with(&secret) && test.verifies_with(&new_secret));
}

#[tokio::test]
async fn a_rolled_secret_signs_beside_the_new_one_for_a_day_then_stops() {
    let receiver = Receiver::start(0).await;
    let (app, admin, cid) = hooks_app(fast_postbacks()).await;
    let (plain, old) = hooked_key(&admin, cid, "rolling", &receiver.url()).await;
    let kid = key_id_of(&plain);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    admin.get(&format!("/keys/{kid}")).await;
    let res = admin
        .post_form(&format!("/keys/{kid}/postback/secret"), &[])
        .await;
    res.assert_status(200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let new = revealed_secret(&res.body);
    assert_ne!(new, old);
    assert!(res.body.contains("previous secret keeps signing"));
    let page = admin.get(&format!("/keys/{kid}")).await;
    assert!(page.body.contains("the previous secret also signs until"));
    assert!(!page.body.contains(&new[6..]));
    admin
        .post_form(&format!("/keys/{kid}/postback/test"), &[])
        .await
        .assert_status(303);
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let during = got.iter().find(|r| r.event == "key.test").unwrap();
    assert_eq!(during.signature.split(' ').count(), 2, "both signatures");
    assert!(
        during.verifies_with(&old),
        "receivers on the old secret keep working"
    );
    assert!(during.verifies_with(&new));
    // The overlap ends (as if 24 hours had passed).
    app.exec("UPDATE postback_secrets SET retires_at = created_at WHERE retires_at IS NOT NULL");
    admin
        .post_form(&format!("/keys/{kid}/postback/test"), &[])
        .await
        .assert_status(303);
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    let after = got.iter().rfind(|r| r.event == "key.test").unwrap();
    assert_ne!(after.delivery, during.delivery);
    assert!(
        !after.verifies_with(&old),
        "the old secret is refused after the overlap"
    );
    assert!(after.verifies_with(&new));
    let audit = admin.get("/audit").await.body;
    assert!(audit.contains("rolled the POSTback signing secret"));
}

#[tokio::test]
async fn queued_events_survive_a_restart() {
    // Reserve a port, close it: the receiver is down while the event is queued.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let url = format!("http://127.0.0.1:{port}/hooks/latchkey");
    let (mut app, admin, cid) = hooks_app(fast_postbacks()).await;
    let (_, secret) = hooked_key(&admin, cid, "durable", &url).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(app.terminate().success());
    let db = app.db.clone();
    drop(app);
    let receiver = Receiver::on(TcpListener::bind(("127.0.0.1", port)).await.unwrap(), 0);
    let _restarted = spawn_on(db, fast_postbacks()).await;
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event, "key.created");
    assert!(
        got[0].verifies_with(&secret),
        "the sealed secret survives a restart"
    );
}

#[tokio::test]
async fn keys_expiring_within_a_lead_time_send_one_notice_with_the_days_left() {
    // Lead times 30, 7 and 1 days: 3 days out hears the shortest due (7) once; 40 days
    // out hears nothing yet (tests/it/reminders.rs moves the clock through all three).
    let receiver = Receiver::start(0).await;
    let (_app, admin, cid) = hooks_app(fast_postbacks()).await;
    for (name, days) in [("soon", 3), ("later", 40)] {
        let at = crate::fixtures::days_from_now(days);
        crate::fixtures::generate(
            &admin,
            cid,
            &[
                ("name", name),
                ("expires_at", at.as_str()),
                ("postback_url", receiver.url().as_str()),
                ("enabled", "on"),
            ],
        )
        .await;
    }
    // Two created events, then one expiring notice (the scan runs every 60 polls = 6 s here).
    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    let expiring: Vec<&Received> = got.iter().filter(|r| r.event == "key.expiring").collect();
    assert_eq!(
        expiring.len(),
        1,
        "{:?}",
        got.iter().map(|r| &r.event).collect::<Vec<_>>()
    );
    assert_eq!(expiring[0].json()["data"]["name"], "soon");
    let left = expiring[0].json()["data"]["days_left"].as_i64().unwrap();
    assert!((2..=3).contains(&left), "{left}");
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        receiver
            .delivered()
            .iter()
            .filter(|r| r.event == "key.expiring")
            .count(),
        1,
        "only once"
    );
}

#[tokio::test]
async fn a_410_turns_the_postback_off_audited_and_shown() {
    // Gone once; after the URL is set again, the receiver takes events (the event of
    // that very edit may arrive at once, and must not turn it off again).
    let receiver = Receiver::scripted(|n| Reply::status(if n == 0 { 410 } else { 204 })).await;
    let (app, admin, cid) = hooks_app(fast_postbacks()).await;
    let (plain, _) = hooked_key(&admin, cid, "gone", &receiver.url()).await;
    let kid = key_id_of(&plain);
    let started = Instant::now();
    while stored(&app, &kid).postback_url.is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still on after a 410"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored(&app, &kid).postback_gone_at.is_some());
    let page = admin.get(&format!("/keys/{kid}")).await.body;
    assert!(
        page.contains("id=\"postback-off\""),
        "shown on the key page"
    );
    assert!(page.contains("410 Gone"));
    let audit = admin.get("/audit").await.body;
    assert!(audit.contains("POSTback turned off"), "audited");
    let risks = admin.get("/keys?risk=postback-off").await.body;
    assert!(risks.contains("gone"), "listed under the risk");
    assert!(
        admin
            .get("/risks")
            .await
            .body
            .contains("POSTback was turned off")
    );
    // Later events are not sent; one attempt only.
    admin
        .post_form(&format!("/keys/{kid}/deactivate"), &[])
        .await
        .assert_status(303);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.all().len(), 1);
    // Setting a URL turns it back on.
    admin.get(&format!("/keys/{kid}/edit")).await;
    admin
        .post_form(
            &format!("/keys/{kid}"),
            &[("name", "gone"), ("postback_url", &receiver.url())],
        )
        .await
        .assert_status(303);
    assert!(stored(&app, &kid).postback_gone_at.is_none());
}

#[tokio::test]
async fn retry_after_is_honoured_on_503() {
    let receiver = Receiver::scripted(|n| {
        if n == 0 {
            Reply {
                status: 503,
                delay: Duration::ZERO,
                headers: vec![("Retry-After".into(), "2".into())],
            }
        } else {
            Reply::status(204)
        }
    })
    .await;
    let (_app, admin, cid) = hooks_app(fast_postbacks()).await;
    hooked_key(&admin, cid, "busy", &receiver.url()).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let all = receiver.all();
    let pause = all[1].at - all[0].at;
    assert!(
        pause >= Duration::from_millis(1800),
        "the retry waited for Retry-After (2 s), not the 100 ms backoff: {pause:?}"
    );
}

#[tokio::test]
async fn send_test_event_and_resend_from_the_key_page() {
    let receiver = Receiver::start(0).await;
    let (_app, admin, cid) = hooks_app(fast_postbacks()).await;
    let (plain, secret) = hooked_key(&admin, cid, "manual", &receiver.url()).await;
    let kid = key_id_of(&plain);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let page = admin.get(&format!("/keys/{kid}")).await.body;
    assert!(page.contains("Send test event") && page.contains(">Resend</button>"));
    let res = admin
        .post_form(&format!("/keys/{kid}/postback/test"), &[])
        .await;
    res.assert_status(303);
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let test = got.iter().find(|r| r.event == "key.test").unwrap();
    assert!(test.verifies_with(&secret));
    assert_eq!(test.json()["data"]["key_id"], kid.as_str());
    // Resend the created event: same webhook-id, delivered again.
    let created = got.iter().find(|r| r.event == "key.created").unwrap();
    let page = admin.get(&format!("/keys/{kid}")).await.body;
    let marker = "/deliveries/";
    let ids: Vec<i64> = page
        .match_indices(marker)
        .map(|(i, _)| {
            let rest = &page[i + marker.len()..];
            rest[..rest.find('/').unwrap()].parse().unwrap()
        })
        .collect();
    let oldest = *ids.iter().min().unwrap();
    admin
        .post_form(&format!("/keys/{kid}/deliveries/{oldest}/resend"), &[])
        .await
        .assert_status(303);
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    let again: Vec<&Received> = got
        .iter()
        .filter(|r| r.delivery == created.delivery)
        .collect();
    assert_eq!(again.len(), 2, "resent with the same webhook-id");
    assert!(again[1].verifies_with(&secret));
    // Another key's delivery cannot be resent through this key.
    let res = admin
        .post_form(&format!("/keys/{kid}/deliveries/999999/resend"), &[])
        .await;
    assert_eq!(res.status.as_u16(), 404);
    let audit = admin.get("/audit").await.body;
    assert!(audit.contains("queued a POSTback test event"));
    assert!(audit.contains("queued the key.created POSTback again"));
}

#[tokio::test]
async fn delivered_events_are_pruned_after_the_keep_days() {
    let opts = with(fast_postbacks(), &[("LATCHKEY_POSTBACK_KEEP_DAYS", "30")]);
    let (mut app, _admin, _cid) = hooks_app(opts).await;
    let old = |days: i64| {
        let t = latchkey::db::now() - time::Duration::days(days);
        t.format(&time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap()
    };
    for (msg, days, delivered) in [
        ("msg_old", 31, true),
        ("msg_recent", 29, true),
        ("msg_failed_old", 31, false),
    ] {
        let delivered_at = if delivered {
            format!("'{}'", old(days))
        } else {
            "NULL".into()
        };
        app.exec(&format!(
            "INSERT INTO outbox (api_key_id, event_type, url, payload, created_at, next_attempt_at, attempts, delivered_at, msg_id, host) \
             VALUES (1, 'key.created', 'http://127.0.0.1:9/x', '{{}}', '{t}', '9999-01-01 00:00:00', 1, {delivered_at}, '{msg}', '127.0.0.1:9')",
            t = old(days)
        ));
    }
    assert!(app.terminate().success());
    let db = app.db.clone();
    drop(app);
    let restarted = spawn_on(db, fast_postbacks()).await;
    let count = |ids: &[&str]| -> i64 {
        outbox::table
            .filter(outbox::msg_id.eq_any(ids))
            .count()
            .get_result(&mut *restarted.conn())
            .unwrap()
    };
    let started = Instant::now();
    while count(&["msg_old", "msg_failed_old"]) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "old rows not pruned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&["msg_recent"]), 1, "a recent delivery is kept");
}

/// Three slow receivers (5 s each) and a fast one, two instances: the fast
/// receiver's events arrive within 2 s while the slow ones are pending, and every
/// event is delivered exactly once.
#[tokio::test]
async fn slow_receivers_never_delay_other_keys_and_two_instances_deliver_once() {
    let fast = Receiver::start(0).await;
    let mut slow = Vec::new();
    for _ in 0..3 {
        slow.push(
            Receiver::scripted(|_| Reply {
                status: 200,
                delay: Duration::from_secs(5),
                headers: Vec::new(),
            })
            .await,
        );
    }
    let opts = with(fast_postbacks(), &[("LATCHKEY_POSTBACK_PER_HOST", "2")]);
    let (one, admin, cid) = hooks_app(opts.clone()).await;
    let two = spawn_on(one.db.clone(), opts).await;
    let on_two = Browser::with_jar(&two.base, admin.jar.clone(), Some(&admin));
    one.exec(&format!(
        "UPDATE channels SET key_limit = 100 WHERE id = {cid}"
    ));
    let mut secrets = HashMap::new();
    // Slow keys first, so their events are at the head of the queue.
    for (i, r) in slow.iter().enumerate() {
        for j in 0..3 {
            let b = if j % 2 == 0 { &admin } else { &on_two };
            let (_, s) = hooked_key(b, cid, &format!("slow-{i}-{j}"), &r.url()).await;
            secrets.insert(format!("slow-{i}-{j}"), s);
        }
    }
    let queued_fast = Instant::now();
    for j in 0..4 {
        let b = if j % 2 == 0 { &admin } else { &on_two };
        let (_, s) = hooked_key(b, cid, &format!("fast-{j}"), &fast.url()).await;
        secrets.insert(format!("fast-{j}"), s);
    }
    let got = fast.wait_for(4, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 4, "the fast receiver waited behind slow ones");
    assert!(queued_fast.elapsed() < Duration::from_secs(3));
    let pending: usize = slow.iter().map(|r| 3 - r.delivered().len()).sum();
    assert!(pending > 0, "slow deliveries were still pending");
    for r in &slow {
        r.wait_for(3, Duration::from_secs(30)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for r in slow.iter().chain([&fast]) {
        let all = r.all();
        assert_eq!(all.len(), r.delivered().len(), "no failures");
        let ids: HashSet<&String> = all.iter().map(|x| &x.delivery).collect();
        assert_eq!(ids.len(), all.len(), "every event delivered exactly once");
        for x in &all {
            let name = x.json()["data"]["name"].as_str().unwrap().to_owned();
            assert!(x.verifies_with(&secrets[&name]));
        }
    }
    assert_eq!(
        slow.iter().map(|r| r.all().len()).sum::<usize>() + fast.all().len(),
        13
    );
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_for_a_day_is_marked_failed() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}/hook")
    };
    let opts = with(fast_postbacks(), &[("LATCHKEY_POSTBACK_RETRY_MS", "1500")]);
    let (app, admin, cid) = hooks_app(opts).await;
    let (plain, _) = hooked_key(&admin, cid, "doomed", &closed).await;
    let kid = key_id_of(&plain);
    // As if the event had been queued 25 hours ago: its next failure is its last.
    app.exec("UPDATE outbox SET created_at = '2000-01-01 00:00:00'");
    let started = Instant::now();
    loop {
        let page = admin.get(&format!("/keys/{kid}")).await.body;
        if page.contains("gave up after a day") {
            assert!(page.contains(">Failed</span>"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not marked failed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let backlog: i64 = outbox::table
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::next_attempt_at.lt(latchkey::db::outbox::NEVER))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(backlog, 0, "it left the backlog");
}
