//! Server time of the API Keys page (`GET /channels/{id}/keys`) on a large database.
//!
//! Seeds 1,000,000 keys (100,000 in the measured channel, the rest spread over 90 other
//! channels, interleaved in time so the channel's rows are scattered over the whole
//! table), starts the release `latchkey` binary on it, logs in like a browser and times
//! sequential keep-alive requests on loopback for:
//!
//! - the first page (default sort: created desc, 20 rows),
//! - the page 4,000 deep (rows 80,001–80,020, reached by the keyset cursor
//!   `?after=<id of row 80,000>&pos=80000`),
//! - a filter (`?q=svc-0004`: names are `svc-<service>-<env>-<batch>` over 1,000
//!   services; the filter matches services 00040–00049, 1,000 keys = 1 % of the channel),
//!
//! each as the full page and as the htmx fragment (`HX-Target: keys-results`), beside
//! two baselines: `/healthz` (one `SELECT 1`) and a static file (no database). Then, in
//! a phase of its own with a fifth of the samples, the support workflow's worst case:
//! (d) a pasted key id (`?q=<key id>`, which matches the key id or any name containing
//! it, so every key of the channel is examined), and (c′) a filter the server has not
//! counted before (it remembers a filter's total until keys change, so the repeated
//! (c) measures the remembered path): `?q=svc-00NN` and the same with `vc-`, `c-`, `-`
//! (1,000 matches each, like (c)), each text asked once. Every measured response must
//! be 200 with the expected number of rows.
//!
//! Every keys page shows the usage column (requests in 24 hours / 30 days, from
//! `api_keys.uses_24h` / `uses_30d`). For the usage scenarios the bench seeds, in the
//! measured channel, "the busiest key": rollups of 50 million verifications over the
//! last 30 days (98 % VALID, 2 % IP_NOT_ALLOWED, a daily rhythm; minute rows for the
//! last 48 hours, hour and day rows for 30 days, all sums of the same minutes), its raw
//! log at its retention (10,000 verification rows over the last 7 days) and its 24 h /
//! 30 d figures as the server computes them from the rollups; and 3,000 other keys of
//! the channel with smaller usage, equally consistent. It then also measures:
//!
//! - (e) that key's detail page `/keys/{key_id}` (charts and outcome totals from the
//!   rollups, the newest rows of its raw log),
//! - (f) the channel's keys page sorted by usage (`?sort=uses`), full page and htmx
//!   fragment (the busiest key must be on it),
//!
//! and reads the server's resident memory (`VmRSS` from `/proc/<pid>/status`) after
//! the runs, with all the keys stored.
//!
//! Filters typed for the first time (issue 16, the name index), each as the htmx
//! fragment, in the second phase: (g1) one character, (g2) two, (g3) three that most
//! names hold (all three count to "1000+", which is never remembered, so they cycle
//! through lists of such texts), (g3′) three held by 100 names (`100`…`999`, each
//! asked once), (g12) twelve held by 100 names (`svc-00NNN-pr`…, each once), (g0) two
//! that no name holds (each once; no target: the LIKE fallback reads the channel), (h)
//! "Count all" of three characters held by over 1,000 names; (d) pastes a different
//! key id each time. The name index is built over the seeded keys as its migration
//! does on an existing database (its triggers are off while seeding; timed), and after
//! the runs 2,000 keys are written with and without it (create in its own transaction,
//! create in one transaction, rename) to report what it adds to a write.
//!
//! Filters of one or two characters through the grams index (migration 000013): (g0)
//! is now one or two characters no name holds, with the 10 ms target, and (gs1) / (gs2)
//! are sparse ones: one CJK character held by 4 names / that character and a digit held
//! by one (every 200th key of the measured channel has such a suffix, `-<c><r>`; each
//! text asked once, cycled in a quick run, which has too few). The grams index is built
//! and timed after the trigram index; the write cost is measured with both indexes,
//! with none, and with the trigram index only (the grams index dropped, then built
//! again: PostgreSQL's second build time).
//!
//! Runs on SQLite always and on PostgreSQL when `LATCHKEY_BENCH_POSTGRES` names an admin
//! URL (a fresh `latchkey_bench_<random>` database is created and dropped). Writes the
//! results to `target/bench-keys-page.md`.
//!
//! ```sh
//! LATCHKEY_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench keys_page
//! ```
//!
//! A short trial of the bench itself:
//!
//! ```sh
//! LATCHKEY_BENCH_QUICK=1 LATCHKEY_BENCH_SAMPLES=50 cargo bench --bench keys_page
//! ```
//!
//! Knobs: `LATCHKEY_BENCH_SAMPLES` (default 500 per scenario, after 50 warm-up rounds),
//! `LATCHKEY_BENCH_QUICK=1` (a tenth of the data, for trying the bench itself),
//! `LATCHKEY_BENCH_SKIP_SQLITE=1`, `LATCHKEY_BENCH_KEEP=1` (keep the databases, to
//! study query plans), `LATCHKEY_BIN` (the server binary to start).

mod common;
#[path = "keys_page/search.rs"]
mod search;

use std::fmt::Write as _;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    ADMIN_PASSWORD, Id, KEY_COLUMNS, PgDatabase, Res, Server, XorShift, env_flag, sql_str, sql_time,
};
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl};
use latchkey::db::{self, DbConnection};
use latchkey::domain::key::PlainKey;

const FILTER: &str = "svc-0004";
const PAGE_SIZE: usize = 20;
const OTHER_CHANNELS: usize = 90;
const ROWS_PER_INSERT: usize = 1_000;
const ROWS_PER_TRANSACTION: usize = 50_000;
const WARMUP_ROUNDS: usize = 50;
/// p95 target for every page scenario, in milliseconds.
const TARGET_P95_MS: f64 = 10.0;
/// p95 target for the busiest key's detail page, in milliseconds.
const TARGET_DETAIL_P95_MS: f64 = 20.0;
/// The server's resident memory after the runs, in MB.
const TARGET_RSS_MB: f64 = 100.0;
/// Keys written (with and without the name index) to time what it adds to a write.
const WRITES: usize = 2_000;
/// p95 target for a pasted key id, in milliseconds.
const TARGET_KEY_ID_P95_MS: f64 = 5.0;
/// The deep page's p95 may be at most this multiple of the first page's p95.
const TARGET_DEEP_RATIO: f64 = 1.5;

fn main() {
    // `cargo test --all-targets` runs bench targets without `--bench`: stay quick there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("keys_page: run with `cargo bench --bench keys_page`");
        return;
    }
    if let Err(e) = run() {
        eprintln!("keys_page benchmark failed: {e}");
        std::process::exit(1);
    }
}

/// Sizes of one run.
#[derive(Clone, Copy)]
struct Plan {
    total: usize,
    main: usize,
    deep_pos: usize,
    samples: usize,
}

impl Plan {
    fn from_env() -> Self {
        let quick = env_flag("LATCHKEY_BENCH_QUICK");
        let scale = if quick { 10 } else { 1 };
        let samples = std::env::var("LATCHKEY_BENCH_SAMPLES")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|n: &usize| *n > 0)
            .unwrap_or(500);
        Plan {
            total: 1_000_000 / scale,
            main: 100_000 / scale,
            deep_pos: 80_000 / scale,
            samples,
        }
    }

    /// Keys of the filtered channel whose name contains [`FILTER`].
    fn filter_matches(&self) -> usize {
        (0..self.main)
            .filter(|n| key_name(*n).contains(FILTER))
            .count()
    }
}

fn run() -> Res<()> {
    let plan = Plan::from_env();
    let started = Instant::now();
    let bin = server_binary()?;
    println!(
        "keys_page: {} keys, {} in the measured channel, deep page at row {}, {} samples per scenario; server {}",
        plan.total,
        plan.main,
        plan.deep_pos,
        plan.samples,
        bin.display()
    );
    let mut results = Vec::new();
    if !env_flag("LATCHKEY_BENCH_SKIP_SQLITE") {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        results.push(bench_backend("SQLite", &url, &bin, plan, started)?);
        if env_flag("LATCHKEY_BENCH_KEEP") {
            println!("kept the SQLite database: {url}");
            let _ = dir.keep();
        }
    }
    match std::env::var("LATCHKEY_BENCH_POSTGRES") {
        Ok(admin) if !admin.is_empty() => {
            let pg = PgDatabase::create(&admin)?;
            results.push(bench_backend("PostgreSQL", &pg.url, &bin, plan, started)?);
        }
        _ => println!("LATCHKEY_BENCH_POSTGRES is not set: PostgreSQL skipped"),
    }
    let report = report(&results, plan);
    println!("\n{report}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-keys-page.md");
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

fn server_binary() -> Res<std::path::PathBuf> {
    let bin = std::env::var("LATCHKEY_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").into());
    if !bin.exists() {
        return Err(format!("no server binary at {}", bin.display()).into());
    }
    Ok(bin)
}

// ---------------------------------------------------------------------------------
// Databases

#[derive(QueryableByName)]
struct IdKeyRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    key_id: String,
}

#[derive(QueryableByName)]
struct KeyIdRow {
    #[diesel(sql_type = Text)]
    key_id: String,
}

/// What the measurements check pages against.
struct Seeded {
    channel_id: i64,
    /// Id of row `deep_pos` (1-based) in the default sort: the deep page's cursor.
    deep_anchor: i64,
    /// Key id of the first row of the deep page.
    deep_first_key: String,
    /// Key id of the newest key of the channel (first row of the first page).
    first_key: String,
    /// Key id of the key in the middle of the channel: the first one (d) pastes.
    pasted_key: String,
    /// Key ids spread over the channel: what (d) pastes, each once.
    pasted_keys: Vec<String>,
    filter_total: i64,
    usage: Usage,
    seconds: f64,
    /// Seconds to build the name index over every key (as its migration does).
    /// Seconds to build the trigram index, then the grams index.
    index_build: (f64, f64),
}

/// The name of the `n`-th key of a channel: 1,000 services, 100 keys each.
fn key_name(n: usize) -> String {
    const ENVS: [&str; 4] = ["prod", "staging", "dev", "ci"];
    format!("svc-{:05}-{}-{:03}", n % 1000, ENVS[n % 4], n / 1000)
}

/// Builds the INSERT statements on one thread while the database executes them on the
/// other: `ROWS_PER_INSERT` rows a statement, one key a second back from now, oldest
/// first (so ids grow with time, as in real use), every tenth key in the measured channel.
fn generate(plan: Plan, main_id: i64, others: &[i64], tx: &mpsc::SyncSender<String>) -> Res<()> {
    let now = db::now();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let start = now - time::Duration::seconds(plan.total as i64 + 60);
    let mut seq = vec![0usize; others.len() + 1];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut sql = String::new();
    for i in 0..plan.total {
        let (slot, channel_id) = if i % 10 == 0 {
            (0, main_id)
        } else {
            let k = (i - i / 10 - 1) % others.len();
            (k + 1, others[k])
        };
        let n = seq[slot];
        seq[slot] += 1;
        let mut name = key_name(n);
        if slot == 0
            && let Some(suffix) = search::sparse_suffix(n)
        {
            name.push_str(&suffix);
        }
        let (key, parts) = PlainKey::generate("lk");
        let hash = key.hash();
        let created = start + time::Duration::seconds(i as i64);
        let r = rng.next();
        let description = if r % 3 == 0 {
            sql_str(&format!("Used by the {} worker", &name[..9]))
        } else {
            "NULL".into()
        };
        let (scopes, cidrs) = match r % 4 {
            0 => ("keys:read", ""),
            1 => ("keys:read keys:write", "10.0.0.0/8"),
            2 => ("verify", "203.0.113.0/24 2001:db8::/32"),
            _ => ("keys:read verify", ""),
        };
        // No POSTback URL on the keys that expire within a day: the server's
        // expiry-notice worker would otherwise update them (and queue deliveries) while
        // it is being measured.
        let postback = if r % 7 == 0 && r % 10 != 0 {
            "'http://127.0.0.1:9/latchkey'"
        } else {
            "NULL"
        };
        let expires = match r % 10 {
            0 => sql_time(created + time::Duration::days(1)),
            1 | 2 => sql_time(created + time::Duration::days(365)),
            _ => "NULL".into(),
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
            "({channel_id},{},{},{},'lk',{},{},{description},{},{},{postback},{},{},{expires},{},'admin',{},{last_used},{last_ip},{order})",
            sql_str(&parts.key_id),
            sql_str(hash.as_str()),
            sql_str(&parts.last_four),
            sql_str(&name),
            sql_str(&name.to_lowercase()),
            sql_str(scopes),
            sql_str(cidrs),
            if r % 11 == 0 { "TRUE" } else { "FALSE" },
            if r % 20 == 0 { "FALSE" } else { "TRUE" },
            sql_time(created),
            sql_time(created),
        );
        if (i + 1) % ROWS_PER_INSERT == 0 || i + 1 == plan.total {
            sql.push(';');
            if tx.send(std::mem::take(&mut sql)).is_err() {
                return Err("the inserting thread stopped".into());
            }
        }
    }
    Ok(())
}

fn seed(url: &str, plan: Plan, label: &str) -> Res<Seeded> {
    let started = Instant::now();
    let pool = db::connect(url, 1)?;
    let mut pooled = pool.get()?;
    let conn: &mut DbConnection = &mut pooled;
    let postgres = matches!(conn, DbConnection::Postgresql(_));
    // PostgreSQL keeps synchronous commits: after an asynchronous commit VACUUM cannot
    // set the hint bits it needs to mark pages all-visible until the WAL is flushed,
    // and the index-only scans measured here depend on those marks.
    if !postgres {
        // A 1 GB page cache for the load only; the server opens its own connections.
        conn.batch_execute("PRAGMA cache_size = -1048576; PRAGMA synchronous = OFF;")?;
    }
    let t = sql_time(db::now());
    let mut channels = format!(
        "INSERT INTO channels (name, key_limit, key_count, is_system, created_at, updated_at) \
         VALUES ('bench-main', 2000000, {}, FALSE, {t}, {t})",
        plan.main
    );
    let per_other = (plan.total - plan.main) / OTHER_CHANNELS;
    for c in 0..OTHER_CHANNELS {
        let _ = write!(
            channels,
            ",('bench-other-{c:03}', 2000000, {per_other}, FALSE, {t}, {t})"
        );
    }
    conn.batch_execute(&channels)?;
    let ids: Vec<Id> =
        diesel::sql_query("SELECT id FROM channels WHERE name LIKE 'bench-%' ORDER BY name DESC")
            .load(conn)?;
    // `bench-other-*` sort before `bench-main` in descending order.
    let main_id = ids.last().ok_or("no bench channel")?.id;
    let others: Vec<i64> = ids[..ids.len() - 1].iter().map(|r| r.id).collect();
    if others.len() != OTHER_CHANNELS || (plan.total - plan.main) % OTHER_CHANNELS != 0 {
        return Err("unexpected channel layout".into());
    }

    let paused = search::pause_triggers(conn, search::Indexes::All)?;
    let (tx, rx) = mpsc::sync_channel::<String>(8);
    let inserted = std::thread::scope(|s| -> Res<usize> {
        let producer = s.spawn(move || generate(plan, main_id, &others, &tx));
        let mut rows = 0usize;
        let mut in_tx = 0usize;
        conn.batch_execute("BEGIN")?;
        for stmt in rx.iter() {
            conn.batch_execute(&stmt)?;
            rows += ROWS_PER_INSERT.min(plan.total - rows);
            in_tx += ROWS_PER_INSERT;
            if in_tx >= ROWS_PER_TRANSACTION {
                conn.batch_execute("COMMIT; BEGIN")?;
                in_tx = 0;
            }
            if rows % 100_000 == 0 {
                println!(
                    "  {label}: {rows} keys inserted ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        conn.batch_execute("COMMIT")?;
        producer.join().map_err(|_| "the generator panicked")??;
        Ok(rows)
    })?;
    // The name index, built over every key the way its migration does on an existing
    // database (its triggers were off while the keys were loaded).
    let index_build = search::build_index(conn)?;
    search::resume_triggers(conn, &paused)?;
    println!(
        "  {label}: name indexes built over {inserted} keys in {:.1} s (trigrams) + {:.1} s (grams)",
        index_build.0, index_build.1
    );
    // The busiest key: a third of the way down the first page's order.
    let busiest = diesel::sql_query(format!(
        "SELECT id, key_id FROM api_keys WHERE channel_id = {main_id} \
         ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET {}",
        plan.main / 3
    ))
    .get_result::<IdKeyRow>(conn)?;
    let usage = seed_usage(conn, main_id, (busiest.id, busiest.key_id))?;
    println!(
        "  {label}: usage seeded: {} rollup rows, {} raw rows for the busiest key ({} uses in 24 h, {} in 30 d), {} other keys used",
        usage.rollup_rows, BUSIEST_RAW_ROWS, usage.busiest_24h, usage.busiest_30d, usage.used_keys
    );
    let load = started.elapsed().as_secs_f64();
    if postgres {
        // After a bulk load autovacuum would soon vacuum and analyze the table (insert
        // threshold); doing it now makes the state deterministic: statistics for the
        // planner and a visibility map for index-only scans.
        conn.batch_execute("VACUUM (ANALYZE) api_keys")?;
        conn.batch_execute("VACUUM (ANALYZE) usage_rollups")?;
        conn.batch_execute("VACUUM (ANALYZE) request_log")?;
        conn.batch_execute("ANALYZE")?;
    } else {
        conn.batch_execute("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    println!(
        "  {label}: {inserted} keys loaded in {load:.0} s, analyzed in {:.0} s",
        started.elapsed().as_secs_f64() - load
    );

    let nth = |offset: usize| {
        format!(
            "SELECT id, key_id FROM api_keys WHERE channel_id = {main_id} \
             ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET {offset}"
        )
    };
    let deep_anchor = diesel::sql_query(nth(plan.deep_pos - 1))
        .get_result::<Id>(conn)?
        .id;
    let deep_first_key = diesel::sql_query(nth(plan.deep_pos))
        .get_result::<KeyIdRow>(conn)?
        .key_id;
    let first_key = diesel::sql_query(nth(0))
        .get_result::<KeyIdRow>(conn)?
        .key_id;
    let pasted_key = diesel::sql_query(nth(plan.main / 2))
        .get_result::<KeyIdRow>(conn)?
        .key_id;
    let mut pasted_keys = vec![pasted_key.clone()];
    let spread: Vec<KeyIdRow> = diesel::sql_query(format!(
        "SELECT key_id FROM api_keys WHERE channel_id = {main_id} ORDER BY key_hash LIMIT 300"
    ))
    .load(conn)?;
    pasted_keys.extend(spread.into_iter().map(|r| r.key_id));
    let filter_total = diesel::sql_query(format!(
        "SELECT COUNT(*) AS id FROM api_keys WHERE channel_id = {main_id} \
         AND name_lower LIKE {}",
        sql_str(&format!("%{FILTER}%"))
    ))
    .get_result::<Id>(conn)?
    .id;
    if filter_total != plan.filter_matches() as i64 {
        return Err(format!(
            "the filter matches {filter_total} keys, expected {}",
            plan.filter_matches()
        )
        .into());
    }
    Ok(Seeded {
        channel_id: main_id,
        deep_anchor,
        deep_first_key,
        first_key,
        pasted_key,
        pasted_keys,
        filter_total,
        usage,
        seconds: started.elapsed().as_secs_f64(),
        index_build,
    })
}

// ---------------------------------------------------------------------------------
// Usage: the busiest key and a few thousand used ones

/// Verifications of the busiest key over the last 30 days.
const BUSIEST_USES: u64 = 50_000_000;
/// Its raw log, at the per-key retention (`LATCHKEY_REQUEST_LOG_PER_KEY`).
const BUSIEST_RAW_ROWS: usize = 10_000;
/// Other keys of the channel with (smaller) usage, so the usage sort has an order.
const USED_KEYS: usize = 3_000;
const ROLLUPS_PER_INSERT: usize = 500;

/// What the usage seeding made.
pub struct Usage {
    pub busiest_key: String,
    pub busiest_24h: i64,
    pub busiest_30d: i64,
    pub busiest_total: u64,
    pub used_keys: usize,
    pub rollup_rows: usize,
}

fn minute_time(minute: i64) -> time::PrimitiveDateTime {
    let t = time::OffsetDateTime::from_unix_timestamp(minute * 60)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    time::PrimitiveDateTime::new(t.date(), t.time())
}

/// Collects rollup rows and writes them in multi-row INSERTs.
struct Rollups<'a> {
    conn: &'a mut DbConnection,
    sql: String,
    rows: usize,
}

impl Rollups<'_> {
    fn add(&mut self, key: i64, period: &str, minute: i64, outcome: &str, count: u64) -> Res<()> {
        if count == 0 {
            return Ok(());
        }
        if self.sql.is_empty() {
            self.sql = "INSERT INTO usage_rollups (api_key_id, period, bucket_start, outcome, count) VALUES ".into();
        } else {
            self.sql.push(',');
        }
        let _ = write!(
            self.sql,
            "({key},'{period}',{},'{outcome}',{count})",
            sql_time(minute_time(minute))
        );
        self.rows += 1;
        if self.rows % ROLLUPS_PER_INSERT == 0 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Res<()> {
        if !self.sql.is_empty() {
            self.sql.push(';');
            self.conn.batch_execute(&self.sql)?;
            self.sql.clear();
        }
        Ok(())
    }
}

/// Seeds the usage the detail page and the usage sort read: the busiest key's rollups
/// (50 million verifications over the last 30 days, 98 % VALID and 2 % IP_NOT_ALLOWED,
/// a daily rhythm; minute rows for the last 48 hours, hour and day rows for 30 days, all
/// sums of the same minutes so the periods agree), its raw log at its retention (10,000
/// verification rows over the last 7 days) and its 24 h / 30 d figures as the server
/// computes them from the rollups; and a few thousand other keys of the channel with
/// smaller, equally consistent usage.
fn seed_usage(conn: &mut DbConnection, main_id: i64, busiest: (i64, String)) -> Res<Usage> {
    let now = db::now();
    let now_min = now.assume_utc().unix_timestamp().div_euclid(60);
    let hour_of = |m: i64| m - m.rem_euclid(60);
    let day_of = |m: i64| m - m.rem_euclid(1440);
    // 720 hour buckets, this one included.
    let first = hour_of(now_min) - 719 * 60;
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let weights: Vec<f64> = (first..=now_min)
        .map(|m| {
            let phase = (m.rem_euclid(1440) as f64 / 1440.0) * std::f64::consts::TAU;
            1.0 + 0.6 * phase.sin() + (rng.next() % 1000) as f64 / 5000.0
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    let mut counts: Vec<u64> = weights
        .iter()
        .map(|w| (BUSIEST_USES as f64 * w / sum) as u64)
        .collect();
    let short = BUSIEST_USES - counts.iter().sum::<u64>();
    for c in counts.iter_mut().take(short as usize) {
        *c += 1;
    }
    let (id, key_id) = busiest;
    // (valid, ip_not_allowed) per bucket start, for each period.
    let mut hours: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
    let mut days: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
    conn.batch_execute("BEGIN")?;
    let mut out = Rollups {
        conn,
        sql: String::new(),
        rows: 0,
    };
    for (i, n) in counts.iter().enumerate() {
        let m = first + i as i64;
        let refused = n * 2 / 100;
        let valid = n - refused;
        if m > now_min - 48 * 60 {
            out.add(id, "minute", m, "VALID", valid)?;
            out.add(id, "minute", m, "IP_NOT_ALLOWED", refused)?;
        }
        for (map, start) in [(&mut hours, hour_of(m)), (&mut days, day_of(m))] {
            let e = map.entry(start).or_default();
            e.0 += valid;
            e.1 += refused;
        }
    }
    for (period, map) in [("hour", &hours), ("day", &days)] {
        for (start, (valid, refused)) in map {
            out.add(id, period, *start, "VALID", *valid)?;
            out.add(id, period, *start, "IP_NOT_ALLOWED", *refused)?;
        }
    }
    // The server's windows: the last 24 hour buckets and the last 30 day buckets.
    let day_from = hour_of(now_min) - 23 * 60;
    let month_from = day_of(now_min) - 29 * 1440;
    let total = |map: &std::collections::BTreeMap<i64, (u64, u64)>, from: i64| {
        map.range(from..).map(|(_, (v, r))| v + r).sum::<u64>() as i64
    };
    let (busiest_24h, busiest_30d) = (total(&hours, day_from), total(&days, month_from));

    // Other keys: one use burst each, two hours ago (a third of them) or days ago.
    let others: Vec<Id> = diesel::sql_query(format!(
        "SELECT id FROM api_keys WHERE channel_id = {main_id} AND id <> {id} AND id % 29 = 0 \
         ORDER BY id LIMIT {USED_KEYS}"
    ))
    .load(out.conn)?;
    let mut figures = String::new();
    for (j, other) in others.iter().enumerate() {
        let c = 1 + rng.next() % 1_000_000;
        let recent = j % 3 == 0;
        let hour = if recent {
            hour_of(now_min) - 120
        } else {
            day_of(now_min) - (2 + (j as i64 % 20)) * 1440 + 12 * 60
        };
        if recent {
            out.add(other.id, "minute", hour, "VALID", c)?;
        }
        out.add(other.id, "hour", hour, "VALID", c)?;
        out.add(other.id, "day", day_of(hour), "VALID", c)?;
        let _ = write!(
            figures,
            "UPDATE api_keys SET uses_24h = {}, uses_30d = {c} WHERE id = {};",
            if recent { c } else { 0 },
            other.id
        );
    }
    out.flush()?;
    let rollup_rows = out.rows;
    conn.batch_execute(&figures)?;

    // The raw log at its retention: verifications over the last 7 days, oldest first.
    let week = 7 * 24 * 3600;
    let mut sql = String::new();
    let mut newest = now;
    for i in 0..BUSIEST_RAW_ROWS {
        let at = now - time::Duration::seconds(week - (i as i64 * week) / BUSIEST_RAW_ROWS as i64);
        newest = at;
        let refused = i % 50 == 7;
        if sql.is_empty() {
            sql = "INSERT INTO request_log (occurred_at, api_key_id, channel_id, method, route, \
                   status, source_ip, kind, code) VALUES "
                .into();
        } else {
            sql.push(',');
        }
        let _ = write!(
            sql,
            "({},{id},{main_id},'POST','/api/v1/keys/verify',{},{},'verify',{})",
            sql_time(at),
            if refused { 403 } else { 200 },
            if refused {
                "'203.0.113.9'"
            } else {
                "'198.51.100.7'"
            },
            if refused {
                "'IP_NOT_ALLOWED'"
            } else {
                "'VALID'"
            },
        );
        if (i + 1) % ROWS_PER_INSERT == 0 || i + 1 == BUSIEST_RAW_ROWS {
            sql.push(';');
            conn.batch_execute(&sql)?;
            sql.clear();
        }
    }
    let newest = newest.replace_nanosecond(0).unwrap_or(newest);
    conn.batch_execute(&format!(
        "UPDATE api_keys SET uses_24h = {busiest_24h}, uses_30d = {busiest_30d}, \
         last_used_at = {}, last_used_ip = '198.51.100.7', last_used_order = {} WHERE id = {id}; \
         COMMIT",
        sql_time(newest),
        newest.assume_utc().unix_timestamp() * 1_000_000
    ))?;
    Ok(Usage {
        busiest_key: key_id,
        busiest_24h,
        busiest_30d,
        busiest_total: counts.iter().sum(),
        used_keys: others.len(),
        rollup_rows,
    })
}

// ---------------------------------------------------------------------------------
// The server

// ---------------------------------------------------------------------------------
// Measuring

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Baseline,
    First,
    Deep,
    Filter,
    /// A filter of the same selectivity the server has not counted before.
    FreshFilter,
    /// A filter typed for the first time, of some length (issue 16).
    Typed,
    /// One character a few names hold (the grams index, issue 16).
    SparseChar,
    /// Two characters one name holds.
    SparsePair,
    /// A filter no name holds.
    NoMatch,
    /// A frequent filter's exact total asked for ("Count all").
    CountAll,
    KeyId,
    /// The keys page sorted by requests in 30 days (`?sort=uses`).
    Uses,
    /// The busiest key's detail page (`/keys/{key_id}`).
    Detail,
}

struct Scenario {
    label: &'static str,
    kind: Kind,
    path: String,
    fragment: bool,
    /// When not empty, each request takes the next of these paths instead of `path`.
    rotate: Vec<String>,
    /// Start `rotate` over when it runs out (its filters are never remembered).
    cycle: bool,
    next: std::cell::Cell<usize>,
    /// The p95 this scenario must stay under, in ms (the report's verdicts).
    target_ms: Option<f64>,
    /// Expected `<tr id="key-` count (None: not a keys page).
    rows: Option<usize>,
    /// Measured in the second phase, with a fifth of the samples.
    extra: bool,
    /// Text the first response must contain (the range line, the first row).
    must_contain: Vec<String>,
    samples: Vec<Duration>,
    bytes: usize,
}

struct Stats {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Scenario {
    fn stats(&self) -> Stats {
        let mut ms: Vec<f64> = self.samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        // Nearest-rank percentiles.
        let pct = |p: f64| {
            let rank = ((p / 100.0) * ms.len() as f64).ceil() as usize;
            ms[rank.clamp(1, ms.len()) - 1]
        };
        Stats {
            p50: pct(50.0),
            p95: pct(95.0),
            p99: pct(99.0),
            max: ms.last().copied().unwrap_or(0.0),
            mean: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
        }
    }
}

struct BackendResult {
    backend: &'static str,
    seeded: Seeded,
    scenarios: Vec<Scenario>,
    /// The server's VmRSS and VmHWM after the runs, in MB.
    rss: (f64, f64),
    /// What the name index adds to key writes.
    writes: search::WriteCost,
}

fn bench_backend(
    backend: &'static str,
    url: &str,
    bin: &std::path::Path,
    plan: Plan,
    started: Instant,
) -> Res<BackendResult> {
    println!(
        "{backend}: seeding ({:.0} s since start)",
        started.elapsed().as_secs_f64()
    );
    let seeded = seed(url, plan, backend)?;
    let server = Server::start(bin, url)?;
    println!(
        "{backend}: server on {}; measuring ({:.0} s since start)",
        server.addr,
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let scenarios = runtime.block_on(measure(&server, &seeded, plan));
    if let Err(e) = &scenarios {
        eprintln!("server log:\n{}", server.log());
        return Err(format!("{backend}: {e}").into());
    }
    let scenarios = scenarios?;
    let rss = common::memory_mb(server.pid())?;
    println!(
        "  server VmRSS {:.1} MB (peak {:.1} MB) with {} keys stored: {}",
        rss.0,
        rss.1,
        plan.total,
        common::memory_split(server.pid())?
    );
    for s in &scenarios {
        let st = s.stats();
        println!(
            "  {:<34} p50 {:>6.2} ms  p95 {:>6.2} ms  max {:>6.2} ms",
            s.label, st.p50, st.p95, st.max
        );
    }
    drop(server);
    let pool = db::connect(url, 1)?;
    let writes = search::write_cost(&mut *pool.get()?, seeded.channel_id, WRITES)?;
    println!(
        "  key create, one transaction each: {:.0} µs with both name indexes, {:.0} µs with \
         trigrams only, {:.0} µs without",
        writes.create_own_tx.0, writes.create_own_tx.1, writes.create_own_tx.2
    );
    Ok(BackendResult {
        backend,
        seeded,
        scenarios,
        rss,
        writes,
    })
}

fn scenarios(seeded: &Seeded, plan: Plan) -> Vec<Scenario> {
    let keys = format!("/channels/{}/keys", seeded.channel_id);
    let main = plan.main;
    let deep_from = plan.deep_pos + 1;
    let deep_to = plan.deep_pos + PAGE_SIZE;
    let first = (
        keys.clone(),
        vec![
            format!("1–{PAGE_SIZE} of {main}"),
            format!("<tr id=\"key-{}\"", seeded.first_key),
        ],
    );
    let deep = (
        format!("{keys}?after={}&pos={}", seeded.deep_anchor, plan.deep_pos),
        vec![
            format!("{deep_from}–{deep_to} of {main}"),
            format!("<tr id=\"key-{}\"", seeded.deep_first_key),
        ],
    );
    let filter = (
        format!("{keys}?q={FILTER}"),
        vec![
            format!("1–{PAGE_SIZE} of {}", seeded.filter_total),
            format!("value=\"{FILTER}\""),
        ],
    );
    let pasted = (
        format!("{keys}?q={}", seeded.pasted_key),
        vec!["1–1 of 1".to_owned()],
    );
    // (d) pastes a key id it has not pasted before each time (its total would be
    // remembered otherwise).
    let pasted_keys: Vec<String> = seeded
        .pasted_keys
        .iter()
        .map(|k| format!("{keys}?q={k}"))
        .collect();
    // (c′): the server remembers a filter's total until keys change, so (c) repeated
    // measures that path; these texts match the same number of keys (1,000: ten
    // services each) and each is asked once.
    let fresh: Vec<String> = (0..100)
        .flat_map(|nn| ["svc-", "vc-", "c-", "-"].map(|p| format!("{keys}?q={p}{:04}", nn)))
        .filter(|p| !p.ends_with(&format!("?q={FILTER}")))
        .collect();
    // Filters typed for the first time (issue 16), measured as the htmx fragment that
    // typing fetches: frequent ones (`cycle`: totals over 1,000 are never remembered)
    // and rare ones (each asked once). Only the rows are checked on every answer.
    // Rare filters match one service: 100 keys, 10 in a quick run.
    let (sparse_chars, sparse_pairs) = search::sparse_texts(main);
    let rows = |kind, cycle: bool| match kind {
        Kind::NoMatch => 0,
        Kind::SparseChar => (main / 200 / search::SPARSE_CHARS).max(1),
        Kind::SparsePair => 1,
        Kind::Typed if !cycle => PAGE_SIZE.min(main / 1000),
        _ => PAGE_SIZE,
    };
    let typed = |label, kind, texts: Vec<String>, cycle: bool| {
        let rotate: Vec<String> = texts.iter().map(|t| format!("{keys}?q={t}")).collect();
        Scenario {
            label,
            kind,
            path: rotate[0].clone(),
            fragment: true,
            rotate,
            cycle,
            next: std::cell::Cell::new(0),
            target_ms: match kind {
                Kind::CountAll => None,
                _ => Some(TARGET_P95_MS),
            },
            rows: Some(rows(kind, cycle)),
            extra: true,
            must_contain: vec![match rows(kind, cycle) {
                0 => "0 keys".to_owned(),
                n => format!("1–{n} of "),
            }],
            samples: Vec::with_capacity(plan.samples),
            bytes: 0,
        }
    };
    let uses = (
        format!("{keys}?sort=uses"),
        vec![
            format!("1–{PAGE_SIZE} of {main}"),
            format!("<tr id=\"key-{}\"", seeded.usage.busiest_key),
        ],
    );
    let fresh_filter = (
        fresh[0].clone(),
        vec![format!("1–{PAGE_SIZE} of {}", seeded.filter_total)],
    );
    let page = |label, kind, (path, must): (String, Vec<String>), fragment| Scenario {
        label,
        kind,
        path,
        fragment,
        rotate: match kind {
            Kind::FreshFilter => fresh.clone(),
            // The full page and the fragment paste different keys.
            Kind::KeyId => pasted_keys
                .iter()
                .skip(usize::from(fragment))
                .step_by(2)
                .cloned()
                .collect(),
            _ => Vec::new(),
        },
        cycle: false,
        next: std::cell::Cell::new(0),
        target_ms: match kind {
            Kind::KeyId => Some(TARGET_KEY_ID_P95_MS),
            Kind::Baseline | Kind::Detail => None,
            _ => Some(TARGET_P95_MS),
        },
        rows: Some(if kind == Kind::KeyId { 1 } else { PAGE_SIZE }),
        extra: matches!(kind, Kind::KeyId | Kind::FreshFilter),
        // The fragment has no filter box.
        must_contain: if fragment {
            must.into_iter()
                .filter(|m| !m.starts_with("value="))
                .collect()
        } else {
            must
        },
        samples: Vec::with_capacity(plan.samples),
        bytes: 0,
    };
    let baseline = |label, path: &str| Scenario {
        label,
        kind: Kind::Baseline,
        path: path.to_owned(),
        fragment: false,
        rotate: Vec::new(),
        cycle: false,
        next: std::cell::Cell::new(0),
        target_ms: None,
        rows: None,
        extra: false,
        must_contain: Vec::new(),
        samples: Vec::with_capacity(plan.samples),
        bytes: 0,
    };
    let detail = Scenario {
        label: "(e) the busiest key's page — full page",
        kind: Kind::Detail,
        path: format!("/keys/{}", seeded.usage.busiest_key),
        fragment: false,
        rotate: Vec::new(),
        cycle: false,
        next: std::cell::Cell::new(0),
        target_ms: Some(TARGET_DETAIL_P95_MS),
        rows: None,
        extra: false,
        // Its outcome totals (from rollups) and its raw log.
        must_contain: vec![
            "<code>IP_NOT_ALLOWED</code>".to_owned(),
            "data-kind=\"verify\"".to_owned(),
        ],
        samples: Vec::with_capacity(plan.samples),
        bytes: 0,
    };
    vec![
        baseline("baseline: GET /healthz (SELECT 1)", "/healthz"),
        baseline("baseline: GET /static/css/app.css", "/static/css/app.css"),
        page(
            "(a) first page — full page",
            Kind::First,
            first.clone(),
            false,
        ),
        page(
            "(b) page 4,000 deep — full page",
            Kind::Deep,
            deep.clone(),
            false,
        ),
        page(
            "(c) filter — full page",
            Kind::Filter,
            filter.clone(),
            false,
        ),
        page("(a) first page — htmx fragment", Kind::First, first, true),
        page(
            "(b) page 4,000 deep — htmx fragment",
            Kind::Deep,
            deep,
            true,
        ),
        page("(c) filter — htmx fragment", Kind::Filter, filter, true),
        page(
            "(f) sorted by usage — full page",
            Kind::Uses,
            uses.clone(),
            false,
        ),
        page(
            "(f) sorted by usage — htmx fragment",
            Kind::Uses,
            uses,
            true,
        ),
        detail,
        page(
            "(c′) filter counted for the first time — htmx fragment",
            Kind::FreshFilter,
            fresh_filter,
            true,
        ),
        page(
            "(d) pasted key id — full page",
            Kind::KeyId,
            pasted.clone(),
            false,
        ),
        page(
            "(d) pasted key id — htmx fragment",
            Kind::KeyId,
            pasted,
            true,
        ),
        typed(
            "(g1) 1 character, first keystroke — htmx fragment",
            Kind::Typed,
            search::ONE_CHAR.iter().map(|t| (*t).to_owned()).collect(),
            true,
        ),
        typed(
            "(g2) 2 characters — htmx fragment",
            Kind::Typed,
            search::TWO_CHARS.iter().map(|t| (*t).to_owned()).collect(),
            true,
        ),
        typed(
            "(g3) 3 characters most names hold — htmx fragment",
            Kind::Typed,
            search::THREE_FREQUENT
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            true,
        ),
        // `NNN` from 100 to 999 is only ever the service number: 100 keys each.
        typed(
            "(g3′) 3 characters in 100 names — htmx fragment",
            Kind::Typed,
            (100..1000).map(|n| n.to_string()).collect(),
            false,
        ),
        // `svc-00NNN-` and the first two letters of that service's environment.
        typed(
            "(g12) 12 characters in 100 names — htmx fragment",
            Kind::Typed,
            (0..1000).map(|n| key_name(n)[..12].to_owned()).collect(),
            false,
        ),
        typed(
            "(g0) 1 or 2 characters no name holds — htmx fragment",
            Kind::NoMatch,
            search::absent_pairs(),
            false,
        ),
        // Too few of them in a quick run to ask each once.
        typed(
            "(gs1) 1 character in 4 names — htmx fragment",
            Kind::SparseChar,
            sparse_chars,
            main < 100_000,
        ),
        typed(
            "(gs2) 2 characters in 1 name — htmx fragment",
            Kind::SparsePair,
            sparse_pairs,
            main < 100_000,
        ),
        // An exact total of over 1,000 matches: `0NN` (services 0NN00–0NN99 and batch
        // 0NN, 2,100 keys) and the frequent three.
        typed(
            "(h) Count all, 3 characters in over 1,000 names — htmx fragment",
            Kind::CountAll,
            (0..100)
                .map(|n| format!("{n:03}&count=all"))
                .chain(
                    search::THREE_FREQUENT
                        .iter()
                        .map(|t| format!("{t}&count=all")),
                )
                .collect(),
            false,
        ),
    ]
}

async fn login(client: &reqwest::Client, base: &str) -> Res<()> {
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).ok_or("no csrf_token on the login page")? + marker.len();
    let end = page[start..].find('"').ok_or("unterminated csrf_token")? + start;
    let res = client
        .post(format!("{base}/login"))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf_token", &page[start..end]),
        ])
        .send()
        .await?;
    if res.status() != reqwest::StatusCode::SEE_OTHER {
        return Err(format!("login answered {}", res.status()).into());
    }
    Ok(())
}

async fn fetch(client: &reqwest::Client, base: &str, s: &Scenario) -> Res<(Duration, String)> {
    let path = if s.rotate.is_empty() {
        &s.path
    } else {
        let i = s.next.get();
        s.next.set(i + 1);
        let i = if s.cycle { i % s.rotate.len() } else { i };
        s.rotate
            .get(i)
            .ok_or_else(|| format!("{} ran out of filters it has not asked before", s.label))?
    };
    let mut req = client.get(format!("{base}{path}"));
    if s.fragment {
        req = req
            .header("HX-Request", "true")
            .header("HX-Target", "keys-results");
    }
    let t0 = Instant::now();
    let res = req.send().await?;
    let status = res.status();
    let body = res.text().await?;
    let elapsed = t0.elapsed();
    if status != reqwest::StatusCode::OK {
        return Err(format!("{path} answered {status}").into());
    }
    if let Some(n) = s.rows {
        let got = body.matches("<tr id=\"key-").count();
        if got != n {
            return Err(format!("{} showed {got} rows, expected {n}", s.label).into());
        }
    }
    if s.kind == Kind::KeyId {
        let pasted = path.rsplit("q=").next().unwrap_or_default();
        if !body.contains(&format!("<tr id=\"key-{pasted}\"")) {
            return Err(format!("{}: {pasted} is not the row shown", s.label).into());
        }
    }
    Ok((elapsed, body))
}

async fn measure(server: &Server, seeded: &Seeded, plan: Plan) -> Res<Vec<Scenario>> {
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    login(&client, &base).await?;
    let mut all = scenarios(seeded, plan);
    for s in &mut all {
        let (_, body) = fetch(&client, &base, s).await?;
        for m in &s.must_contain {
            if !body.contains(m.as_str()) {
                return Err(format!("{}: the response lacks {m:?}", s.label).into());
            }
        }
        if s.kind == Kind::Uses {
            let busiest = format!("<tr id=\"key-{}\"", seeded.usage.busiest_key);
            let first = body.find("<tr id=\"key-").map(|i| &body[i..]);
            if !first.is_some_and(|f| f.starts_with(&busiest)) {
                return Err(format!("{}: the busiest key is not the first row", s.label).into());
            }
        }
        if s.fragment && body.contains("<html") {
            return Err(format!("{}: got a full page, not the fragment", s.label).into());
        }
        s.bytes = body.len();
    }
    // Round-robin: every round requests every scenario once, so noise from the shared
    // machine spreads evenly instead of landing on one scenario.
    for (extra, warmup, rounds) in [
        (false, WARMUP_ROUNDS, plan.samples),
        (true, WARMUP_ROUNDS / 5, (plan.samples / 5).max(20)),
    ] {
        for _ in 0..warmup {
            for s in all.iter().filter(|s| s.extra == extra) {
                fetch(&client, &base, s).await?;
            }
        }
        for round in 0..rounds {
            for s in all.iter_mut().filter(|s| s.extra == extra) {
                let (d, _) = fetch(&client, &base, s).await?;
                s.samples.push(d);
            }
            if (round + 1) % 100 == 0 || round + 1 == rounds {
                println!("  {} / {rounds} rounds", round + 1);
            }
        }
    }
    Ok(all)
}

// ---------------------------------------------------------------------------------
// Report

fn report(results: &[BackendResult], plan: Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "API Keys page, {} keys in all, {} in the measured channel, page size {PAGE_SIZE}; \
         sequential keep-alive requests, round-robin over the scenarios, n per scenario after \
         {WARMUP_ROUNDS} warm-up rounds ((d) in a later phase: {} after {}); client-side wall \
         time on loopback, in ms. Every keys page renders the usage column (requests 24 h / \
         30 d); (e) is the detail page of a key with 50 million verifications in 30 days \
         (rollups) and 10,000 raw rows, (f) the keys page sorted by usage.\n",
        plan.total,
        plan.main,
        (plan.samples / 5).max(20),
        WARMUP_ROUNDS / 5
    );
    let _ = writeln!(
        out,
        "| backend | scenario | n | p50 | p95 | p99 | max | mean | p95 ÷ first page p95 | body |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        for s in &r.scenarios {
            let st = s.stats();
            let first = r
                .scenarios
                .iter()
                .find(|f| f.kind == Kind::First && f.fragment == s.fragment)
                .map(|f| f.stats().p95)
                .unwrap_or(f64::NAN);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}× | {:.1} kB |",
                r.backend,
                s.label,
                s.samples.len(),
                st.p50,
                st.p95,
                st.p99,
                st.max,
                st.mean,
                st.p95 / first,
                s.bytes as f64 / 1000.0
            );
        }
    }
    let _ = writeln!(
        out,
        "\nTargets: p95 < {TARGET_P95_MS} ms for (a), (b), (c), (c′), (f), (g0)–(g12), (gs1), (gs2); (b) p95 ≤ \
         {TARGET_DEEP_RATIO}× (a) p95; (d) p95 < {TARGET_KEY_ID_P95_MS} ms; (e) p95 < \
         {TARGET_DETAIL_P95_MS} ms; server VmRSS < {TARGET_RSS_MB} MB.\n"
    );
    for r in results {
        let u = &r.seeded.usage;
        let _ = writeln!(
            out,
            "- {} (seeded in {:.0} s; filter `{FILTER}` matches {} keys; the busiest key: {} \
             verifications in 30 days, {} in 24 h, {} raw rows; {} other keys used):",
            r.backend,
            r.seeded.seconds,
            r.seeded.filter_total,
            u.busiest_30d,
            u.busiest_24h,
            BUSIEST_RAW_ROWS,
            u.used_keys
        );
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let p95 = |k: Kind, fragment: bool| {
            r.scenarios
                .iter()
                .find(|s| s.kind == k && s.fragment == fragment)
                .map(|s| s.stats().p95)
        };
        if let Some(d) = p95(Kind::Detail, false) {
            let _ = writeln!(
                out,
                "  - (e) the busiest key's page: p95 {d:.2} ms {}",
                verdict(d < TARGET_DETAIL_P95_MS)
            );
        }
        if let (Some(full), Some(frag)) = (p95(Kind::Uses, false), p95(Kind::Uses, true)) {
            let _ = writeln!(
                out,
                "  - (f) sorted by usage: full page p95 {full:.2} ms {}; htmx fragment p95 {frag:.2} ms {}",
                verdict(full < TARGET_P95_MS),
                verdict(frag < TARGET_P95_MS)
            );
        }
        let _ = writeln!(
            out,
            "  - server VmRSS after the runs {:.1} MB (peak {:.1} MB) with {} keys stored: {}",
            r.rss.0,
            r.rss.1,
            plan.total,
            verdict(r.rss.0 < TARGET_RSS_MB)
        );
        let w = &r.writes;
        let _ = writeln!(
            out,
            "  - name indexes: built over {} keys in {:.1} s (trigrams) + {:.1} s (grams; \
             built again after the write rounds in {:.1} s{}); per key written, with both / \
             trigrams only / none ({} keys, median of 3 rounds): create in its own transaction \
             {:.0} / {:.0} / {:.0} µs, create in one transaction {:.0} / {:.0} / {:.0} µs, \
             rename {:.0} / {:.0} / {:.0} µs",
            plan.total,
            r.seeded.index_build.0,
            r.seeded.index_build.1,
            w.grams_rebuild,
            if r.backend == "SQLite" {
                ": its triggers only"
            } else {
                ""
            },
            w.n,
            w.create_own_tx.0,
            w.create_own_tx.1,
            w.create_own_tx.2,
            w.create_one_tx.0,
            w.create_one_tx.1,
            w.create_one_tx.2,
            w.rename_one_tx.0,
            w.rename_one_tx.1,
            w.rename_one_tx.2,
        );
        for s in r.scenarios.iter().filter(|s| s.extra) {
            let st = s.stats();
            let _ = writeln!(
                out,
                "  - {}: p95 {:.2} ms{}",
                s.label,
                st.p95,
                match s.target_ms {
                    Some(t) => format!(" (target < {t} ms) {}", verdict(st.p95 < t)),
                    None => " (no target)".to_owned(),
                }
            );
        }
        for fragment in [false, true] {
            let find = |k: Kind| {
                r.scenarios
                    .iter()
                    .find(|s| s.kind == k && s.fragment == fragment)
                    .map(|s| s.stats())
            };
            let (Some(a), Some(b), Some(c)) =
                (find(Kind::First), find(Kind::Deep), find(Kind::Filter))
            else {
                continue;
            };
            let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
            let _ = writeln!(
                out,
                "  - {}: (a) p95 {:.2} ms {}; (b) p95 {:.2} ms {}; (c) p95 {:.2} ms {}; deep ÷ first {:.2}× {}",
                if fragment {
                    "htmx fragment"
                } else {
                    "full page"
                },
                a.p95,
                verdict(a.p95 < TARGET_P95_MS),
                b.p95,
                verdict(b.p95 < TARGET_P95_MS),
                c.p95,
                verdict(c.p95 < TARGET_P95_MS),
                b.p95 / a.p95,
                verdict(b.p95 <= TARGET_DEEP_RATIO * a.p95),
            );
        }
    }
    out
}
