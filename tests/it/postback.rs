//! POSTback events delivered to a real receiver on loopback that fails, then succeeds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latchkey::postback::Signer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::fixtures::{channel, generate, key_id_of};
use crate::helpers::{Options, spawn_app_with, spawn_on};

const SECRET: &str = "postback-secret-for-tests";

#[derive(Clone, Debug)]
pub struct Received {
    pub event: String,
    pub delivery: String,
    pub signature: String,
    pub body: String,
    pub answered: u16,
}

/// A tiny HTTP receiver: answers 500 to the first `fail_first` requests, then 200.
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), fail_first)
    }

    pub fn on(listener: TcpListener, fail_first: usize) -> Self {
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = got.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
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
                    let status = {
                        let mut g = log.lock().unwrap();
                        let status = if g.len() < fail_first { 500 } else { 200 };
                        g.push(Received {
                            event: header("latchkey-event"),
                            delivery: header("latchkey-delivery"),
                            signature: header("latchkey-signature"),
                            body,
                            answered: status,
                        });
                        status
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        Receiver { port, got }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/latchkey", self.port)
    }

    pub fn delivered(&self) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.answered == 200)
            .cloned()
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
            ("LATCHKEY_POSTBACK_SECRET".into(), SECRET.into()),
            ("LATCHKEY_POSTBACK_POLL_MS".into(), "100".into()),
            ("LATCHKEY_POSTBACK_RETRY_MS".into(), "100".into()),
        ],
    }
}

#[tokio::test]
async fn key_events_are_signed_retried_and_delivered() {
    let receiver = Receiver::start(2).await;
    let app = spawn_app_with(fast_postbacks()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Hooks", "").await;
    let started = Instant::now();
    let plain = generate(
        &admin,
        cid,
        &[
            ("name", "hooked"),
            ("postback_url", receiver.url().as_str()),
            ("enabled", "on"),
        ],
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the dashboard does not wait for the receiver"
    );
    let kid = key_id_of(&plain);
    admin
        .post_form(&format!("/keys/{kid}/deactivate"), &[])
        .await
        .assert_status(303);
    admin
        .post_form(&format!("/keys/{kid}/activate"), &[])
        .await
        .assert_status(303);
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
    let ids: std::collections::HashSet<&String> = got.iter().map(|r| &r.delivery).collect();
    assert_eq!(ids.len(), got.len(), "no event delivered twice");
    let failed = receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.answered == 500)
        .count();
    assert_eq!(failed, 2, "the first two attempts failed and were retried");
    let signer = Signer::from_secret(SECRET);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for r in &got {
        assert!(
            signer.verify(&r.signature, &r.body, now, 300),
            "signature of {}",
            r.event
        );
        assert!(!signer.verify(&r.signature, &r.body.replace("hooked", "hacked"), now, 300));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["key"]["key_id"], kid);
        assert!(
            !r.body.contains(&plain[16..56]),
            "events never carry the key"
        );
    }
    // The detail view lists the deliveries.
    let page = admin.get(&format!("/keys/{kid}")).await;
    assert!(page.body.contains("POSTback deliveries"));
    assert!(page.body.contains("<code>key.created</code>") && page.body.contains("Delivered"));
    // Deleting sends the last event.
    let new_id = {
        let body: serde_json::Value =
            serde_json::from_str(&got.iter().find(|r| r.event == "key.rolled").unwrap().body)
                .unwrap();
        body["key"]["rolled_to_key_id"].as_str().unwrap().to_owned()
    };
    admin
        .post_form(&format!("/keys/{new_id}/delete"), &[])
        .await
        .assert_status(303);
    let got = receiver.wait_for(6, Duration::from_secs(10)).await;
    assert!(got.iter().any(|r| r.event == "key.deleted"));
}

#[tokio::test]
async fn queued_events_survive_a_restart() {
    // Reserve a port, close it: the receiver is down while the event is queued.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let url = format!("http://127.0.0.1:{port}/hooks/latchkey");
    let mut app = spawn_app_with(fast_postbacks()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Durable", "").await;
    generate(
        &admin,
        cid,
        &[
            ("name", "durable"),
            ("postback_url", url.as_str()),
            ("enabled", "on"),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(app.terminate().success());
    let db = app.db.clone();
    drop(app);
    let receiver = Receiver::on(TcpListener::bind(("127.0.0.1", port)).await.unwrap(), 0);
    let _restarted = spawn_on(db, fast_postbacks()).await;
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event, "key.created");
}

#[tokio::test]
async fn keys_expiring_within_seven_days_send_one_notice() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(fast_postbacks()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Expiring", "").await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .unwrap();
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .unwrap();
    generate(
        &admin,
        cid,
        &[
            ("name", "soon"),
            ("expires_at", soon.as_str()),
            ("postback_url", receiver.url().as_str()),
            ("enabled", "on"),
        ],
    )
    .await;
    generate(
        &admin,
        cid,
        &[
            ("name", "later"),
            ("expires_at", later.as_str()),
            ("postback_url", receiver.url().as_str()),
            ("enabled", "on"),
        ],
    )
    .await;
    // Two created events, then one expiring notice (the scan runs every 60 polls = 6 s here).
    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    let expiring: Vec<&Received> = got.iter().filter(|r| r.event == "key.expiring").collect();
    assert_eq!(
        expiring.len(),
        1,
        "{:?}",
        got.iter().map(|r| &r.event).collect::<Vec<_>>()
    );
    assert!(expiring[0].body.contains("\"name\":\"soon\""));
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
