//! What both benchmarks need: the server under test, a PostgreSQL database of their
//! own, and the SQL helpers of their bulk seeding. Each bench binary uses a subset.
#![allow(
    dead_code,
    reason = "shared by two bench binaries, each using a subset"
)]

pub mod bare;

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName};

pub type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

pub const ADMIN_PASSWORD: &str = "bench-admin-password-long-enough";
pub const SESSION_SECRET: &str = "a-benchmark-session-secret-that-is-long-enough-0123456789abcdef";

pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A PostgreSQL database of the bench's own, dropped at the end (also on failure).
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(admin_url: &str) -> Res<Self> {
        let name = format!(
            "latchkey_bench_{}",
            latchkey::domain::secret::random_base62(10).to_lowercase()
        );
        PgConnection::establish(admin_url)?.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
        Ok(PgDatabase {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if env_flag("LATCHKEY_BENCH_KEEP") {
            println!("kept the PostgreSQL database: {}", self.url);
            return;
        }
        let dropped = PgConnection::establish(&self.admin_url).map(|mut c| {
            c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
        });
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the bench database {}", self.name);
        }
    }
}

#[derive(QueryableByName)]
pub struct Id {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
}

pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `YYYY-MM-DD HH:MM:SS`: what diesel writes for a whole-second `Timestamp` on SQLite
/// (and a valid literal on PostgreSQL), so keyset comparisons see the app's format.
pub fn sql_time(t: time::PrimitiveDateTime) -> String {
    format!(
        "'{:04}-{:02}-{:02} {:02}:{:02}:{:02}'",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A small deterministic generator for the non-secret spread of the filler keys.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

pub const KEY_COLUMNS: &str = "channel_id, key_id, key_hash, last_four, prefix, name, name_lower, \
    description, scopes, allowed_cidrs, postback_url, off_the_record, enabled, expires_at, \
    created_at, created_by, updated_at, last_used_at, last_used_ip, last_used_order";

// ---------------------------------------------------------------------------------
// The server

/// Resident memory now and at its peak, in MB (from `/proc/<pid>/status`).
pub fn memory_mb(pid: u32) -> Res<(f64, f64)> {
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

/// What the resident memory is made of, from `/proc/<pid>/smaps_rollup`: anonymous
/// (heap: mimalloc, SQLite's malloc), of it in transparent huge pages, and file-backed
/// (the binary's and libraries' touched pages), in MB.
pub fn memory_split(pid: u32) -> Res<String> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    let field = |name: &str| -> f64 {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    let (rss, anon, huge) = (field("Rss:"), field("Anonymous:"), field("AnonHugePages:"));
    Ok(format!(
        "anonymous {anon:.1} MB ({huge:.1} MB in huge pages), file-backed {:.1} MB",
        rss - anon
    ))
}

pub struct Server {
    child: Child,
    pub addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(bin: &Path, url: &str) -> Res<Self> {
        Server::start_with(bin, url, &[])
    }

    /// [`Server::start`] with more settings (`LATCHKEY_REDIS_URL`...).
    pub fn start_with(bin: &Path, url: &str, env: &[(&str, &str)]) -> Res<Self> {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", url)
            .env("LATCHKEY_BIND", "127.0.0.1:0")
            .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("LATCHKEY_SESSION_SECRET", SESSION_SECRET)
            .env("LATCHKEY_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        pump(child.stdout.take(), stdout.clone());
        pump(child.stderr.take(), stderr.clone());
        let mut server = Server {
            child,
            addr: String::new(),
            stderr,
        };
        let started = Instant::now();
        loop {
            let found = stdout
                .lock()
                .map_err(|_| "poisoned")?
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Latchkey listening on http://")
                        .map(str::to_owned)
                });
            if let Some(addr) = found {
                server.addr = addr;
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("latchkey exited with {status}: {}", server.log()).into());
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("latchkey did not start: {}", server.log()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

pub fn pump(stream: Option<impl std::io::Read + Send + 'static>, into: Arc<Mutex<String>>) {
    let Some(stream) = stream else { return };
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Ok(mut buf) = into.lock() {
                buf.push_str(&line);
                buf.push('\n');
            }
        }
    });
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
