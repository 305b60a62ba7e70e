//! The verify bench's load: the arms, `wrk` runs with the CPU time of everyone
//! involved (from `/proc`), and the wait for what a run leaves to be written.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Ctx;
use crate::common::{Res, memory_mb};
use crate::seed::{Probe, Written};

pub const WRK_THREADS: usize = 2;
/// Other processes using more than this many cores count as a noisy machine.
const QUIET_CORES: f64 = 0.3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Bare,
    /// `common::bare`'s floor sent (a)'s request.
    Floor,
    Ping,
    Valid,
    Malformed,
    Unknown,
    BadBearer,
    GetKey,
    ValidOffTheRecord,
    DistinctUnknown,
    /// (a) at full load for the sustained run.
    Sustained,
    /// Valid verifications round-robin over the spread targets.
    Spread,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Bare => "bare actix-web JSON handler (reference)",
            Kind::Floor => "floor: (a)'s least work in a bare handler",
            Kind::Ping => "GET /api/v1/ping (all middleware)",
            Kind::Valid => "(a) verify, valid key",
            Kind::Malformed => "(b) verify, malformed key (bad checksum)",
            Kind::Unknown => "(c) verify, well-formed unknown key",
            Kind::BadBearer => "(h) API call with a bad bearer (401)",
            Kind::GetKey => "(i) GET /api/v1/keys/{key_id}, keys:read key",
            Kind::ValidOffTheRecord => "(d) experiment: (a) with an Off-the-Record target",
            Kind::DistinctUnknown => "(e) experiment: unknown keys, all different",
            Kind::Sustained => "sustained (a)",
            Kind::Spread => "(a) round-robin over the spread targets",
        }
    }

    /// Raw request-log rows one request writes: one per verification of a key on the
    /// record (none for the caller's own request), one per API call made with a key,
    /// none for anything refused before a key is known. A flush keeps at most a key's
    /// newest `LATCHKEY_REQUEST_LOG_PER_KEY` (10,000) rows, so a single key verified
    /// faster than that per second gets fewer.
    pub fn raw_rows(self) -> u64 {
        match self {
            Kind::Valid | Kind::GetKey | Kind::Sustained | Kind::Spread => 1,
            _ => 0,
        }
    }

    /// Rollup counts one request adds (day period, all keys): a verification counts
    /// the verified key's code (or MALFORMED / NOT_FOUND under key 0) and the caller's
    /// request (API_2XX); a bad bearer counts UNAUTHENTICATED under key 0.
    pub fn counted(self) -> u64 {
        match self {
            Kind::Bare | Kind::Floor | Kind::Ping => 0,
            Kind::BadBearer | Kind::GetKey => 1,
            _ => 2,
        }
    }

    /// Whether the arm's server is this process (the references).
    pub fn in_bench_process(self) -> bool {
        matches!(self, Kind::Bare | Kind::Floor)
    }

    /// Whether wrk should see errors (non-2xx) only.
    pub fn refused(self) -> bool {
        self == Kind::BadBearer
    }

    /// Whether the rows a flush writes for this arm are capped (one key, fast).
    pub fn capped(self) -> bool {
        matches!(self, Kind::Valid | Kind::Sustained | Kind::GetKey)
    }
}

/// One wrk run.
#[derive(Clone, Copy, Default)]
pub struct WrkRun {
    pub rps: f64,
    pub requests: u64,
    pub p50: f64,
    pub p99: f64,
    pub non2xx: u64,
    pub socket_errors: u64,
    pub wall: f64,
    pub server_cpu: f64,
    pub wrk_cpu: f64,
    /// PostgreSQL backends serving the bench database (SQLite runs inside the server).
    pub db_cpu: f64,
    pub others_cpu: f64,
    /// The server's VmRSS right after the run, in MB.
    pub rss_after: f64,
    /// Seconds after the run until the raw log and the rollups stopped changing.
    pub lag: f64,
    /// Server and database CPU seconds spent in that time (writing them).
    pub drain_server_cpu: f64,
    pub drain_db_cpu: f64,
    /// Raw rows and rollup counts the run added.
    pub raw_rows: i64,
    pub counted: i64,
}

pub struct Scenario {
    pub kind: Kind,
    pub url: String,
    pub script: Option<PathBuf>,
    pub runs: Vec<WrkRun>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Scenario {
    pub fn new(kind: Kind, url: String, script: Option<PathBuf>) -> Self {
        Scenario {
            kind,
            url,
            script,
            runs: Vec::new(),
        }
    }

    /// The median round.
    pub fn rps(&self) -> f64 {
        median(self.runs.iter().map(|r| r.rps).collect())
    }

    pub fn p50(&self) -> f64 {
        median(self.runs.iter().map(|r| r.p50).collect())
    }

    /// The worst round's p99.
    pub fn p99(&self) -> f64 {
        self.runs.iter().map(|r| r.p99).fold(0.0, f64::max)
    }

    pub fn requests(&self) -> u64 {
        self.runs.iter().map(|r| r.requests).sum()
    }

    fn us_per_request(&self, f: impl Fn(&WrkRun) -> f64) -> f64 {
        let cpu: f64 = self.runs.iter().map(f).sum();
        cpu * 1e6 / self.requests().max(1) as f64
    }

    /// Server CPU per request, including the writing of what it recorded after the
    /// run (SQLite writes inside the server; on PostgreSQL much of it is the database's).
    pub fn server_us_per_request(&self) -> f64 {
        self.us_per_request(|r| r.server_cpu + r.drain_server_cpu)
    }

    pub fn lag(&self) -> f64 {
        self.runs.iter().map(|r| r.lag).fold(0.0, f64::max)
    }

    /// CPU per request of everything the measurement itself runs: server, wrk and the
    /// database backends. On a machine of its own that is CPU-bound, requests/s is
    /// about (cores) ÷ this, so ratios of it estimate the throughput ratio free of the
    /// noise of other work on the machine.
    pub fn own_us_per_request(&self) -> f64 {
        self.us_per_request(|r| {
            r.server_cpu + r.wrk_cpu + r.db_cpu + r.drain_server_cpu + r.drain_db_cpu
        })
    }

    pub fn cores(&self, f: impl Fn(&WrkRun) -> f64) -> f64 {
        let wall: f64 = self.runs.iter().map(|r| r.wall).sum();
        self.runs.iter().map(f).sum::<f64>() / wall.max(1e-9)
    }

    pub fn errors(&self) -> (u64, u64) {
        (
            self.runs.iter().map(|r| r.non2xx).sum(),
            self.runs.iter().map(|r| r.socket_errors).sum(),
        )
    }

    /// Whether every answer was the one due: all 401 for (h), all 2xx otherwise, and
    /// no socket errors.
    pub fn answers_as_expected(&self) -> bool {
        self.runs.iter().all(|r| {
            let refused = if self.kind.refused() { r.requests } else { 0 };
            r.non2xx == refused && r.socket_errors == 0
        })
    }

    /// Raw rows and rollup counts written per request wrk completed, over all runs.
    pub fn per_request(&self) -> (f64, f64) {
        let n = self.requests().max(1) as f64;
        (
            self.runs.iter().map(|r| r.raw_rows).sum::<i64>() as f64 / n,
            self.runs.iter().map(|r| r.counted).sum::<i64>() as f64 / n,
        )
    }

    /// Whether every run wrote what the arm should: no raw rows where none are due
    /// (and some where they are), and the rollup counts of the requests wrk completed
    /// plus at most those still in flight when it stopped (one per connection).
    pub fn writes_as_expected(&self, connections: u64) -> bool {
        let (raw, counted) = (self.kind.raw_rows() as i64, self.kind.counted() as i64);
        self.runs.iter().all(|r| {
            let done = r.requests as i64;
            let in_flight = connections as i64;
            let raw_ok = if raw == 0 {
                r.raw_rows == 0
            } else if self.kind.capped() {
                r.raw_rows > 0 && r.raw_rows <= raw * (done + in_flight)
            } else {
                (raw * done..=raw * (done + in_flight)).contains(&r.raw_rows)
            };
            raw_ok && (counted * done..=counted * (done + in_flight)).contains(&r.counted)
        })
    }
}

pub fn post_script(dir: &Path, name: &str, caller: &str, key: &str) -> Res<PathBuf> {
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

pub fn get_script(dir: &Path, name: &str, bearer: &str) -> Res<PathBuf> {
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(
        &path,
        format!("wrk.headers[\"Authorization\"] = \"Bearer {bearer}\"\n"),
    )?;
    Ok(path)
}

/// Every request verifies the next key of `keys_file`; thread `n` takes lines n, n+T, …
/// and starts over at the end.
pub fn rotating_script(dir: &Path, name: &str, caller: &str, keys_file: &Path) -> Res<PathBuf> {
    let path = dir.join(format!("{name}.lua"));
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

pub fn wrk(ctx: &Ctx, watch: &Watch, s: &Scenario, seconds: u64) -> Res<WrkRun> {
    // The bare handler runs inside this process.
    let server_pid = if s.kind.in_bench_process() {
        std::process::id()
    } else {
        watch.server
    };
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
    let before = watch.probe.written()?;
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
    run.server_cpu = server1.saturating_sub(server0) as f64 / ctx.ticks;
    run.wrk_cpu = wrk_jiffies as f64 / ctx.ticks;
    run.db_cpu = db1.saturating_sub(db0) as f64 / ctx.ticks;
    run.others_cpu =
        ((busy1 - busy0) as f64 / ctx.ticks - run.server_cpu - run.wrk_cpu - run.db_cpu).max(0.0);
    run.rss_after = memory_mb(watch.server).map_or(f64::NAN, |m| m.0);
    let after = if s.kind.counted() == 0 && s.kind.raw_rows() == 0 {
        // Nothing to wait for: one flush later, check that nothing was written.
        std::thread::sleep(Duration::from_millis(1200));
        watch.probe.written()?
    } else {
        let expect = before.counted + (s.kind.counted() * run.requests) as i64;
        let after;
        (run.lag, run.drain_server_cpu, run.drain_db_cpu, after) =
            drain(ctx, watch, before, expect)?;
        after
    };
    run.raw_rows = after.raw - before.raw;
    run.counted = after.counted - before.counted;
    Ok(run)
}

/// Waits until the server has written what the last run left: the raw log's newest id
/// and the rollup total stop moving (and the total has reached `expect`, the counts
/// of the requests wrk completed), and the server and database go idle. Returns the
/// seconds that took (counted to the last change), the server and database CPU seconds
/// used, and what is written then.
fn drain(ctx: &Ctx, watch: &Watch, before: Written, expect: i64) -> Res<(f64, f64, f64, Written)> {
    let busy = || process_jiffies(watch.server) + watch.db_jiffies();
    let t0 = Instant::now();
    let (server0, db0) = (process_jiffies(watch.server), watch.db_jiffies());
    let mut last = watch.probe.written()?;
    let mut last_change = if last == before { None } else { Some(t0) };
    let mut window = (t0, busy());
    while t0.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        let w = watch.probe.written()?;
        if w != last {
            last = w;
            last_change = Some(now);
        }
        let span = now.duration_since(window.0).as_secs_f64();
        if span >= 1.5 {
            let cpu = busy();
            let cores = cpu.saturating_sub(window.1) as f64 / ctx.ticks / span;
            let settled = now.duration_since(last_change.unwrap_or(t0)).as_secs_f64() >= 1.5;
            if cores < 0.05 && settled && last.counted >= expect {
                break;
            }
            window = (now, cpu);
        }
    }
    let server = process_jiffies(watch.server).saturating_sub(server0) as f64 / ctx.ticks;
    let db = watch.db_jiffies().saturating_sub(db0) as f64 / ctx.ticks;
    let lag = last_change.map_or(0.0, |t| t.duration_since(t0).as_secs_f64());
    Ok((lag, server, db, last))
}

// ---------------------------------------------------------------------------------
// The server's memory and CPU from /proc

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
/// serving the bench database (found by the database name in their process title);
/// and the bench's own connection to the database.
pub struct Watch {
    pub server: u32,
    pub db: Option<String>,
    pub probe: Probe,
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
pub fn wait_for_quiet(ticks: f64, watch: &Watch, max_wait: u64) -> f64 {
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
