//! Throughput and latency of key verification (`POST /api/v1/keys/verify`) against the
//! plain JSON handler (`GET /api/v1/ping`) of the same server, under `wrk` on loopback.
//!
//! Seeds 100,000 keys into one channel (bulk multi-row INSERTs, like `keys_page.rs`),
//! among them a caller key with the `verify` scope and the key to verify, starts the
//! release `latchkey` binary on the database (`LATCHKEY_LOG=warn`, request log on with
//! its default one-second flush) and runs, per round,
//! `wrk -t2 -c50 -d10s --latency` for:
//!
//! - baseline: `GET /api/v1/ping`,
//! - (a) a valid key,
//! - (b) a malformed key (a generated key with its checksum broken),
//! - (c) a well-formed unknown key,
//! - (d) experiment: (a) with an Off-the-Record caller and target, which leave no
//!   request-log rows (isolates the cost of the request log),
//! - (f) experiment: (b) with an Off-the-Record caller (the same for the malformed path),
//! - (g) experiment: (b) with `Authorization: Basic …` (same size) instead of a bearer
//!   key: refused with 401 before any key work (what a POST of this size costs in HTTP
//!   and middleware alone).
//!
//! Then it reads the server's resident memory (`VmRSS`, `VmHWM` from
//! `/proc/<pid>/status`), counts the request-log rows written, and runs one more
//! experiment: (e) unknown keys that are all different (every request misses the cache
//! and reads the database), after which it reads the memory again.
//!
//! After every run that writes request-log rows the bench waits until they are all in
//! the database (the log is written by a background task once a second and can fall
//! behind), so a scenario never pays for the previous one's backlog; how long that took
//! is reported as the log lag, and the CPU it took is counted against the scenario.
//!
//! Beside every wrk run it records the CPU time used by the server, by wrk, by the
//! PostgreSQL backends of the bench database and by everything else on the machine
//! (from `/proc`), because wrk and the server share the same two cores and other work
//! on the machine skews the numbers.
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
//! Knobs: `LATCHKEY_BENCH_ROUNDS` (default 2), `LATCHKEY_BENCH_SECONDS` (default 10 per
//! wrk run), `LATCHKEY_BENCH_CONNECTIONS` (default 50), `LATCHKEY_BENCH_QUIET_WAIT`
//! (seconds to wait for the machine to go quiet before each round, default 300),
//! `LATCHKEY_BENCH_SKIP_SQLITE=1`, `LATCHKEY_BENCH_NO_EXPERIMENTS=1` (skip (d)–(g)),
//! `LATCHKEY_BENCH_KEEP=1` (keep the PostgreSQL database),
//! `LATCHKEY_BIN` (the server binary to start; default the release build cargo made),
//! `LATCHKEY_BENCH_PERF=DIR` (after the rounds, one more run of each scenario under
//! `perf record --call-graph dwarf`, profiles written to `DIR`; not part of the results).

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Id, KEY_COLUMNS, PgDatabase, Res, Server, XorShift, env_flag, sql_str, sql_time};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use latchkey::db::{self, DbConnection};
use latchkey::domain::key::{KeyFormatError, PlainKey};

const KEYS: usize = 100_000;
const ROWS_PER_INSERT: usize = 1_000;
const WRK_THREADS: usize = 2;
const WARMUP_SECONDS: u64 = 2;
/// Distinct unknown keys for experiment (e): more than one run can use up.
const DISTINCT_UNKNOWN: usize = 400_000;
/// Other processes using more than this many cores count as a noisy machine.
const QUIET_CORES: f64 = 0.3;

const TARGET_VALID_RATIO: f64 = 0.7;
const TARGET_MALFORMED_RATIO: f64 = 0.9;
const TARGET_P99_MS: f64 = 5.0;
const TARGET_RSS_MB: f64 = 150.0;

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
struct Plan {
    rounds: usize,
    seconds: u64,
    connections: usize,
    quiet_wait: u64,
    experiments: bool,
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
            rounds: num("LATCHKEY_BENCH_ROUNDS", 2) as usize,
            seconds: num("LATCHKEY_BENCH_SECONDS", 10),
            connections: num("LATCHKEY_BENCH_CONNECTIONS", 50) as usize,
            quiet_wait: std::env::var("LATCHKEY_BENCH_QUIET_WAIT")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(300),
            experiments: !env_flag("LATCHKEY_BENCH_NO_EXPERIMENTS"),
        }
    }
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
        "verify: {KEYS} keys, {} round(s) of wrk -t{WRK_THREADS} -c{} -d{}s; {wrk_version}; server {}",
        plan.rounds,
        plan.connections,
        plan.seconds,
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
    let ctx = Ctx {
        plan,
        bin,
        work: work.path().to_owned(),
        ticks,
        unknown_file,
        started,
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
    std::fs::write(&out, &report)?;
    println!(
        "written to {} ({:.0} s in all)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Ctx {
    plan: Plan,
    bin: PathBuf,
    work: PathBuf,
    ticks: f64,
    unknown_file: Option<PathBuf>,
    started: Instant,
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
// Databases

/// The keys the measurements use, as plaintext.
struct Seeded {
    caller: String,
    caller_otr: String,
    valid: String,
    valid_otr: String,
    malformed: String,
    unknown: String,
    seconds: f64,
}

/// A key the bench needs to know the plaintext of, stored at row `at`.
struct Special {
    at: usize,
    name: &'static str,
    scopes: &'static str,
    off_the_record: bool,
    plain: String,
}

fn seed(url: &str, label: &str) -> Res<Seeded> {
    let started = Instant::now();
    let pool = db::connect(url, 1)?;
    let mut pooled = pool.get()?;
    let conn: &mut DbConnection = &mut pooled;
    let postgres = matches!(conn, DbConnection::Postgresql(_));
    if postgres {
        conn.batch_execute("SET synchronous_commit = off")?;
    } else {
        conn.batch_execute("PRAGMA synchronous = OFF;")?;
    }
    let now = db::now();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let t = sql_time(now);
    conn.batch_execute(&format!(
        "INSERT INTO channels (name, key_limit, key_count, is_system, created_at, updated_at) \
         VALUES ('bench-verify', 200000, {KEYS}, FALSE, {t}, {t})"
    ))?;
    let channel_id = diesel::sql_query("SELECT id FROM channels WHERE name = 'bench-verify'")
        .get_result::<Id>(conn)?
        .id;

    let special = |at, name, scopes, off_the_record| Special {
        at,
        name,
        scopes,
        off_the_record,
        plain: String::new(),
    };
    // Spread over the table; the caller only needs `verify`, the targets have the
    // scopes of a typical service key.
    let mut specials = [
        special(KEYS / 5, "bench-caller", "verify", false),
        special(2 * KEYS / 5, "bench-caller-otr", "verify", true),
        special(3 * KEYS / 5, "bench-target", "keys:read verify", false),
        special(4 * KEYS / 5, "bench-target-otr", "keys:read verify", true),
    ];
    let start = now - time::Duration::seconds(KEYS as i64 + 60);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut sql = String::new();
    conn.batch_execute("BEGIN")?;
    for i in 0..KEYS {
        let (key, parts) = PlainKey::generate("lk");
        let hash = key.hash();
        let created = start + time::Duration::seconds(i as i64);
        let r = rng.next();
        let spec = specials.iter_mut().find(|s| s.at == i);
        let (name, scopes, cidrs, otr, enabled, expires) = match spec {
            Some(s) => {
                s.plain = key.reveal().to_owned();
                (
                    s.name.to_owned(),
                    s.scopes,
                    "",
                    s.off_the_record,
                    true,
                    None,
                )
            }
            None => {
                let (scopes, cidrs) = match r % 4 {
                    0 => ("keys:read", ""),
                    1 => ("keys:read keys:write", "10.0.0.0/8"),
                    2 => ("verify", "203.0.113.0/24 2001:db8::/32"),
                    _ => ("keys:read verify", ""),
                };
                let expires = match r % 10 {
                    0 => Some(created + time::Duration::days(1)),
                    1 | 2 => Some(created + time::Duration::days(365)),
                    _ => None,
                };
                (
                    format!("svc-{i:06}"),
                    scopes,
                    cidrs,
                    r % 11 == 0,
                    r % 20 != 0,
                    expires,
                )
            }
        };
        let (last_used, last_ip, order) = if r % 5 < 3 {
            let age = (now - created).whole_seconds().max(1) as u64;
            let used = created + time::Duration::seconds((rng.next() % age) as i64);
            let micros = used.assume_utc().unix_timestamp() * 1_000_000;
            (sql_time(used), "'198.51.100.7'", micros)
        } else {
            ("NULL".into(), "NULL", 0)
        };
        if sql.is_empty() {
            sql = format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ");
        } else {
            sql.push(',');
        }
        let _ = write!(
            sql,
            "({channel_id},{},{},{},'lk',{},{},NULL,{},{},NULL,{},{},{},{},'admin',{},{last_used},{last_ip},{order})",
            sql_str(&parts.key_id),
            sql_str(hash.as_str()),
            sql_str(&parts.last_four),
            sql_str(&name),
            sql_str(&name.to_lowercase()),
            sql_str(scopes),
            sql_str(cidrs),
            if otr { "TRUE" } else { "FALSE" },
            if enabled { "TRUE" } else { "FALSE" },
            expires.map_or_else(|| "NULL".to_owned(), sql_time),
            sql_time(created),
            sql_time(created),
        );
        if (i + 1) % ROWS_PER_INSERT == 0 || i + 1 == KEYS {
            sql.push(';');
            conn.batch_execute(&sql)?;
            sql.clear();
        }
    }
    conn.batch_execute("COMMIT")?;
    let stored = diesel::sql_query("SELECT COUNT(*) AS id FROM api_keys").get_result::<Id>(conn)?;
    if stored.id != KEYS as i64 {
        return Err(format!("{} keys stored, expected {KEYS}", stored.id).into());
    }
    if postgres {
        // VACUUM cannot share a multi-statement batch (an implicit transaction).
        conn.batch_execute("VACUUM (ANALYZE) api_keys")?;
        conn.batch_execute("ANALYZE")?;
    } else {
        conn.batch_execute("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    let [caller, caller_otr, valid, valid_otr] = specials.map(|s| s.plain);

    // A generated key with one checksum character changed: refused by its shape.
    let mut malformed = PlainKey::generate("lk").0.reveal().to_owned();
    let last = malformed.pop().ok_or("empty key")?;
    malformed.push(if last == 'A' { 'B' } else { 'A' });
    if !matches!(PlainKey::parse(&malformed), Err(KeyFormatError::Checksum)) {
        return Err("the malformed key does not fail on its checksum".into());
    }
    let unknown = PlainKey::generate("lk").0.reveal().to_owned();
    let seconds = started.elapsed().as_secs_f64();
    println!("  {label}: {KEYS} keys seeded in {seconds:.0} s");
    Ok(Seeded {
        caller,
        caller_otr,
        valid,
        valid_otr,
        malformed,
        unknown,
        seconds,
    })
}

fn count_request_log(url: &str) -> Res<i64> {
    let pool = db::connect(url, 1)?;
    let mut pooled = pool.get()?;
    let conn: &mut DbConnection = &mut pooled;
    Ok(diesel::sql_query("SELECT COUNT(*) AS id FROM request_log")
        .get_result::<Id>(conn)?
        .id)
}

/// Waits until the server has written the request log of the last run: the newest
/// row id stops moving and the server and database go idle. Returns the seconds that
/// took (counted to the last new row) and the server and database CPU seconds used.
fn drain(ctx: &Ctx, watch: &Watch) -> Res<(f64, f64, f64)> {
    let pool = db::connect(&watch.url, 1)?;
    let mut pooled = pool.get()?;
    let conn: &mut DbConnection = &mut pooled;
    let mut newest = || -> Res<i64> {
        Ok(
            diesel::sql_query("SELECT COALESCE(MAX(id), 0) AS id FROM request_log")
                .get_result::<Id>(conn)?
                .id,
        )
    };
    let busy = || process_jiffies(watch.server) + watch.db_jiffies();
    let t0 = Instant::now();
    let (server0, db0) = (process_jiffies(watch.server), watch.db_jiffies());
    let cpu0 = server0 + db0;
    let mut last = newest()?;
    let mut last_change = t0;
    let mut window = (t0, cpu0);
    while t0.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(250));
        let now = Instant::now();
        let id = newest()?;
        if id != last {
            last = id;
            last_change = now;
        }
        let span = now.duration_since(window.0).as_secs_f64();
        if span >= 1.5 {
            let cpu = busy();
            let cores = cpu.saturating_sub(window.1) as f64 / ctx.ticks / span;
            if cores < 0.05 && now.duration_since(last_change).as_secs_f64() >= 1.5 {
                break;
            }
            window = (now, cpu);
        }
    }
    let server = process_jiffies(watch.server).saturating_sub(server0) as f64 / ctx.ticks;
    let db = watch.db_jiffies().saturating_sub(db0) as f64 / ctx.ticks;
    Ok((last_change.duration_since(t0).as_secs_f64(), server, db))
}

// ---------------------------------------------------------------------------------
// The server

/// Resident memory now and at its peak, in MB (from `/proc/<pid>/status`).
fn memory_mb(pid: u32) -> Res<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Res<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))?;
        let kb: f64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

// ---------------------------------------------------------------------------------
// CPU accounting from /proc

/// Busy and total jiffies of the whole machine.
fn machine_jiffies() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    (busy, busy + get(3) + get(4))
}

/// User + system jiffies of one process (0 once it is gone).
fn process_jiffies(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: field 3 (state) is f[0]; utime is field 14, stime 15.
    let get = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// The processes whose CPU time is ours: the server and, on PostgreSQL, the backends
/// serving the bench database (found by the database name in their process title).
struct Watch {
    server: u32,
    db: Option<String>,
    url: String,
}

impl Watch {
    fn db_jiffies(&self) -> u64 {
        let Some(db) = &self.db else { return 0 };
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0;
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.windows(db.len()).any(|w| w == db.as_bytes()))
            })
            .map(process_jiffies)
            .sum()
    }
}

/// Waits until processes other than ours use less than [`QUIET_CORES`] (measured over
/// two seconds while the server idles), at most `max_wait` seconds. Returns the cores
/// others used in the last measurement.
fn wait_for_quiet(ticks: f64, watch: &Watch, max_wait: u64) -> f64 {
    let started = Instant::now();
    loop {
        let (b0, _) = machine_jiffies();
        let s0 = process_jiffies(watch.server) + watch.db_jiffies();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(2));
        let (b1, _) = machine_jiffies();
        let s1 = process_jiffies(watch.server) + watch.db_jiffies();
        let others =
            ((b1 - b0).saturating_sub(s1 - s0)) as f64 / ticks / t0.elapsed().as_secs_f64();
        if others < QUIET_CORES || started.elapsed().as_secs() >= max_wait {
            if others >= QUIET_CORES {
                println!(
                    "  the machine is still busy ({others:.2} cores used by others): measuring anyway"
                );
            }
            return others;
        }
        println!("  waiting for a quiet machine: others use {others:.2} cores");
        std::thread::sleep(Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------------------------
// wrk

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Baseline,
    Valid,
    Malformed,
    Unknown,
    ValidOffTheRecord,
    MalformedOffTheRecord,
    NoAuth,
    DistinctUnknown,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Baseline => "baseline: GET /api/v1/ping",
            Kind::Valid => "(a) valid key",
            Kind::Malformed => "(b) malformed key (bad checksum)",
            Kind::Unknown => "(c) well-formed unknown key",
            Kind::ValidOffTheRecord => "(d) experiment: (a) with Off-the-Record caller + target",
            Kind::MalformedOffTheRecord => "(f) experiment: (b) with an Off-the-Record caller",
            Kind::NoAuth => "(g) experiment: (b) with no bearer key (401, no key work)",
            Kind::DistinctUnknown => "(e) experiment: unknown keys, all different (cache misses)",
        }
    }

    /// Request-log rows one request of this kind writes: the verified key (for a found
    /// key) and the caller (the `/api/v1` middleware records every authenticated call).
    fn log_rows(self) -> u64 {
        match self {
            Kind::Baseline
            | Kind::ValidOffTheRecord
            | Kind::MalformedOffTheRecord
            | Kind::NoAuth => 0,
            Kind::Valid => 2,
            Kind::Malformed | Kind::Unknown | Kind::DistinctUnknown => 1,
        }
    }
}

/// One wrk run.
#[derive(Clone, Copy, Default)]
struct WrkRun {
    rps: f64,
    requests: u64,
    p50: f64,
    p99: f64,
    non2xx: u64,
    socket_errors: u64,
    wall: f64,
    server_cpu: f64,
    wrk_cpu: f64,
    /// PostgreSQL backends serving the bench database (SQLite runs inside the server).
    db_cpu: f64,
    others_cpu: f64,
    /// The server's VmRSS right after the run, in MB.
    rss_after: f64,
    /// Seconds after the run until its request-log rows were all written.
    lag: f64,
    /// Server and database CPU seconds spent in that time (writing the log).
    drain_server_cpu: f64,
    drain_db_cpu: f64,
}

struct Scenario {
    kind: Kind,
    url: String,
    script: Option<PathBuf>,
    runs: Vec<WrkRun>,
}

impl Scenario {
    fn mean(&self, f: impl Fn(&WrkRun) -> f64) -> f64 {
        self.runs.iter().map(f).sum::<f64>() / self.runs.len().max(1) as f64
    }

    fn rps(&self) -> f64 {
        self.mean(|r| r.rps)
    }

    fn p50(&self) -> f64 {
        self.mean(|r| r.p50)
    }

    /// The worst round's p99.
    fn p99(&self) -> f64 {
        self.runs.iter().map(|r| r.p99).fold(0.0, f64::max)
    }

    fn requests(&self) -> u64 {
        self.runs.iter().map(|r| r.requests).sum()
    }

    fn us_per_request(&self, f: impl Fn(&WrkRun) -> f64) -> f64 {
        let cpu: f64 = self.runs.iter().map(f).sum();
        cpu * 1e6 / self.requests().max(1) as f64
    }

    /// Server CPU per request, including the writing of its request-log rows after
    /// the run (SQLite writes inside the server; on PostgreSQL most of it is the
    /// database's work).
    fn server_us_per_request(&self) -> f64 {
        self.us_per_request(|r| r.server_cpu + r.drain_server_cpu)
    }

    fn lag(&self) -> f64 {
        self.runs.iter().map(|r| r.lag).fold(0.0, f64::max)
    }

    /// CPU per request of everything the measurement itself runs: server, wrk and the
    /// database backends. On a machine of its own that is CPU-bound, requests/s is
    /// about (cores) ÷ this, so ratios of it estimate the throughput ratio free of the
    /// noise of other work on the machine.
    fn own_us_per_request(&self) -> f64 {
        self.us_per_request(|r| {
            r.server_cpu + r.wrk_cpu + r.db_cpu + r.drain_server_cpu + r.drain_db_cpu
        })
    }

    fn cores(&self, f: impl Fn(&WrkRun) -> f64) -> f64 {
        let wall: f64 = self.runs.iter().map(|r| r.wall).sum();
        self.runs.iter().map(f).sum::<f64>() / wall.max(1e-9)
    }

    fn errors(&self) -> (u64, u64) {
        (
            self.runs.iter().map(|r| r.non2xx).sum(),
            self.runs.iter().map(|r| r.socket_errors).sum(),
        )
    }
}

fn post_script(dir: &Path, name: &str, caller: &str, key: &str) -> Res<PathBuf> {
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(
        &path,
        format!(
            "wrk.method = \"POST\"\n\
             wrk.body = '{{\"key\":\"{key}\"}}'\n\
             wrk.headers[\"Authorization\"] = \"Bearer {caller}\"\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )?;
    Ok(path)
}

/// Every request a different key from `keys_file`; thread `n` takes lines n, n+T, ...
fn distinct_script(dir: &Path, caller: &str, keys_file: &Path) -> Res<PathBuf> {
    let path = dir.join("distinct-unknown.lua");
    let file = keys_file.display().to_string().replace('\\', "\\\\");
    std::fs::write(
        &path,
        format!(
            "wrk.method = \"POST\"\n\
             wrk.headers[\"Authorization\"] = \"Bearer {caller}\"\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             local started = 0\n\
             function setup(thread)\n  thread:set(\"tid\", started)\n  started = started + 1\nend\n\
             function init(args)\n  keys = {{}}\n  for line in io.lines(\"{file}\") do keys[#keys + 1] = line end\n  \
             step = {WRK_THREADS}\n  i = tid + 1 - step\nend\n\
             function request()\n  i = i + step\n  if i > #keys then i = tid + 1 end\n  \
             return wrk.format(nil, nil, nil, '{{\"key\":\"' .. keys[i] .. '\"}}')\nend\n"
        ),
    )?;
    Ok(path)
}

/// `318.00us`, `1.23ms`, `2.00s` in milliseconds.
fn parse_duration_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> Res<WrkRun> {
    let mut run = WrkRun::default();
    let mut have = (false, false, false);
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            run.rps = v.trim().parse()?;
            have.0 = true;
        } else if let Some(v) = t.strip_prefix("50%") {
            run.p50 = parse_duration_ms(v).ok_or("bad 50% line")?;
            have.1 = true;
        } else if let Some(v) = t.strip_prefix("99%") {
            run.p99 = parse_duration_ms(v).ok_or("bad 99% line")?;
            have.2 = true;
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            run.non2xx = v.trim().parse()?;
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // connect 0, read 0, write 0, timeout 0
            run.socket_errors = v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if t.contains(" requests in ") {
            run.requests = t.split_whitespace().next().unwrap_or("0").parse()?;
        }
    }
    if have != (true, true, true) {
        return Err(format!("unexpected wrk output:\n{out}").into());
    }
    Ok(run)
}

fn wrk(ctx: &Ctx, watch: &Watch, s: &Scenario, seconds: u64) -> Res<WrkRun> {
    let server_pid = watch.server;
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{}", ctx.plan.connections))
        .arg(format!("-d{seconds}s"))
        .arg("--latency");
    if let Some(script) = &s.script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(&s.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (busy0, _) = machine_jiffies();
    let server0 = process_jiffies(server_pid);
    let db0 = watch.db_jiffies();
    let t0 = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id();
    // wrk's own CPU, sampled until it exits (misses at most the last 50 ms).
    let mut wrk_jiffies = 0;
    while child.try_wait()?.is_none() {
        wrk_jiffies = wrk_jiffies.max(process_jiffies(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = t0.elapsed().as_secs_f64();
    let (busy1, _) = machine_jiffies();
    let server1 = process_jiffies(server_pid);
    let db1 = watch.db_jiffies();
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut run = parse_wrk(&stdout)?;
    run.wall = wall;
    run.server_cpu = (server1 - server0) as f64 / ctx.ticks;
    run.wrk_cpu = wrk_jiffies as f64 / ctx.ticks;
    run.db_cpu = db1.saturating_sub(db0) as f64 / ctx.ticks;
    run.others_cpu =
        ((busy1 - busy0) as f64 / ctx.ticks - run.server_cpu - run.wrk_cpu - run.db_cpu).max(0.0);
    run.rss_after = memory_mb(server_pid).map_or(f64::NAN, |m| m.0);
    if s.kind.log_rows() > 0 {
        (run.lag, run.drain_server_cpu, run.drain_db_cpu) = drain(ctx, watch)?;
    }
    Ok(run)
}

// ---------------------------------------------------------------------------------
// One backend

struct BackendResult {
    backend: &'static str,
    seed_seconds: f64,
    scenarios: Vec<Scenario>,
    /// VmRSS, VmHWM before any load; after the core scenarios; after experiment (e).
    memory_start: (f64, f64),
    memory: (f64, f64),
    memory_after_e: Option<(f64, f64)>,
    log_rows: i64,
    log_rows_expected: u64,
    /// Seconds the request log needed after the last run to be fully written.
    drain_seconds: f64,
    /// "request log buffer full: oldest entries dropped" lines in the server log.
    drop_warnings: usize,
    idle_others: Vec<f64>,
}

/// Checks one response by hand before loading the server with it.
async fn check_response(
    client: &reqwest::Client,
    base: &str,
    caller: &str,
    key: Option<&str>,
    expect: &str,
) -> Res<()> {
    let res = match key {
        None => client.get(format!("{base}/api/v1/ping")).send().await?,
        Some(k) => {
            client
                .post(format!("{base}/api/v1/keys/verify"))
                .bearer_auth(caller)
                .json(&serde_json::json!({ "key": k }))
                .send()
                .await?
        }
    };
    let status = res.status();
    let body = res.text().await?;
    if status != reqwest::StatusCode::OK || !body.contains(expect) {
        return Err(format!("expected 200 with {expect}, got {status}: {body}").into());
    }
    Ok(())
}

fn bench_backend(backend: &'static str, url: &str, ctx: &Ctx) -> Res<BackendResult> {
    println!(
        "{backend}: seeding ({:.0} s since start)",
        ctx.started.elapsed().as_secs_f64()
    );
    let seeded = seed(url, backend)?;
    let server = Server::start(&ctx.bin, url)?;
    let result = measure_backend(backend, url, ctx, &seeded, &server);
    if result.is_err() {
        eprintln!("server log:\n{}", server.log());
    }
    result
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
        url: url.to_owned(),
    };
    println!(
        "{backend}: server pid {pid} on {base}; measuring ({:.0} s since start)",
        ctx.started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let c = &seeded.caller;
        check_response(&client, &base, c, None, "\"ok\":true").await?;
        check_response(&client, &base, c, Some(&seeded.valid), "\"code\":\"VALID\"").await?;
        check_response(
            &client,
            &base,
            &seeded.caller_otr,
            Some(&seeded.valid_otr),
            "\"code\":\"VALID\"",
        )
        .await?;
        check_response(
            &client,
            &base,
            c,
            Some(&seeded.malformed),
            "\"code\":\"MALFORMED\"",
        )
        .await?;
        check_response(
            &client,
            &base,
            c,
            Some(&seeded.unknown),
            "\"code\":\"NOT_FOUND\"",
        )
        .await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    let memory_start = memory_mb(pid)?;
    // 4 checks above that write request-log rows: 2 + 0 + 1 + 1.
    let mut expected_rows: u64 = 4;

    let dir = ctx.work.join(backend.to_lowercase());
    std::fs::create_dir_all(&dir)?;
    let verify_url = format!("{base}/api/v1/keys/verify");
    let scenario = |kind, script: Option<PathBuf>| Scenario {
        kind,
        url: if kind == Kind::Baseline {
            format!("{base}/api/v1/ping")
        } else {
            verify_url.clone()
        },
        script,
        runs: Vec::new(),
    };
    let mut core = vec![
        scenario(Kind::Baseline, None),
        scenario(
            Kind::Valid,
            Some(post_script(&dir, "valid", &seeded.caller, &seeded.valid)?),
        ),
        scenario(
            Kind::Malformed,
            Some(post_script(
                &dir,
                "malformed",
                &seeded.caller,
                &seeded.malformed,
            )?),
        ),
        scenario(
            Kind::Unknown,
            Some(post_script(
                &dir,
                "unknown",
                &seeded.caller,
                &seeded.unknown,
            )?),
        ),
    ];
    if ctx.plan.experiments {
        core.push(scenario(
            Kind::ValidOffTheRecord,
            Some(post_script(
                &dir,
                "valid-otr",
                &seeded.caller_otr,
                &seeded.valid_otr,
            )?),
        ));
        core.push(scenario(
            Kind::MalformedOffTheRecord,
            Some(post_script(
                &dir,
                "malformed-otr",
                &seeded.caller_otr,
                &seeded.malformed,
            )?),
        ));
        let no_auth = dir.join("no-auth.lua");
        std::fs::write(
            &no_auth,
            format!(
                "wrk.method = \"POST\"\n\
                 wrk.body = '{{\"key\":\"{key}\"}}'\n\
                 wrk.headers[\"Authorization\"] = \"Basic {key}\"\n\
                 wrk.headers[\"Content-Type\"] = \"application/json\"\n",
                key = seeded.malformed
            ),
        )?;
        core.push(scenario(Kind::NoAuth, Some(no_auth)));
    }
    let mut idle_others = Vec::new();
    idle_others.push(wait_for_quiet(ctx.ticks, &watch, ctx.plan.quiet_wait));
    for s in &core {
        let warm = wrk(ctx, &watch, s, WARMUP_SECONDS)?;
        expected_rows += warm.requests * s.kind.log_rows();
    }
    for round in 0..ctx.plan.rounds {
        if round > 0 {
            idle_others.push(wait_for_quiet(ctx.ticks, &watch, ctx.plan.quiet_wait));
        }
        for s in &mut core {
            let run = wrk(ctx, &watch, s, ctx.plan.seconds)?;
            expected_rows += run.requests * s.kind.log_rows();
            println!(
                "  round {}: {:<58} {:>9.0} req/s  p50 {:>6.3} ms  p99 {:>6.3} ms  server {:.2} cores, wrk {:.2}, others {:.2}, VmRSS {:.0} MB, log lag {:.1} s{}",
                round + 1,
                s.kind.label(),
                run.rps,
                run.p50,
                run.p99,
                run.server_cpu / run.wall,
                run.wrk_cpu / run.wall,
                run.others_cpu / run.wall,
                run.rss_after,
                run.lag,
                if run.non2xx + run.socket_errors > 0 {
                    format!(
                        "  ({} non-2xx, {} socket errors)",
                        run.non2xx, run.socket_errors
                    )
                } else {
                    String::new()
                }
            );
            s.runs.push(run);
        }
    }
    if let Ok(perf_dir) = std::env::var("LATCHKEY_BENCH_PERF") {
        // Profiles, outside the measured rounds (perf slows the server down).
        std::fs::create_dir_all(&perf_dir)?;
        for s in &core {
            let data =
                Path::new(&perf_dir).join(format!("{}-{:?}.data", backend.to_lowercase(), s.kind));
            let mut perf = Command::new("perf")
                // No frame pointers in the release build: unwind with DWARF (.eh_frame).
                .args(["record", "-F", "199", "--call-graph", "dwarf,8192", "-o"])
                .arg(&data)
                .arg("-p")
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            std::thread::sleep(Duration::from_millis(500));
            let run = wrk(ctx, &watch, s, ctx.plan.seconds)?;
            expected_rows += run.requests * s.kind.log_rows();
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
    }
    // Let the request log drain (flushed once a second): wait until the row count
    // stops moving, then look at the server.
    let drain = Instant::now();
    // A big batch commits at once, so "unchanged" must hold twice in a row.
    let mut log_rows = count_request_log(url)?;
    let mut last_change = Instant::now();
    let mut unchanged = 0;
    while unchanged < 2 && drain.elapsed() < Duration::from_secs(180) {
        std::thread::sleep(Duration::from_millis(2000));
        let now = count_request_log(url)?;
        if now == log_rows {
            unchanged += 1;
        } else {
            unchanged = 0;
            log_rows = now;
            last_change = Instant::now();
        }
    }
    let drain_seconds = last_change.duration_since(drain).as_secs_f64();
    let memory = memory_mb(pid)?;
    // `usage.rs` drops the oldest 10 % of its 500,000-row buffer when it is full.
    let drop_warnings = server.log().matches("oldest entries dropped").count();
    println!(
        "  {backend}: VmRSS {:.1} MB (peak {:.1} MB); request_log has {log_rows} rows, ~{expected_rows} expected \
         (drained {drain_seconds:.1} s after the last run; {drop_warnings} 'buffer full' warnings)",
        memory.0, memory.1
    );

    let mut memory_after_e = None;
    if let Some(file) = &ctx.unknown_file {
        let mut s = scenario(
            Kind::DistinctUnknown,
            Some(distinct_script(&dir, &seeded.caller, file)?),
        );
        idle_others.push(wait_for_quiet(ctx.ticks, &watch, ctx.plan.quiet_wait));
        let run = wrk(ctx, &watch, &s, ctx.plan.seconds)?;
        println!(
            "  {:<67} {:>9.0} req/s  p50 {:>6.3} ms  p99 {:>6.3} ms  server {:.2} cores, wrk {:.2}, others {:.2}, VmRSS {:.0} MB{}",
            s.kind.label(),
            run.rps,
            run.p50,
            run.p99,
            run.server_cpu / run.wall,
            run.wrk_cpu / run.wall,
            run.others_cpu / run.wall,
            run.rss_after,
            if run.requests as usize > DISTINCT_UNKNOWN {
                " (the key list wrapped: some keys repeated)"
            } else {
                ""
            }
        );
        s.runs.push(run);
        core.push(s);
        std::thread::sleep(Duration::from_millis(1500));
        let m = memory_mb(pid)?;
        println!(
            "  {backend}: after (e) VmRSS {:.1} MB (peak {:.1} MB)",
            m.0, m.1
        );
        memory_after_e = Some(m);
    }
    Ok(BackendResult {
        backend,
        seed_seconds: seeded.seconds,
        scenarios: core,
        memory_start,
        memory,
        memory_after_e,
        log_rows,
        log_rows_expected: expected_rows,
        drain_seconds,
        drop_warnings,
        idle_others,
    })
}

// ---------------------------------------------------------------------------------
// Report

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn report(results: &[BackendResult], plan: Plan, wrk_version: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Key verification vs the plain JSON handler, {KEYS} keys stored; \
         `wrk -t{WRK_THREADS} -c{} -d{}s --latency` on loopback ({wrk_version}), \
         {} round(s) per scenario after a {WARMUP_SECONDS} s warm-up each; release build, \
         `LATCHKEY_LOG=warn`, request log on (default 1 s flush). wrk and the server share \
         the machine's cores. requests/s and p50 are the mean over rounds, p99 the worst \
         round. After every run the bench waits until the run's request-log rows are all \
         written (*log lag*: seconds that took after the run ended, worst round), so no \
         scenario pays for the previous one's backlog; *server CPU µs/request* includes \
         that writing. *CPU-cost ratio* = (server + wrk + database CPU per baseline \
         request) ÷ (the same per request of the scenario, log writing included): the \
         throughput ratio to expect when the log writer keeps up and nothing else runs. \
         Cores columns: average cores busy during the runs (*db*: PostgreSQL backends of \
         the bench database; SQLite works inside the server; *other*: everything else on \
         the machine).\n",
        plan.connections, plan.seconds, plan.rounds
    );
    let _ = writeln!(
        out,
        "| backend | scenario | requests/s | ÷ baseline | CPU-cost ratio | p50 ms | p99 ms | server CPU µs/request | log lag s | server cores | wrk cores | db cores | other cores | non-2xx / socket errors | server VmRSS after, MB |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in results {
        let base = r.scenarios.iter().find(|s| s.kind == Kind::Baseline);
        let base_rps = base.map_or(f64::NAN, Scenario::rps);
        let base_cost = base.map_or(f64::NAN, Scenario::own_us_per_request);
        for s in &r.scenarios {
            let (non2xx, sock) = s.errors();
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2}× | {:.2}× | {:.3} | {:.3} | {:.1} | {:.1} | {:.2} | {:.2} | {} | {:.2} | {non2xx} / {sock} | {:.0} |",
                r.backend,
                s.kind.label(),
                s.rps(),
                s.rps() / base_rps,
                base_cost / s.own_us_per_request(),
                s.p50(),
                s.p99(),
                s.server_us_per_request(),
                s.lag(),
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
        "\nTargets: (a) ≥ {TARGET_VALID_RATIO}× baseline requests/s; (b) ≥ {TARGET_MALFORMED_RATIO}×; \
         p99 < {TARGET_P99_MS} ms for (a), (b), (c) at {} connections; server VmRSS < {TARGET_RSS_MB} MB \
         after the runs.\n",
        plan.connections
    );
    for r in results {
        let find = |k: Kind| r.scenarios.iter().find(|s| s.kind == k);
        let (Some(base), Some(a), Some(b), Some(c)) = (
            find(Kind::Baseline),
            find(Kind::Valid),
            find(Kind::Malformed),
            find(Kind::Unknown),
        ) else {
            continue;
        };
        let ra = a.rps() / base.rps();
        let rb = b.rps() / base.rps();
        let ca = base.own_us_per_request() / a.own_us_per_request();
        let cb = base.own_us_per_request() / b.own_us_per_request();
        let _ = writeln!(
            out,
            "- {} (seeded in {:.0} s; others' CPU while idle before rounds: {} cores):",
            r.backend,
            r.seed_seconds,
            r.idle_others
                .iter()
                .map(|c| format!("{c:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "  - (a) valid {ra:.2}× baseline (CPU-cost ratio {ca:.2}×): {}; (b) malformed {rb:.2}× \
             (CPU-cost ratio {cb:.2}×): {}",
            verdict(ra >= TARGET_VALID_RATIO),
            verdict(rb >= TARGET_MALFORMED_RATIO),
        );
        let _ = writeln!(
            out,
            "  - p99 (a) {:.2} ms {}, (b) {:.2} ms {}, (c) {:.2} ms {} (baseline p99 {:.2} ms)",
            a.p99(),
            verdict(a.p99() < TARGET_P99_MS),
            b.p99(),
            verdict(b.p99() < TARGET_P99_MS),
            c.p99(),
            verdict(c.p99() < TARGET_P99_MS),
            base.p99(),
        );
        let _ = writeln!(
            out,
            "  - VmRSS after the runs {:.1} MB (peak {:.1} MB; {:.1} MB after start): {}",
            r.memory.0,
            r.memory.1,
            r.memory_start.0,
            verdict(r.memory.0 < TARGET_RSS_MB),
        );
        if let Some(m) = r.memory_after_e {
            let _ = writeln!(
                out,
                "  - VmRSS after experiment (e) {:.1} MB (peak {:.1} MB)",
                m.0, m.1
            );
        }
        let _ = writeln!(
            out,
            "  - request_log rows written: {} (≈{} expected from wrk's completed requests); \
             fully written {:.1} s after the last run; {} \"buffer full\" warnings in the \
             server log (each drops 50,000 rows)",
            r.log_rows, r.log_rows_expected, r.drain_seconds, r.drop_warnings
        );
    }
    out
}
