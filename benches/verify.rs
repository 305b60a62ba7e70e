//! Throughput and latency of key verification (`POST /api/v1/keys/verify`) and of
//! Latchkey's own API against a **bare actix-web JSON handler** built here (an
//! `HttpServer` in this process, own thread and actix System, `.workers(2)` like the
//! server's default on two cores, `GET /bare` answering `{"ok":true}`), all under `wrk`
//! on loopback.
//!
//! Seeds `LATCHKEY_BENCH_KEYS` keys (default 100,000) into one channel (bulk multi-row
//! INSERTs, like `keys_page.rs`), among them a caller key with the `verify` scope, a
//! reader with `keys:read`, the key to verify and 10,000 valid targets spread over the
//! table; starts the release `latchkey` binary on the database (`LATCHKEY_LOG=warn`,
//! usage flushed once a second by default) and runs, in interleaved rounds (every arm
//! once per round, a 2 s warm-up each before the first), `wrk -t2 -c50 -d10s --latency`
//! for:
//!
//! - bare: the bare handler (the reference of every ratio),
//! - floor: the same server's `POST /floor` sent (a)'s request: the least work a
//!   verification must do (parse the body, hash the bearer and the key, find both,
//!   count, answer with Latchkey's own bytes), so the ceiling of (a), (b) and (c) on
//!   the machine it runs on (`common/bare.rs`),
//! - ping: `GET /api/v1/ping` (the server's own JSON handler with all its middleware:
//!   the second reference),
//! - (a) a valid key,
//! - (b) a malformed key (a generated key with its checksum broken),
//! - (c) a well-formed unknown key,
//! - (h) an API call with a bad bearer: `GET /api/v1/keys/<key id>` with
//!   `Authorization: Bearer lk_notakey…` as long as a real key (401),
//! - (i) `GET /api/v1/keys/{key_id}` with a valid `keys:read` key,
//! - (d) experiment: (a) with an Off-the-Record target (counted, no raw row: isolates
//!   the raw log's cost).
//!
//! After every run the bench waits until the raw request log **and** the rollups stop
//! changing (the day rollups of all keys summed must also reach the counts of the
//! requests wrk completed): the *log lag* is the seconds that took after the run. It
//! checks what each arm wrote against what it should: (a) one raw row per request (a
//! flush keeps a key's newest 10,000), (i) one, (b), (c), (h) none; rollup counts: two
//! per verification (the verified key's code or MALFORMED / NOT_FOUND under key 0, and
//! the caller's API_2XX), one for (h) (UNAUTHENTICATED under key 0) and (i) (API_2XX),
//! none for bare and ping; between what wrk completed and that plus one per connection
//! (requests in flight when wrk stopped).
//!
//! Then, once per backend:
//! - experiment (e): unknown keys that are all different (cache misses),
//! - the **sustained run**: (a) at full load for `LATCHKEY_BENCH_SUSTAINED_SECONDS`
//!   (default 60): wrk's completed requests, the server's own count (the growth of
//!   `latchkey_verifications_total{code="VALID"}` on `/metrics`) and the target's VALID
//!   rollups of each period (minute, hour, day), which must equal the server's count
//!   and be within the requests in flight of wrk's; log lag ≤ 2 s,
//! - the **spread run**: the same length, verifications round-robin over the 10,000
//!   spread targets (a wrk Lua script cycling through their plaintexts),
//! - database growth per million verifications over each of the two (SQLite: main file
//!   and WAL after `PRAGMA wal_checkpoint(TRUNCATE)`, per table from `dbstat` where
//!   SQLite has it; PostgreSQL: `pg_database_size`, `pg_total_relation_size` per table),
//! - the server's `VmRSS` (from `/proc/<pid>/status`).
//!
//! Beside every wrk run it records the CPU time used by the server (for the bare arm:
//! this process), by wrk, by the PostgreSQL backends of the bench database and by
//! everything else on the machine (from `/proc`), because wrk and the server share the
//! same two cores and other work on the machine skews the numbers. The (f) and (g)
//! experiments of earlier versions are gone: with no raw row for the caller's request
//! (f) is (b), and (h) replaces (g).
//!
//! Runs on SQLite always and on PostgreSQL when `LATCHKEY_BENCH_POSTGRES` names an admin
//! URL (a fresh `latchkey_bench_<random>` database is created and dropped). Writes the
//! results to `target/bench-verify.md`. Needs `wrk` on the PATH (`apt-get install wrk`).
//!
//! ```sh
//! cargo build --release && \
//! LATCHKEY_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench verify
//! ```
//!
//! A short trial of the bench itself:
//!
//! ```sh
//! LATCHKEY_BENCH_SECONDS=2 LATCHKEY_BENCH_ROUNDS=1 LATCHKEY_BENCH_KEYS=20000 \
//! LATCHKEY_BENCH_SUSTAINED_SECONDS=5 LATCHKEY_BENCH_QUIET_WAIT=0 cargo bench --bench verify
//! ```
//!
//! Knobs: `LATCHKEY_BENCH_ROUNDS` (default 3; requests/s and p50 are the median of
//! rounds, p99 the worst), `LATCHKEY_BENCH_SECONDS` (default 10 per wrk run),
//! `LATCHKEY_BENCH_CONNECTIONS` (default 50), `LATCHKEY_BENCH_KEYS` (keys stored,
//! default 100,000; with fewer than 40,000 a quarter of them are spread targets),
//! `LATCHKEY_BENCH_SUSTAINED_SECONDS` (default 60; the spread run
//! lasts as long), `LATCHKEY_BENCH_QUIET_WAIT` (seconds to wait for the machine to go
//! quiet before each round, default 300), `LATCHKEY_BENCH_SKIP_SQLITE=1`,
//! `LATCHKEY_BENCH_NO_EXPERIMENTS=1` (skip (d), (e)), `LATCHKEY_BENCH_KEEP=1` (keep the
//! PostgreSQL database), `LATCHKEY_BIN` (the server binary to start; default the release
//! build cargo made), `LATCHKEY_BENCH_PERF=DIR` (after the rounds, one more run of each
//! server arm under `perf record --call-graph dwarf`, profiles written to `DIR`; not
//! part of the results).

mod common;
#[path = "verify/load.rs"]
mod load;
#[path = "verify/seed.rs"]
mod seed;

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PgDatabase, Res, Server, env_flag, memory_mb};
use latchkey::domain::key::PlainKey;
use load::{Kind, Scenario, WRK_THREADS, Watch, WrkRun, wait_for_quiet, wrk};
use seed::{Probe, Seeded, Size};

const WARMUP_SECONDS: u64 = 2;
/// The rollup periods, finest first.
const PERIODS: [&str; 3] = ["minute", "hour", "day"];
/// Distinct unknown keys for experiment (e): more than one run can use up.
const DISTINCT_UNKNOWN: usize = 400_000;

const TARGET_VALID_SQLITE: f64 = 0.8;
const TARGET_VALID_POSTGRES: f64 = 0.7;
const TARGET_REFUSED: f64 = 0.85;
const TARGET_BAD_BEARER_OF_PING: f64 = 0.9;
const TARGET_GET_KEY: f64 = 0.3;
const TARGET_P99_MS: f64 = 5.0;
const TARGET_LAG_S: f64 = 2.0;
const TARGET_RSS_MB: f64 = 100.0;

fn main() {
    // `cargo test --all-targets` runs bench targets without `--bench`: stay quick there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("verify: run with `cargo bench --bench verify`");
        return;
    }
    if let Err(e) = run() {
        eprintln!("verify benchmark failed: {e}");
        std::process::exit(1);
    }
}

#[derive(Clone, Copy)]
pub struct Plan {
    rounds: usize,
    seconds: u64,
    pub connections: usize,
    quiet_wait: u64,
    experiments: bool,
    keys: usize,
    sustained: u64,
}

impl Plan {
    fn from_env() -> Self {
        let num = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|n: &u64| *n > 0)
                .unwrap_or(default)
        };
        Plan {
            rounds: num("LATCHKEY_BENCH_ROUNDS", 3) as usize,
            seconds: num("LATCHKEY_BENCH_SECONDS", 10),
            connections: num("LATCHKEY_BENCH_CONNECTIONS", 50) as usize,
            quiet_wait: std::env::var("LATCHKEY_BENCH_QUIET_WAIT")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(300),
            experiments: !env_flag("LATCHKEY_BENCH_NO_EXPERIMENTS"),
            keys: num("LATCHKEY_BENCH_KEYS", 100_000).max(1_000) as usize,
            sustained: num("LATCHKEY_BENCH_SUSTAINED_SECONDS", 60),
        }
    }
}

pub struct Ctx {
    pub plan: Plan,
    bin: PathBuf,
    work: PathBuf,
    pub ticks: f64,
    unknown_file: Option<PathBuf>,
    started: Instant,
    /// The bare handler and the floor (`common::bare`).
    reference: common::bare::Reference,
}

fn run() -> Res<()> {
    let plan = Plan::from_env();
    let started = Instant::now();
    let work = tempfile::tempdir()?;
    let bin = server_binary(work.path())?;
    let wrk_version = Command::new("wrk")
        .arg("--version")
        .output()
        .map_err(|e| format!("wrk is not installed ({e}): apt-get install -y wrk"))?;
    let wrk_version = String::from_utf8_lossy(&wrk_version.stdout)
        .lines()
        .next()
        .unwrap_or("wrk")
        .split(" Copyright")
        .next()
        .unwrap_or("wrk")
        .to_owned();
    let ticks = clock_ticks();
    println!(
        "verify: {} keys, {} round(s) of wrk -t{WRK_THREADS} -c{} -d{}s, sustained {} s; {wrk_version}; server {}",
        plan.keys,
        plan.rounds,
        plan.connections,
        plan.seconds,
        plan.sustained,
        bin.display()
    );
    let unknown_file = if plan.experiments {
        let path = work.path().join("unknown-keys.txt");
        let mut text = String::with_capacity(DISTINCT_UNKNOWN * 65);
        for _ in 0..DISTINCT_UNKNOWN {
            text.push_str(PlainKey::generate("lk").0.reveal());
            text.push('\n');
        }
        std::fs::write(&path, text)?;
        Some(path)
    } else {
        None
    };
    let reference = common::bare::start()?;
    println!("bare actix-web handler on {}", reference.bare_url());
    let ctx = Ctx {
        plan,
        bin,
        work: work.path().to_owned(),
        ticks,
        unknown_file,
        started,
        reference,
    };
    let mut results = Vec::new();
    if !env_flag("LATCHKEY_BENCH_SKIP_SQLITE") {
        let url = format!("sqlite://{}", work.path().join("bench.db").display());
        results.push(bench_backend("SQLite", &url, &ctx)?);
    }
    match std::env::var("LATCHKEY_BENCH_POSTGRES") {
        Ok(admin) if !admin.is_empty() => {
            let pg = PgDatabase::create(&admin)?;
            results.push(bench_backend("PostgreSQL", &pg.url, &ctx)?);
        }
        _ => println!("LATCHKEY_BENCH_POSTGRES is not set: PostgreSQL skipped"),
    }
    let report = report(&results, plan, &wrk_version);
    println!("\n{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-verify.md");
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &report)?;
    println!(
        "written to {} ({:.0} s in all)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The server binary, copied so that a rebuild by someone else during the run cannot
/// swap it between the backends.
fn server_binary(work: &Path) -> Res<PathBuf> {
    let bin = std::env::var("LATCHKEY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").into());
    if !bin.exists() {
        return Err(format!("no server binary at {}", bin.display()).into());
    }
    let copy = work.join("latchkey");
    std::fs::copy(&bin, &copy)?;
    Ok(copy)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

// ---------------------------------------------------------------------------------
// One backend

/// The sustained or spread run: wrk, the server's count, rollups, sizes.
struct LongRun {
    run: WrkRun,
    /// Growth of `latchkey_verifications_total{code="VALID"}`.
    server_count: i64,
    /// Growth of the VALID rollups: the target's per period (minute, hour, day) for
    /// the sustained run; all keys' day rows for the spread run (in `[2]`).
    rollups: [i64; 3],
    size_before: Size,
    size_after: Size,
}

impl LongRun {
    fn per_million(&self, f: impl Fn(&Size) -> Option<i64>) -> Option<f64> {
        let (a, b) = (f(&self.size_after)?, f(&self.size_before)?);
        Some((a - b) as f64 * 1e6 / self.server_count.max(1) as f64)
    }
}

struct BackendResult {
    backend: &'static str,
    seed_seconds: f64,
    scenarios: Vec<Scenario>,
    /// VmRSS, VmHWM before any load; after the rounds; after everything.
    memory_start: (f64, f64),
    memory: (f64, f64),
    memory_end: (f64, f64),
    sustained: LongRun,
    spread: LongRun,
    spread_keys: usize,
    /// "request log buffer full" lines in the server log.
    drop_warnings: usize,
    idle_others: Vec<f64>,
}

/// Checks one response by hand before loading the server with it.
async fn check(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    verify: Option<&str>,
    status: u16,
    expect: &str,
) -> Res<()> {
    let mut req = match verify {
        None => client.get(url),
        Some(k) => client.post(url).json(&serde_json::json!({ "key": k })),
    };
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = req.send().await?;
    let got = res.status();
    let body = res.text().await?;
    if got.as_u16() != status || !body.contains(expect) {
        return Err(format!("{url}: expected {status} with {expect}, got {got}: {body}").into());
    }
    Ok(())
}

/// `latchkey_verifications_total{code="VALID"}` from `/metrics` (loopback needs no
/// token), by hand over a plain connection.
fn server_valid_count(addr: &str) -> Res<i64> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let line = text
        .lines()
        .find(|l| l.starts_with("latchkey_verifications_total{code=\"VALID\"}"))
        .ok_or_else(|| format!("no VALID verification count on /metrics: {text}"))?;
    Ok(line
        .rsplit(' ')
        .next()
        .and_then(|n| n.trim().parse::<f64>().ok())
        .ok_or("bad verification count")? as i64)
}

fn bench_backend(backend: &'static str, url: &str, ctx: &Ctx) -> Res<BackendResult> {
    println!(
        "{backend}: seeding ({:.0} s since start)",
        ctx.started.elapsed().as_secs_f64()
    );
    let seeded = seed::seed(url, backend, ctx.plan.keys)?;
    let server = Server::start(&ctx.bin, url)?;
    let result = measure_backend(backend, url, ctx, &seeded, &server);
    if result.is_err() {
        eprintln!("server log:\n{}", server.log());
    }
    result
}

fn print_run(label: &str, run: &WrkRun) {
    println!(
        "  {label:<58} {:>9.0} req/s  p50 {:>6.3} ms  p99 {:>6.3} ms  server {:.2} cores, wrk {:.2}, others {:.2}, VmRSS {:.0} MB, lag {:.1} s, raw +{}, counted +{}{}",
        run.rps,
        run.p50,
        run.p99,
        run.server_cpu / run.wall,
        run.wrk_cpu / run.wall,
        run.others_cpu / run.wall,
        run.rss_after,
        run.lag,
        run.raw_rows,
        run.counted,
        if run.non2xx + run.socket_errors > 0 {
            format!(
                "  ({} non-2xx, {} socket errors)",
                run.non2xx, run.socket_errors
            )
        } else {
            String::new()
        }
    );
}

fn measure_backend(
    backend: &'static str,
    url: &str,
    ctx: &Ctx,
    seeded: &Seeded,
    server: &Server,
) -> Res<BackendResult> {
    let base = format!("http://{}", server.addr);
    let pid = server.pid();
    let watch = Watch {
        server: pid,
        db: url
            .starts_with("postgres")
            .then(|| url.rsplit('/').next().unwrap_or_default().to_owned()),
        probe: Probe::open(url)?,
    };
    println!(
        "{backend}: server pid {pid} on {base}; measuring ({:.0} s since start)",
        ctx.started.elapsed().as_secs_f64()
    );
    let verify_url = format!("{base}/api/v1/keys/verify");
    let key_url = format!("{base}/api/v1/keys/{}", seeded.valid_key_id);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let c = Some(seeded.caller.as_str());
        check(
            &client,
            &ctx.reference.bare_url(),
            None,
            None,
            200,
            "\"ok\":true",
        )
        .await?;
        check(
            &client,
            &format!("{base}/api/v1/ping"),
            None,
            None,
            200,
            "\"ok\":true",
        )
        .await?;
        let v = |key: &str| Some(key.to_owned());
        for (key, code) in [
            (v(&seeded.valid), "VALID"),
            (v(&seeded.valid_otr), "VALID"),
            (v(&seeded.malformed), "MALFORMED"),
            (v(&seeded.unknown), "NOT_FOUND"),
            (seeded.spread.first().cloned(), "VALID"),
            (seeded.spread.last().cloned(), "VALID"),
        ] {
            let code = format!("\"code\":\"{code}\"");
            check(&client, &verify_url, c, key.as_deref(), 200, &code).await?;
        }
        check(&client, &key_url, Some(&seeded.bad_bearer), None, 401, "").await?;
        let id = format!("\"{}\"", seeded.valid_key_id);
        check(&client, &key_url, Some(&seeded.reader), None, 200, &id).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    // The floor answers this backend's valid key with the server's own answer.
    let answer = common::bare::valid_answer(
        base.trim_start_matches("http://"),
        &seeded.caller,
        &seeded.valid,
    )?;
    ctx.reference
        .floor
        .admit(&seeded.caller, &seeded.valid, answer);
    let memory_start = memory_mb(pid)?;

    let dir = ctx.work.join(backend.to_lowercase());
    std::fs::create_dir_all(&dir)?;
    let post = |kind, name, key: &str| -> Res<Scenario> {
        let script = load::post_script(&dir, name, &seeded.caller, key)?;
        Ok(Scenario::new(kind, verify_url.clone(), Some(script)))
    };
    let mut core = vec![
        Scenario::new(Kind::Bare, ctx.reference.bare_url(), None),
        Scenario::new(
            Kind::Floor,
            ctx.reference.floor_url(),
            Some(load::post_script(
                &dir,
                "floor",
                &seeded.caller,
                &seeded.valid,
            )?),
        ),
        Scenario::new(Kind::Ping, format!("{base}/api/v1/ping"), None),
        post(Kind::Valid, "valid", &seeded.valid)?,
        post(Kind::Malformed, "malformed", &seeded.malformed)?,
        post(Kind::Unknown, "unknown", &seeded.unknown)?,
        Scenario::new(
            Kind::BadBearer,
            key_url.clone(),
            Some(load::get_script(&dir, "bad-bearer", &seeded.bad_bearer)?),
        ),
        Scenario::new(
            Kind::GetKey,
            key_url.clone(),
            Some(load::get_script(&dir, "get-key", &seeded.reader)?),
        ),
    ];
    if ctx.plan.experiments {
        core.push(post(
            Kind::ValidOffTheRecord,
            "valid-otr",
            &seeded.valid_otr,
        )?);
    }
    let mut idle_others = Vec::new();
    idle_others.push(wait_for_quiet(ctx.ticks, &watch, ctx.plan.quiet_wait));
    for s in &core {
        wrk(ctx, &watch, s, WARMUP_SECONDS)?;
    }
    for round in 0..ctx.plan.rounds {
        if round > 0 {
            idle_others.push(wait_for_quiet(ctx.ticks, &watch, ctx.plan.quiet_wait));
        }
        for s in &mut core {
            let run = wrk(ctx, &watch, s, ctx.plan.seconds)?;
            print_run(&format!("round {}: {}", round + 1, s.kind.label()), &run);
            s.runs.push(run);
        }
    }
    if let Ok(perf_dir) = std::env::var("LATCHKEY_BENCH_PERF") {
        profile(ctx, &watch, &core, backend, Path::new(&perf_dir))?;
    }
    let memory = memory_mb(pid)?;

    if let Some(file) = &ctx.unknown_file {
        let script = load::rotating_script(&dir, "distinct-unknown", &seeded.caller, file)?;
        let mut s = Scenario::new(Kind::DistinctUnknown, verify_url.clone(), Some(script));
        idle_others.push(wait_for_quiet(ctx.ticks, &watch, ctx.plan.quiet_wait));
        let run = wrk(ctx, &watch, &s, ctx.plan.seconds)?;
        print_run(s.kind.label(), &run);
        if run.requests as usize > DISTINCT_UNKNOWN {
            println!("  (the key list wrapped: some unknown keys were asked twice)");
        }
        s.runs.push(run);
        core.push(s);
    }

    // The sustained run: (a) at full load.
    let valid = core
        .iter()
        .find(|s| s.kind == Kind::Valid)
        .ok_or("no (a)")?;
    let sustained_scenario =
        Scenario::new(Kind::Sustained, valid.url.clone(), valid.script.clone());
    idle_others.push(wait_for_quiet(ctx.ticks, &watch, ctx.plan.quiet_wait));
    let sustained = long_run(ctx, &watch, server, &sustained_scenario, || {
        let mut totals = [0; 3];
        for (total, period) in totals.iter_mut().zip(PERIODS) {
            *total = watch.probe.rollup_total(seeded.valid_id, period, "VALID")?;
        }
        Ok(totals)
    })?;
    print_run(sustained_scenario.kind.label(), &sustained.run);

    // The spread run: the same over the spread targets.
    let spread_file = dir.join("spread-keys.txt");
    std::fs::write(&spread_file, seeded.spread.join("\n") + "\n")?;
    let spread_scenario = Scenario::new(
        Kind::Spread,
        verify_url.clone(),
        Some(load::rotating_script(
            &dir,
            "spread",
            &seeded.caller,
            &spread_file,
        )?),
    );
    idle_others.push(wait_for_quiet(ctx.ticks, &watch, ctx.plan.quiet_wait));
    let spread = long_run(ctx, &watch, server, &spread_scenario, || {
        Ok([0, 0, watch.probe.valid_total()?])
    })?;
    print_run(spread_scenario.kind.label(), &spread.run);

    std::thread::sleep(Duration::from_millis(1500));
    let memory_end = memory_mb(pid)?;
    let drop_warnings = server.log().matches("oldest entries dropped").count();
    println!(
        "  {backend}: VmRSS {:.1} MB after the rounds, {:.1} MB at the end (peak {:.1} MB); {drop_warnings} 'buffer full' warnings",
        memory.0, memory_end.0, memory_end.1
    );
    Ok(BackendResult {
        backend,
        seed_seconds: seeded.seconds,
        scenarios: core,
        memory_start,
        memory,
        memory_end,
        sustained,
        spread,
        spread_keys: seeded.spread.len(),
        drop_warnings,
        idle_others,
    })
}

/// One long run of `s`: the server's count, `rollups()` and the database size before
/// and after (after the run's writes have settled).
fn long_run(
    ctx: &Ctx,
    watch: &Watch,
    server: &Server,
    s: &Scenario,
    rollups: impl Fn() -> Res<[i64; 3]>,
) -> Res<LongRun> {
    let size_before = watch.probe.size()?;
    let count_before = server_valid_count(&server.addr)?;
    let rollups_before = rollups()?;
    let run = wrk(ctx, watch, s, ctx.plan.sustained)?;
    let rollups_after = rollups()?;
    let count_after = server_valid_count(&server.addr)?;
    let size_after = watch.probe.size()?;
    Ok(LongRun {
        run,
        server_count: count_after - count_before,
        rollups: [0, 1, 2].map(|i| rollups_after[i] - rollups_before[i]),
        size_before,
        size_after,
    })
}

/// Profiles, outside the measured rounds (perf slows the server down).
fn profile(ctx: &Ctx, watch: &Watch, core: &[Scenario], backend: &str, dir: &Path) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    for s in core.iter().filter(|s| !s.kind.in_bench_process()) {
        let data = dir.join(format!("{}-{:?}.data", backend.to_lowercase(), s.kind));
        let mut perf = Command::new("perf")
            // No frame pointers in the release build: unwind with DWARF (.eh_frame).
            .args(["record", "-F", "199", "--call-graph", "dwarf,8192", "-o"])
            .arg(&data)
            .arg("-p")
            .arg(watch.server.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(500));
        let run = wrk(ctx, watch, s, ctx.plan.seconds)?;
        Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status()?;
        perf.wait()?;
        println!(
            "  profiled {} ({:.0} req/s under perf) into {}",
            s.kind.label(),
            run.rps,
            data.display()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Report

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn expected_raw(kind: Kind) -> String {
    match (kind.raw_rows(), kind.capped()) {
        (0, _) => "0".to_owned(),
        (n, true) => format!("≤ {n}: 10,000 a flush"),
        (n, false) => n.to_string(),
    }
}

fn mb(bytes: Option<f64>) -> String {
    bytes.map_or_else(|| "–".to_owned(), |b| format!("{:.1}", b / 1e6))
}

fn report(results: &[BackendResult], plan: Plan, wrk_version: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Key verification and Latchkey's API vs a bare actix-web JSON handler (built in \
         `benches/verify.rs`, two workers, in the bench process), {} keys stored; \
         `wrk -t{WRK_THREADS} -c{} -d{}s --latency` on loopback ({wrk_version}), {} \
         interleaved round(s) after a {WARMUP_SECONDS} s warm-up of each arm; release build, \
         `LATCHKEY_LOG=warn`, usage flushed once a second. wrk and the server share the \
         machine's cores. requests/s and p50: median of the rounds; p99: the worst round. \
         *Log lag*: seconds after a run until the raw log and the rollups stopped changing \
         (worst round); *server CPU µs/request* includes that writing. *CPU-cost ratio* = \
         (server + wrk + database CPU per bare request) ÷ (the same per request of the arm, \
         writing included): the throughput ratio to expect when nothing else runs. *Raw \
         rows* and *rollup counts* per request: what each run added to `request_log` (its \
         newest id) and to the day rollups of all keys, ÷ the requests wrk completed (a \
         run may add up to one more per connection: requests in flight when wrk stopped). \
         Cores columns: average cores busy during the runs (*db*: PostgreSQL backends of \
         the bench database; SQLite works inside the server; *other*: everything else on \
         the machine). *Database growth per million verifications*: size after − before a \
         long run (SQLite: main file + WAL after a TRUNCATE checkpoint, and pages in use per \
         table with its indexes from `dbstat`; PostgreSQL: `pg_database_size`, \
         `pg_total_relation_size`) ÷ the server's VALID count × 10⁶; one key's raw log is \
         capped at its newest 10,000 rows (the retention prunes the rest every 30 s), so the \
         sustained run's raw growth passes, while the spread run's rows stay for 7 days; \
         rollups grow with keys × buckets × outcomes, not with verifications, so a longer \
         run adds fewer rollup bytes per million.\n",
        plan.keys, plan.connections, plan.seconds, plan.rounds
    );
    let _ = writeln!(
        out,
        "| backend | arm | requests/s | × bare | × ping | CPU-cost ratio | p50 ms | p99 ms | raw rows / request (due) | rollup counts / request (due) | log lag s | server CPU µs/request | server cores | wrk cores | db cores | other cores | non-2xx / socket errors | server VmRSS after, MB |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in results {
        let find = |k: Kind| r.scenarios.iter().find(|s| s.kind == k);
        let bare = find(Kind::Bare);
        let bare_rps = bare.map_or(f64::NAN, Scenario::rps);
        let bare_cost = bare.map_or(f64::NAN, Scenario::own_us_per_request);
        let ping_rps = find(Kind::Ping).map_or(f64::NAN, Scenario::rps);
        for s in &r.scenarios {
            let (non2xx, sock) = s.errors();
            let (raw, counted) = s.per_request();
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2}× | {:.2}× | {:.2}× | {:.3} | {:.3} | {raw:.3} ({}) | {counted:.3} ({}) | {:.1} | {:.1} | {:.2} | {:.2} | {} | {:.2} | {non2xx} / {sock} | {:.0} |",
                r.backend,
                s.kind.label(),
                s.rps(),
                s.rps() / bare_rps,
                s.rps() / ping_rps,
                bare_cost / s.own_us_per_request(),
                s.p50(),
                s.p99(),
                expected_raw(s.kind),
                s.kind.counted(),
                s.lag(),
                s.server_us_per_request(),
                s.cores(|r| r.server_cpu),
                s.cores(|r| r.wrk_cpu),
                if r.backend == "SQLite" {
                    "–".to_owned()
                } else {
                    format!("{:.2}", s.cores(|r| r.db_cpu))
                },
                s.cores(|r| r.others_cpu),
                s.runs.last().map_or(f64::NAN, |r| r.rss_after),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nTargets (throughput: median requests/s ÷ the bare handler's, or the ping's for \
         (h)): (a) ≥ {TARGET_VALID_SQLITE}× on SQLite, ≥ {TARGET_VALID_POSTGRES}× on \
         PostgreSQL; (b), (c) ≥ {TARGET_REFUSED}×; (h) ≥ {TARGET_BAD_BEARER_OF_PING}× ping; \
         (i) ≥ {TARGET_GET_KEY}×; p99 < {TARGET_P99_MS} ms for every arm at {} connections; \
         sustained run: rollups of each period = the server's count, within the requests \
         in flight (≤ {}) of wrk's, log lag ≤ {TARGET_LAG_S} s; server VmRSS < \
         {TARGET_RSS_MB} MB.\n",
        plan.connections, plan.connections
    );
    for r in results {
        backend_verdicts(&mut out, r, plan);
    }
    out
}

fn backend_verdicts(out: &mut String, r: &BackendResult, plan: Plan) {
    let find = |k: Kind| r.scenarios.iter().find(|s| s.kind == k);
    let (Some(bare), Some(ping)) = (find(Kind::Bare), find(Kind::Ping)) else {
        return;
    };
    let _ = writeln!(
        out,
        "- {} (seeded in {:.0} s; others' CPU while idle before rounds and runs: {} cores):",
        r.backend,
        r.seed_seconds,
        r.idle_others
            .iter()
            .map(|c| format!("{c:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let valid_target = if r.backend == "SQLite" {
        TARGET_VALID_SQLITE
    } else {
        TARGET_VALID_POSTGRES
    };
    let ratio = |k: Kind, of: &Scenario, target: f64| {
        find(k).map(|s| {
            let x = s.rps() / of.rps();
            let cost = of.own_us_per_request() / s.own_us_per_request();
            format!(
                "{x:.2}× (CPU-cost ratio {cost:.2}×, target {target}×): {}",
                verdict(x >= target)
            )
        })
    };
    for (k, of, name, target) in [
        (Kind::Valid, bare, "bare", valid_target),
        (Kind::Malformed, bare, "bare", TARGET_REFUSED),
        (Kind::Unknown, bare, "bare", TARGET_REFUSED),
        (Kind::BadBearer, ping, "ping", TARGET_BAD_BEARER_OF_PING),
        (Kind::GetKey, bare, "bare", TARGET_GET_KEY),
    ] {
        if let Some(v) = ratio(k, of, target) {
            let _ = writeln!(out, "  - {} ÷ {name}: {v}", k.label());
        }
    }
    // What even the least work reaches here bounds every target above.
    if let Some(floor) = find(Kind::Floor) {
        let of_floor = |k: Kind| {
            find(k).map_or_else(String::new, |s| {
                format!("; {} {:.2}×", k.label(), s.rps() / floor.rps())
            })
        };
        let _ = writeln!(
            out,
            "  - the floor ÷ bare: {:.2}× (CPU-cost ratio {:.2}×); ÷ the floor{}{}{}",
            floor.rps() / bare.rps(),
            bare.own_us_per_request() / floor.own_us_per_request(),
            of_floor(Kind::Valid),
            of_floor(Kind::Malformed),
            of_floor(Kind::Unknown),
        );
    }
    let slow: Vec<String> = r
        .scenarios
        .iter()
        .filter(|s| s.p99() >= TARGET_P99_MS)
        .map(|s| format!("{} {:.2} ms", s.kind.label(), s.p99()))
        .collect();
    let _ = writeln!(
        out,
        "  - p99 < {TARGET_P99_MS} ms for every arm: {}{}",
        verdict(slow.is_empty()),
        if slow.is_empty() {
            String::new()
        } else {
            format!(" ({})", slow.join("; "))
        }
    );
    let unexpected: Vec<&str> = r
        .scenarios
        .iter()
        .filter(|s| !s.answers_as_expected())
        .map(|s| s.kind.label())
        .collect();
    let _ = writeln!(
        out,
        "  - every answer as due (401 for (h), 2xx for the rest, no socket errors): {}{}",
        if unexpected.is_empty() { "yes" } else { "NO" },
        if unexpected.is_empty() {
            String::new()
        } else {
            format!(" (not: {})", unexpected.join("; "))
        }
    );
    let wrong: Vec<&str> = r
        .scenarios
        .iter()
        .filter(|s| !s.writes_as_expected(plan.connections as u64))
        .map(|s| s.kind.label())
        .collect();
    let _ = writeln!(
        out,
        "  - every arm wrote the raw rows and rollup counts due: {}{}",
        if wrong.is_empty() { "yes" } else { "NO" },
        if wrong.is_empty() {
            String::new()
        } else {
            format!(" (not: {})", wrong.join("; "))
        }
    );
    let s = &r.sustained;
    let wrk_n = s.run.requests as i64;
    let equal = s.rollups.iter().all(|n| *n == s.server_count);
    let in_flight = (wrk_n..=wrk_n + plan.connections as i64).contains(&s.server_count);
    let _ = writeln!(
        out,
        "  - sustained (a), {} s at {:.0} req/s: wrk completed {wrk_n}, the server counted {} \
         VALID; the target's VALID rollups grew by {} (minute), {} (hour), {} (day): equal to \
         the server's count: {}; server − wrk = {} (≤ {} in flight): {}; log lag {:.1} s: {}; \
         raw rows +{}",
        plan.sustained,
        s.run.rps,
        s.server_count,
        s.rollups[0],
        s.rollups[1],
        s.rollups[2],
        verdict(equal),
        s.server_count - wrk_n,
        plan.connections,
        verdict(in_flight),
        s.run.lag,
        verdict(s.run.lag <= TARGET_LAG_S),
        s.run.raw_rows,
    );
    let p = &r.spread;
    let p_wrk = p.run.requests as i64;
    let _ = writeln!(
        out,
        "  - spread over {} targets, {} s at {:.0} req/s: wrk completed {p_wrk}, the server \
         counted {} VALID, all keys' VALID day rollups grew by {} ({}), raw rows +{} ({}); \
         server − wrk = {} ({}); log lag {:.1} s ({} s or less: {})",
        r.spread_keys,
        plan.sustained,
        p.run.rps,
        p.server_count,
        p.rollups[2],
        if p.rollups[2] == p.server_count {
            "equal"
        } else {
            "NOT equal"
        },
        p.run.raw_rows,
        if p.run.raw_rows == p.server_count {
            "one per verification"
        } else {
            "NOT one per verification"
        },
        p.server_count - p_wrk,
        verdict((p_wrk..=p_wrk + plan.connections as i64).contains(&p.server_count)),
        p.run.lag,
        TARGET_LAG_S,
        verdict(p.run.lag <= TARGET_LAG_S),
    );
    let spread_name = format!("spread ({} keys)", r.spread_keys);
    for (name, run) in [("sustained (one key)", s), (spread_name.as_str(), p)] {
        let _ = writeln!(
            out,
            "  - database growth per million verifications, {name}: {} MB in all (rollups {} MB, \
             raw log {} MB, tables with their indexes; the file {} → {} MB)",
            mb(run.per_million(|z| Some(z.total))),
            mb(run.per_million(|z| z.rollups)),
            mb(run.per_million(|z| z.raw)),
            mb(Some(run.size_before.total as f64)),
            mb(Some(run.size_after.total as f64)),
        );
    }
    let _ = writeln!(
        out,
        "  - server VmRSS {:.1} MB after start, {:.1} MB after the rounds, {:.1} MB at the end \
         (peak {:.1} MB): {}; {} \"buffer full\" warnings in the server log",
        r.memory_start.0,
        r.memory.0,
        r.memory_end.0,
        r.memory_end.1,
        verdict(r.memory_end.0 < TARGET_RSS_MB),
        r.drop_warnings,
    );
}
