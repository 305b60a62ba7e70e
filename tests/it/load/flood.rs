//! The login flood of issue 11, measured (skipped by a plain `cargo test`, run by
//! `.ci/run` with `--ignored load::` and alone with `--ignored flood::`):
//! 64 concurrent anonymous logins, 512 in all, each from its own address, while
//! `/healthz` and a cached verification are timed. The figures are printed; the
//! assertion is deliberately loose (the machine is shared and noisy, the test server
//! a debug build): the target is a p95 within 2x of idle; the test fails past 2x plus
//! 25 ms of scheduling jitter (the code before issue 11 took /healthz to ~900 ms).
//! `FLOOD_CHECKS=n` sets LATCHKEY_PASSWORD_CHECKS to compare caps;
//! `LATCHKEY_TEST_BIN=target/release/latchkey` measures a release build.
//!
//! The password checks run on spare CPU (`spare_cpu`) while the machine has some: the
//! line printed says how many did, and how many ran at normal priority because other
//! work (another build, the other load tests run beside this one) left none. The 2x
//! target can only be expected when nearly all ran on spare CPU; see BENCHMARKS.md.
//!
//! Release build, 2 shared cores (issue 11's closing note):
//! before: idle healthz p95 1.1 ms, flood p50 479–508 ms, p95 541–580 ms;
//!         verify idle p95 0.6 ms, flood p95 11.5 ms.
//! capped: idle healthz p95 0.9–1.9 ms, flood p50 0.8–1.0 ms, p95 4.6–5.7 ms;
//!         verify idle p95 0.6–0.8 ms, flood p50 0.5 ms, p95 3.0–3.9 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::fixtures::{generate, system_channel};
use crate::helpers::{Options, TestApp, extract_csrf, spawn_app_with};

const CONCURRENT: usize = 64;
const TOTAL: usize = 512;

fn p(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

struct Stats {
    p50: Duration,
    p95: Duration,
    n: usize,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p95 {:.1} ms (n={})",
            self.p50.as_secs_f64() * 1e3,
            self.p95.as_secs_f64() * 1e3,
            self.n
        )
    }
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    Stats {
        p50: p(&v, 0.5),
        p95: p(&v, 0.95),
        n: v.len(),
    }
}

/// Times `/healthz` and one cached verification, alternately, until `stop` (or `n`
/// rounds when `stop` is never set).
async fn sample(
    app: &TestApp,
    verifier: &str,
    target: &str,
    stop: Arc<AtomicBool>,
    max: usize,
) -> (Stats, Stats) {
    let client = reqwest::Client::new();
    let api = app.api(verifier);
    let (mut health, mut verify) = (Vec::new(), Vec::new());
    while !stop.load(Ordering::Relaxed) && health.len() < max {
        let t = Instant::now();
        let res = client
            .get(format!("http://{}/healthz", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        health.push(t.elapsed());
        let t = Instant::now();
        let res = api.verify(target).await;
        assert_eq!(res.body["code"], "VALID");
        verify.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (stats(health), stats(verify))
}

/// What the attackers' logins were answered: refused (401, or 429 throttled), or shed
/// (503: the login waited its 10 s for a turn at argon2, `app::passwords`, and was told
/// to come back; the designed answer when the queue is too long, not a fault).
#[derive(Default)]
struct Answers {
    refused: usize,
    shed: usize,
}

/// Sets the flag when dropped: the sampler stops even when the flood's thread fails
/// (it looped forever when an attacker's assertion failed, and the test hung).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn attacker(base: String, n: usize, per: usize) -> Answers {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("http://{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = extract_csrf(&page).expect("csrf field");
    let mut answers = Answers::default();
    for j in 0..per {
        let i = n * per + j;
        let res = client
            .post(format!("http://{base}/login"))
            .header(
                "x-forwarded-for",
                format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
            )
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("username", &format!("flood{i}")),
                ("password", "not-the-password"),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default();
        match status {
            401 | 429 => answers.refused += 1,
            503 if body.contains("Too many logins at once") => answers.shed += 1,
            _ => assert!(status < 500, "login answered {status}"),
        }
    }
    answers
}

#[tokio::test]
#[ignore = "a login flood: run by .ci/run"]
async fn load_a_login_flood_leaves_healthz_and_cached_verification_fast() {
    let app = spawn_app_with(Options {
        env: vec![
            ("LATCHKEY_DB_POOL_SIZE".into(), "8".into()),
            ("LATCHKEY_TRUSTED_PROXIES".into(), "127.0.0.1/32".into()),
            (
                "LATCHKEY_PASSWORD_CHECKS".into(),
                std::env::var("FLOOD_CHECKS").unwrap_or("0".into()),
            ),
            ("LATCHKEY_LOG".into(), "warn".into()),
        ],
    })
    .await;
    let admin = app.admin().await;
    let verifier = generate(
        &admin,
        system_channel(&app),
        &[
            ("name", "verifier"),
            ("scopes", "verify"),
            ("enabled", "on"),
        ],
    )
    .await;
    let target = generate(
        &admin,
        system_channel(&app),
        &[("name", "target"), ("enabled", "on")],
    )
    .await;
    let never = Arc::new(AtomicBool::new(false));
    // Warm up (the cache, the connections), then idle figures.
    sample(&app, &verifier, &target, never.clone(), 50).await;
    let (idle_health, idle_verify) = sample(&app, &verifier, &target, never, 300).await;

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    // The attackers run on a thread and runtime of their own: on the test's runtime
    // the sampler would wait for 64 attackers to be polled, and the figures would be
    // the client's queue rather than the server's answer.
    let flood = {
        let base = app.base.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _stop = StopOnDrop(stop);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let tasks: Vec<_> = (0..CONCURRENT)
                    .map(|n| tokio::spawn(attacker(base.clone(), n, TOTAL / CONCURRENT)))
                    .collect();
                let mut all = Answers::default();
                for t in tasks {
                    let a = t.await.unwrap();
                    all.refused += a.refused;
                    all.shed += a.shed;
                }
                all
            })
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (flood_health, flood_verify) =
        sample(&app, &verifier, &target, stop.clone(), usize::MAX).await;
    let Answers { refused, shed } = flood.join().expect("the flood's logins failed");
    let took = started.elapsed();
    let metrics = reqwest::get(format!("http://{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let checks = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("latchkey_password_checks_{name}_total ")))
            .unwrap_or("?")
            .to_owned()
    };
    eprintln!(
        "flood: {TOTAL} logins ({CONCURRENT} concurrent) refused {refused}, told busy {shed} \
         in {:.1} s; \
         password checks on spare CPU {}, at normal priority {}\n\
         idle:  healthz {idle_health}; verify {idle_verify}\n\
         flood: healthz {flood_health}; verify {flood_verify}",
        took.as_secs_f64(),
        checks("spare"),
        checks("normal"),
    );
    assert_eq!(refused + shed, TOTAL);
    let bound = |idle: &Stats| idle.p95 * 2 + Duration::from_millis(25);
    assert!(
        flood_health.p95 <= bound(&idle_health),
        "healthz p95 {flood_health} vs idle {idle_health}"
    );
    assert!(
        flood_verify.p95 <= bound(&idle_verify),
        "verify p95 {flood_verify} vs idle {idle_verify}"
    );
}
