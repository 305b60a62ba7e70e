//! Rate limits shared through a real Redis (issue 14): the sum over two instances obeys
//! the limit, and Redis going away mid-test gives the configured fail mode with no
//! stalled request. Run with `LATCHKEY_TEST_REDIS=redis://127.0.0.1:6379` (CI starts
//! Redis); without it these tests print a notice and pass without running.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Options, TestApp, spawn_app_with, spawn_on};
use crate::limits::{create, ops};

fn redis_url() -> Option<String> {
    let url = std::env::var("LATCHKEY_TEST_REDIS").ok();
    if url.is_none() {
        eprintln!("LATCHKEY_TEST_REDIS is not set: skipping the Redis tests (CI runs them)");
    }
    url
}

fn with_redis(url: &str, fail: &str) -> Options {
    Options {
        env: vec![
            ("LATCHKEY_REDIS_URL".into(), url.into()),
            ("LATCHKEY_REDIS_FAIL".into(), fail.into()),
        ],
    }
}

/// A Redis server of this test's own on a free loopback port, to stop mid-test.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: Option<u16>) -> OwnRedis {
        let port = port.unwrap_or_else(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnRedis { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn health(app: &TestApp) -> serde_json::Value {
    reqwest::get(format!("http://{}/healthz", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until every instance says its Redis connection is up.
async fn connected(apps: &[&TestApp]) {
    for app in apps {
        let started = Instant::now();
        while health(app).await["redis"] != "up" {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never connected to Redis"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn two_instances_share_a_limit_through_redis() {
    let Some(url) = redis_url() else { return };
    // A generous timeout: this test is about sharing, not about a loaded machine's
    // slow answers (the next test is).
    let mut opts = with_redis(&url, "closed");
    opts.env
        .push(("LATCHKEY_REDIS_TIMEOUT_MS".into(), "1000".into()));
    let one = spawn_app_with(opts.clone()).await;
    let two = spawn_on(one.db.clone(), opts).await;
    connected(&[&one, &two]).await;
    let api = ops(&one).await;
    let (plain, _) = create(
        &api,
        json!({"name": "shared", "scopes": ["verify"], "rate_limits": [{"limit": 100, "per": "second"}]}),
    )
    .await;
    let (valid, sent, elapsed) = crate::limits::hammer(&[&one, &two], &api, &plain, 50, |_, s| {
        s.elapsed() >= Duration::from_secs(5)
    })
    .await;
    let most = crate::limits::bound(100, elapsed);
    eprintln!("two instances, Redis: {valid} valid of {sent} in {elapsed:?} (bound {most})");
    assert!(valid <= most, "{valid} passed, bound {most}");
    assert!(sent > most && valid >= 400, "{valid} of {sent}");
    assert_eq!(health(&one).await["redis"], "up");
}

#[tokio::test]
async fn redis_going_away_gives_the_fail_mode_without_stalling() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = OwnRedis::start(None);
    let closed = spawn_app_with(with_redis(&redis.url(), "closed")).await;
    let open = spawn_on(closed.db.clone(), with_redis(&redis.url(), "open")).await;
    let api = ops(&closed).await;
    let (plain, _) = create(
        &api,
        json!({"name": "roomy", "scopes": ["verify"], "rate_limits": [{"limit": 100000, "per": "second"}]}),
    )
    .await;
    let verify = |app: &TestApp| {
        let url = format!("http://{}/api/v1/keys/verify", app.base);
        let (bearer, plain) = (api.key.clone(), plain.clone());
        async move {
            let started = Instant::now();
            let res: serde_json::Value = reqwest::Client::new()
                .post(url)
                .bearer_auth(bearer)
                .json(&json!({ "key": plain }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (res["code"].as_str().unwrap().to_owned(), started.elapsed())
        }
    };
    connected(&[&closed, &open]).await;
    assert_eq!(verify(&closed).await.0, "VALID");
    assert_eq!(verify(&open).await.0, "VALID");
    redis.stop();
    let mut times = Vec::new();
    for _ in 0..100 {
        let (c, t1) = verify(&closed).await;
        let (o, t2) = verify(&open).await;
        assert_eq!((c.as_str(), o.as_str()), ("RATE_LIMITED", "VALID"));
        times.extend([t1, t2]);
    }
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    eprintln!("Redis down: p99 {p99:?}, max {:?}", times.last().unwrap());
    assert!(
        p99 < Duration::from_millis(500),
        "requests stalled: p99 {p99:?}"
    );
    assert_eq!(health(&closed).await["redis"], "down");
    assert!(closed.logs().contains("Redis is unreachable"));
    let metrics = reqwest::get(format!("http://{}/metrics", closed.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("latchkey_redis_up 0"));
    assert!(!metrics.contains("latchkey_redis_failures_total 0\n"));
    // Back again: limits are shared once more within a couple of seconds.
    let _again = OwnRedis::start(Some(redis.port));
    let started = Instant::now();
    while verify(&closed).await.0 != "VALID" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "Redis never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health(&closed).await["redis"], "up");
}
