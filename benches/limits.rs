//! Verification of a key with a rate limit and credits (issue 14), against a bare
//! actix-web handler in the same run:
//!
//! - `bare`: a plain actix-web JSON handler, two workers, in this process (`GET`);
//! - `bare, same request`: the same handler sent the verification's request (`POST`,
//!   the same headers and JSON body, read whole): what the request's size costs the
//!   client, the kernel and actix before any of Latchkey's work (a second reference);
//! - `floor`: the same handler's server doing the least a verification must (read and
//!   parse the JSON body, hash the bearer and the key, find both in a map, count the
//!   use, send Latchkey's answer): the ceiling of any verification on this machine;
//! - `valid`: a key with no limits (what verification costs without them);
//! - `limited`: a key with a rate limit and credits, limits counted in process;
//! - `limited, Redis`: the same key on a second server sharing the database, whose
//!   rate-limit state lives in Redis (`LATCHKEY_BENCH_REDIS`, default
//!   `redis://127.0.0.1:6379`; skipped when Redis does not answer).
//!
//! The rate limit (10^9 per second) and the credits (10^12) are never reached: this
//! measures what checking them costs. Each round runs every scenario once (wrk, 2
//! threads, 50 connections), every other round in reverse order; requests/s is the
//! median of the rounds. The target is met only when the limited key reaches it both
//! as a ratio of medians and as the median of the rounds' own ratios.
//!
//! ```sh
//! apt-get install -y wrk redis-server
//! cargo bench --bench limits
//! ```
//!
//! Knobs: `LATCHKEY_BENCH_ROUNDS` (3), `LATCHKEY_BENCH_SECONDS` (10);
//! `LATCHKEY_BENCH_HOLD=<seconds>` prints every scenario's address and wrk script and
//! keeps the servers up that long instead of measuring (to profile them from outside).

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::bare::valid_answer;
use common::{Res, Server};
use latchkey::db::{self, keys};
use latchkey::domain::key::PlainKey;
use latchkey::domain::key_settings::KeyInput;

const TARGET_IN_PROCESS: f64 = 0.7;
/// Where the scenarios sit in `figures`.
const FLOOR: usize = 2;
const VALID: usize = 3;
const LIMITED: usize = 4;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("limits: run with `cargo bench --bench limits`");
        return;
    }
    if let Err(e) = run() {
        eprintln!("limits benchmark failed: {e}");
        std::process::exit(1);
    }
}

fn num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Inserts a key straight into the database and returns its plaintext.
fn insert(conn: &mut db::DbConnection, channel: i64, input: KeyInput) -> Res<String> {
    let settings = input
        .parse(
            &["verify".into()],
            db::now(),
            None,
            &latchkey::domain::receiver::Policy::default(),
        )
        .map_err(|e| format!("{e:?}"))?;
    let (plain, parts) = PlainKey::generate("lk");
    keys::insert(
        conn,
        &keys::NewKey {
            channel_id: channel,
            settings: &settings,
            parts: &parts,
            hash: &plain.hash(),
            created_by: "bench",
            deactivated_by_person: false,
        },
    )?;
    Ok(plain.reveal().to_owned())
}

/// A wrk script that POSTs one verification.
fn post_script(dir: &Path, name: &str, caller: &str, key: &str) -> Res<String> {
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(
        &path,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Authorization\"] = \"Bearer {caller}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{{\"key\": \"{key}\"}}'\n"
        ),
    )?;
    Ok(path.display().to_string())
}

/// Requests per second of one wrk run.
fn wrk(url: &str, script: Option<&str>, seconds: u64) -> Res<f64> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c50", &format!("-d{seconds}s"), "--latency"]);
    if let Some(s) = script {
        cmd.args(["-s", s]);
    }
    let out = cmd.arg(url).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") {
        return Err(format!("non-2xx answers from {url}: {text}").into());
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no figure from wrk: {text}").into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn redis_answers(url: &str) -> bool {
    let addr = url.trim_start_matches("redis://").trim_end_matches('/');
    std::net::TcpStream::connect(addr).is_ok()
}

fn run() -> Res<()> {
    let rounds = num("LATCHKEY_BENCH_ROUNDS", 3).max(1);
    let seconds = num("LATCHKEY_BENCH_SECONDS", 10).max(1);
    let work = tempfile::tempdir()?;
    let url = format!("sqlite://{}", work.path().join("bench.db").display());
    let bin = Path::new(env!("CARGO_BIN_EXE_latchkey"));
    // The server makes the database and its system channel at its first start.
    let local = Server::start(bin, &url)?;
    let pool = db::connect(&url, 2)?;
    let (caller, plain, limited) = {
        let mut conn = pool.get()?;
        let channel = latchkey::db::channels::list(&mut conn)?
            .into_iter()
            .find(|c| c.is_system)
            .ok_or("no system channel")?
            .id;
        let key = |name: &str| KeyInput {
            name: name.into(),
            scopes: vec!["verify".into()],
            enabled: true,
            ..KeyInput::default()
        };
        let caller = insert(&mut conn, channel, key("caller"))?;
        let plain = insert(&mut conn, channel, key("plain"))?;
        let limited = insert(
            &mut conn,
            channel,
            KeyInput {
                rate_limits: "1000000000/second".into(),
                credits: "1000000000000".into(),
                ..key("limited")
            },
        )?;
        (caller, plain, limited)
    };
    drop(pool);
    let redis_url =
        std::env::var("LATCHKEY_BENCH_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let shared = if redis_answers(&redis_url) {
        Some(Server::start_with(
            bin,
            &url,
            &[("LATCHKEY_REDIS_URL", &redis_url)],
        )?)
    } else {
        println!("Redis does not answer at {redis_url}: the Redis scenario is skipped");
        None
    };
    let reference = common::bare::start()?;
    reference
        .floor
        .admit(&caller, &plain, valid_answer(&local.addr, &caller, &plain)?);
    let bare_url = reference.bare_url();
    let dir = work.path();
    let mut scenarios: Vec<(&str, String, Option<String>)> = vec![
        ("bare actix-web handler", bare_url.clone(), None),
        (
            "bare handler, the verification's request",
            bare_url,
            Some(post_script(dir, "bare-post", &caller, &plain)?),
        ),
        (
            "floor: a verification's least work in a bare handler",
            reference.floor_url(),
            Some(post_script(dir, "floor", &caller, &plain)?),
        ),
        (
            "valid key, no limits",
            format!("http://{}/api/v1/keys/verify", local.addr),
            Some(post_script(dir, "plain", &caller, &plain)?),
        ),
        (
            "rate limit + credits, in process",
            format!("http://{}/api/v1/keys/verify", local.addr),
            Some(post_script(dir, "limited", &caller, &limited)?),
        ),
    ];
    if let Some(s) = &shared {
        scenarios.push((
            "rate limit + credits, Redis",
            format!("http://{}/api/v1/keys/verify", s.addr),
            Some(post_script(dir, "limited-redis", &caller, &limited)?),
        ));
    }
    let hold = num("LATCHKEY_BENCH_HOLD", 0);
    if hold > 0 {
        // For profiling from outside (perf, callgrind): every scenario's address and
        // wrk script, then the servers stay up for `hold` seconds.
        println!("bench process: {}", std::process::id());
        for (name, url, script) in &scenarios {
            println!("{name}\t{url}\t{}", script.as_deref().unwrap_or("-"));
        }
        std::thread::sleep(std::time::Duration::from_secs(hold));
        return Ok(());
    }
    // Warm-up: caches filled, a credit block reserved, Redis connected.
    for (_, url, script) in &scenarios {
        wrk(url, script.as_deref(), 2)?;
    }
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    for round in 0..rounds {
        // Every other round runs the scenarios in reverse order, so that a machine
        // growing slower or faster during a run weighs on every scenario's ratio to
        // the bare handler alike (each sits, on average, as far from it in time).
        let mut order: Vec<usize> = (0..scenarios.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (name, url, script) = &scenarios[i];
            let rps = wrk(url, script.as_deref(), seconds)?;
            println!("round {}: {name}: {rps:.0} req/s", round + 1);
            figures[i].push(rps);
        }
    }
    let bare = median(figures[0].clone());
    println!("\n| scenario | req/s (median of {rounds}) | ÷ bare |\n|---|---:|---:|");
    for ((name, ..), f) in scenarios.iter().zip(&figures) {
        let m = median(f.clone());
        println!("| {name} | {m:.0} | {:.2}× |", m / bare);
    }
    let in_process = median(figures[LIMITED].clone()) / bare;
    // Per round, then the median: each ratio from runs a few seconds apart.
    let per_round = |arm: usize, reference: usize| -> f64 {
        median(
            figures[arm]
                .iter()
                .zip(&figures[reference])
                .map(|(a, r)| a / r)
                .collect(),
        )
    };
    let paired = per_round(LIMITED, 0);
    // Met only when both ways of reading the rounds reach the target.
    println!(
        "\nin process: {in_process:.2}× of bare (ratio of medians), {paired:.2}× (median of \
         the rounds' ratios); target ≥ {TARGET_IN_PROCESS}× both ways: {}",
        if in_process.min(paired) >= TARGET_IN_PROCESS {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "in process ÷ bare in each round: {}",
        figures[LIMITED]
            .iter()
            .zip(&figures[0])
            .map(|(a, r)| format!("{:.2}", a / r))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "in process, median of the rounds' ratios: {paired:.2}× of bare, {:.2}× of bare \
         sent the same request",
        per_round(LIMITED, 1)
    );
    println!(
        "the floor: {:.2}× of bare; valid key {:.2}× and in process {:.2}× of the floor \
         (medians of the rounds' ratios)",
        per_round(FLOOR, 0),
        per_round(VALID, FLOOR),
        per_round(LIMITED, FLOOR)
    );
    Ok(())
}
