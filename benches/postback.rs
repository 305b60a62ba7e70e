//! POSTback delivery engine: 1,000 events over 20 loopback receivers, 2 of them bad
//! (one answers after 30 s, so each attempt times out at 10 s; one port is closed).
//! Measures the time from the server's start until every healthy receiver has all its
//! events, and checks each event arrived once.
//!
//! `cargo bench --bench postback` (SQLite in a temp dir; the release server binary).
//! `LATCHKEY_BENCH_POSTBACK_CONCURRENCY=1` runs the engine one delivery at a time (the
//! old worker's behaviour), capped at `LATCHKEY_BENCH_POSTBACK_CAP_SECS` (default 60).

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latchkey::db::{self, channels, keys, outbox, postback_secrets};
use latchkey::domain::key::PlainKey;
use latchkey::domain::key_settings::KeySettings;
use latchkey::domain::webhook::{Sealer, SigningSecret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const RECEIVERS: usize = 20;
const EVENTS: usize = 1000;
const POSTBACK_SECRET: &str = "postback-bench-secret-0123456789";
const SESSION_SECRET: &str = "a-benchmark-session-secret-that-is-long-enough-0123456789abcdef";

/// Counts the distinct `webhook-id`s a receiver got, and every request.
#[derive(Default)]
struct Tally {
    ids: HashSet<String>,
    requests: usize,
}

async fn receiver(delay: Duration) -> Res<(u16, Arc<Mutex<Tally>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let t = tally.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let t = t.clone();
            tokio::spawn(async move {
                // Keep-alive: answer every request on the connection.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Some(end) = find(&buf, b"\r\n\r\n") else {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len = header(&head, "content-length")
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let id = header(&head, "webhook-id").unwrap_or_default();
                    buf.drain(..end + 4 + len);
                    if let Ok(mut t) = t.lock() {
                        t.requests += 1;
                    }
                    tokio::time::sleep(delay).await;
                    if let Ok(mut t) = t.lock() {
                        t.ids.insert(id);
                    }
                    let ok = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                    if sock.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((port, tally))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    })
}

fn start(bin: &str, url: &str, env: &[(&str, String)]) -> Res<Child> {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .env("LATCHKEY_BIND", "127.0.0.1:0")
        .env(
            "LATCHKEY_ADMIN_PASSWORD",
            "bench-admin-password-long-enough",
        )
        .env("LATCHKEY_SESSION_SECRET", SESSION_SECRET)
        .env("LATCHKEY_POSTBACK_SECRET", POSTBACK_SECRET)
        .env("LATCHKEY_POSTBACK_ALLOW", "127.0.0.0/8")
        .env("LATCHKEY_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(cmd.spawn()?)
}

#[tokio::main]
async fn main() -> Res<()> {
    let bin = env!("CARGO_BIN_EXE_latchkey");
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let concurrency = std::env::var("LATCHKEY_BENCH_POSTBACK_CONCURRENCY").unwrap_or_default();
    let cap = Duration::from_secs(
        std::env::var("LATCHKEY_BENCH_POSTBACK_CAP_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );

    // Receivers: 18 healthy, one that answers after 30 s (times out), one closed port.
    let mut healthy = Vec::new();
    for _ in 0..RECEIVERS - 2 {
        healthy.push(receiver(Duration::ZERO).await?);
    }
    let (slow_port, slow) = receiver(Duration::from_secs(30)).await?;
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let mut ports: Vec<u16> = healthy.iter().map(|(p, _)| *p).collect();
    ports.push(slow_port);
    ports.push(dead_port);

    // Migrate and make the system channel with a first start, then seed directly.
    let mut first = start(
        bin,
        &url,
        &[("LATCHKEY_POSTBACK_POLL_MS", "1000000000".into())],
    )?;
    let pool = loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(p) = db::connect(&url, 2) {
            let mut c = p.get()?;
            if channels::list(&mut c).is_ok_and(|l| !l.is_empty()) {
                drop(c);
                break p;
            }
        }
    };
    let _ = first.kill();
    let _ = first.wait();
    let sealer = Sealer::from_server_secret(POSTBACK_SECRET);
    let mut conn = pool.get()?;
    let channel = channels::list(&mut conn)?
        .into_iter()
        .next()
        .ok_or("no channel")?
        .id;
    let mut key_ids = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let (plain, parts) = PlainKey::generate("lk");
        let settings = KeySettings {
            name: format!("receiver-{i}"),
            description: None,
            expires_at: None,
            scopes: Vec::new(),
            cidrs: Vec::new(),
            postback_url: Some(format!("http://127.0.0.1:{port}/hook")),
            off_the_record: false,
            enabled: true,
            ..KeySettings::default()
        };
        let key = keys::insert(
            &mut conn,
            &keys::NewKey {
                channel_id: channel,
                settings: &settings,
                parts: &parts,
                hash: &plain.hash(),
                created_by: "bench",
                deactivated_by_person: false,
            },
        )?;
        let sealed = sealer
            .seal(&SigningSecret::generate())
            .ok_or("cannot seal")?;
        postback_secrets::insert(&mut conn, key.id, &sealed)?;
        key_ids.push(key.id);
    }
    for n in 0..EVENTS {
        let r = n % RECEIVERS;
        let url = format!("http://127.0.0.1:{}/hook", ports[r]);
        outbox::enqueue(
            &mut conn,
            &outbox::NewEvent {
                api_key_id: key_ids[r],
                event_type: "key.test",
                url: &url,
                payload: &format!("{{\"type\":\"key.test\",\"n\":{n}}}"),
                msg_id: &format!("msg_bench_{n}"),
                host: &format!("127.0.0.1:{}", ports[r]),
            },
        )?;
    }
    drop(conn);
    let per_receiver = EVENTS / RECEIVERS;
    let healthy_total = per_receiver * healthy.len();

    let mut env = vec![
        ("LATCHKEY_POSTBACK_POLL_MS", "100".to_owned()),
        ("LATCHKEY_POSTBACK_RETRY_MS", "1000".to_owned()),
    ];
    if !concurrency.is_empty() {
        env.push(("LATCHKEY_POSTBACK_CONCURRENCY", concurrency.clone()));
    }
    let started = Instant::now();
    let mut server = start(bin, &url, &env)?;
    let delivered = |h: &[(u16, Arc<Mutex<Tally>>)]| -> usize {
        h.iter()
            .map(|(_, t)| t.lock().map(|t| t.ids.len()).unwrap_or(0))
            .sum()
    };
    let mut first_done = None;
    loop {
        let d = delivered(&healthy);
        if first_done.is_none()
            && healthy
                .iter()
                .any(|(_, t)| t.lock().is_ok_and(|t| t.ids.len() == per_receiver))
        {
            first_done = Some(started.elapsed());
        }
        if d >= healthy_total || started.elapsed() > cap {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let d = delivered(&healthy);
    let requests: usize = healthy
        .iter()
        .map(|(_, t)| t.lock().map(|t| t.requests).unwrap_or(0))
        .sum();
    let slow_seen = slow.lock().map(|t| t.requests).unwrap_or(0);
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "postback engine (concurrency {}): {d}/{healthy_total} events to {} healthy receivers in {:.2} s \
         (first receiver complete after {:.2} s); {requests} requests (duplicates: {}); \
         slow receiver reached {slow_seen} times (none answered); 2 bad receivers with {} events pending",
        if concurrency.is_empty() {
            "default 32, 4 per host"
        } else {
            &concurrency
        },
        healthy.len(),
        elapsed.as_secs_f64(),
        first_done.unwrap_or(elapsed).as_secs_f64(),
        requests.saturating_sub(d),
        per_receiver * 2,
    );
    if d < healthy_total {
        println!("stopped at the {} s cap", cap.as_secs());
    }
    Ok(())
}
