//! The verify bench's database: the seeded keys, and what it reads back while
//! measuring (raw rows and rollups written, the target's rollup totals, sizes).

use std::fmt::Write as _;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl};
use latchkey::db::{self, DbConnection, Pool};
use latchkey::domain::key::{KeyFormatError, PlainKey};

use crate::common::{Id, KEY_COLUMNS, Res, XorShift, sql_str, sql_time};

const ROWS_PER_INSERT: usize = 1_000;
/// Target keys of the spread run (fewer when fewer keys are stored).
pub const SPREAD_KEYS: usize = 10_000;

/// The keys the measurements use, as plaintext.
pub struct Seeded {
    /// Has the `verify` scope: the caller of every verification.
    pub caller: String,
    /// Has the `keys:read` scope: reads the target with `GET /api/v1/keys/{key_id}`.
    pub reader: String,
    /// The key verified by (a).
    pub valid: String,
    pub valid_key_id: String,
    /// Its row id: what its rollups are stored under.
    pub valid_id: i64,
    /// An Off-the-Record key verified by experiment (d).
    pub valid_otr: String,
    pub malformed: String,
    pub unknown: String,
    /// What (h) sends as its bearer key: `lk_notakey…`, as long as a real key.
    pub bad_bearer: String,
    /// Valid keys spread over the table: the targets of the spread run.
    pub spread: Vec<String>,
    pub seconds: f64,
}

/// A key the bench needs to know the plaintext of, stored at row `at`.
struct Special {
    at: usize,
    name: &'static str,
    scopes: &'static str,
    off_the_record: bool,
    plain: String,
    key_id: String,
}

pub fn seed(url: &str, label: &str, keys: usize) -> Res<Seeded> {
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
         VALUES ('bench-verify', {}, {keys}, FALSE, {t}, {t})",
        (2 * keys).max(200_000)
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
        key_id: String::new(),
    };
    // Spread over the table; the caller only needs `verify`, the targets have the
    // scopes of a typical service key.
    let mut specials = [
        special(keys / 5, "bench-caller", "verify", false),
        special(2 * keys / 5, "bench-reader", "keys:read", false),
        special(3 * keys / 5, "bench-target", "keys:read verify", false),
        special(4 * keys / 5, "bench-target-otr", "keys:read verify", true),
    ];
    let spread_n = SPREAD_KEYS.min(keys / 4).max(1);
    let spread_step = (keys / spread_n).max(1);
    let mut spread = Vec::with_capacity(spread_n);
    let start = now - time::Duration::seconds(keys as i64 + 60);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut sql = String::new();
    conn.batch_execute("BEGIN")?;
    for i in 0..keys {
        let (key, parts) = PlainKey::generate("lk");
        let hash = key.hash();
        let created = start + time::Duration::seconds(i as i64);
        let r = rng.next();
        let spec = specials.iter_mut().find(|s| s.at == i);
        let (name, scopes, cidrs, otr, enabled, expires) = match spec {
            Some(s) => {
                s.plain = key.reveal().to_owned();
                s.key_id = parts.key_id.clone();
                (
                    s.name.to_owned(),
                    s.scopes,
                    "",
                    s.off_the_record,
                    true,
                    None,
                )
            }
            // A spread target: valid from anywhere, on the record.
            None if i % spread_step == 1 && spread.len() < spread_n => {
                spread.push(key.reveal().to_owned());
                (
                    format!("svc-{i:06}"),
                    "keys:read verify",
                    "",
                    false,
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
        if (i + 1) % ROWS_PER_INSERT == 0 || i + 1 == keys {
            sql.push(';');
            conn.batch_execute(&sql)?;
            sql.clear();
        }
    }
    conn.batch_execute("COMMIT")?;
    let stored = diesel::sql_query("SELECT COUNT(*) AS id FROM api_keys").get_result::<Id>(conn)?;
    if stored.id != keys as i64 {
        return Err(format!("{} keys stored, expected {keys}", stored.id).into());
    }
    if specials.iter().any(|s| s.plain.is_empty()) {
        return Err("too few keys for the bench's special keys".into());
    }
    if postgres {
        // VACUUM cannot share a multi-statement batch (an implicit transaction).
        conn.batch_execute("VACUUM (ANALYZE) api_keys")?;
        conn.batch_execute("ANALYZE")?;
    } else {
        conn.batch_execute("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    let valid_key_id = specials[2].key_id.clone();
    let valid_id = diesel::sql_query(format!(
        "SELECT id FROM api_keys WHERE key_id = {}",
        sql_str(&valid_key_id)
    ))
    .get_result::<Id>(conn)?
    .id;
    let [caller, reader, valid, valid_otr] = specials.map(|s| s.plain);

    // A generated key with one checksum character changed: refused by its shape.
    let mut malformed = PlainKey::generate("lk").0.reveal().to_owned();
    let last = malformed.pop().ok_or("empty key")?;
    malformed.push(if last == 'A' { 'B' } else { 'A' });
    if !matches!(PlainKey::parse(&malformed), Err(KeyFormatError::Checksum)) {
        return Err("the malformed key does not fail on its checksum".into());
    }
    let unknown = PlainKey::generate("lk").0.reveal().to_owned();
    let mut bad_bearer = "lk_notakey_".to_owned();
    while bad_bearer.len() < unknown.len() {
        bad_bearer.push('x');
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  {label}: {keys} keys seeded in {seconds:.0} s ({} spread targets)",
        spread.len()
    );
    Ok(Seeded {
        caller,
        reader,
        valid,
        valid_key_id,
        valid_id,
        valid_otr,
        malformed,
        unknown,
        bad_bearer,
        spread,
        seconds,
    })
}

// ---------------------------------------------------------------------------------
// Reading back

#[derive(QueryableByName)]
struct Sized {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// What the server has written so far, as the bench sees it in the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The newest request-log id: raw rows are only ever appended (pruning takes the
    /// oldest), so its growth is the rows written.
    pub raw: i64,
    /// All keys' day rollups summed: each counted use adds one.
    pub counted: i64,
}

/// Database size in bytes: in all, and the rollups and the raw log (with their
/// indexes) when the backend can tell.
#[derive(Clone, Copy, Debug, Default)]
pub struct Size {
    pub total: i64,
    pub rollups: Option<i64>,
    pub raw: Option<i64>,
}

/// A connection of the bench's own to the bench database.
pub struct Probe {
    pool: Pool,
    sqlite_file: Option<std::path::PathBuf>,
}

impl Probe {
    pub fn open(url: &str) -> Res<Self> {
        Ok(Probe {
            pool: db::connect(url, 1)?,
            sqlite_file: url.strip_prefix("sqlite://").map(Into::into),
        })
    }

    fn one(&self, sql: &str) -> Res<i64> {
        let mut pooled = self.pool.get()?;
        let conn: &mut DbConnection = &mut pooled;
        Ok(diesel::sql_query(sql).get_result::<Id>(conn)?.id)
    }

    pub fn written(&self) -> Res<Written> {
        Ok(Written {
            raw: self.one("SELECT COALESCE(MAX(id), 0) AS id FROM request_log")?,
            counted: self.one(
                "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS id FROM usage_rollups \
                 WHERE period = 'day'",
            )?,
        })
    }

    /// Sum of `key`'s rollups of `period` with `outcome`.
    pub fn rollup_total(&self, key: i64, period: &str, outcome: &str) -> Res<i64> {
        self.one(&format!(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS id FROM usage_rollups \
             WHERE api_key_id = {key} AND period = {} AND outcome = {}",
            sql_str(period),
            sql_str(outcome)
        ))
    }

    /// VALID day rollups of every key but key 0.
    pub fn valid_total(&self) -> Res<i64> {
        self.one(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS id FROM usage_rollups \
             WHERE period = 'day' AND outcome = 'VALID' AND api_key_id <> 0",
        )
    }

    pub fn size(&self) -> Res<Size> {
        let mut pooled = self.pool.get()?;
        let conn: &mut DbConnection = &mut pooled;
        let Some(file) = &self.sqlite_file else {
            let rows: Vec<Sized> = diesel::sql_query(
                "SELECT 'total' AS name, pg_database_size(current_database()) AS bytes \
                 UNION ALL SELECT 'usage_rollups', pg_total_relation_size('usage_rollups') \
                 UNION ALL SELECT 'request_log', pg_total_relation_size('request_log')",
            )
            .load(conn)?;
            let get = |n: &str| rows.iter().find(|r| r.name == n).map(|r| r.bytes);
            return Ok(Size {
                total: get("total").unwrap_or(0),
                rollups: get("usage_rollups"),
                raw: get("request_log"),
            });
        };
        // Everything into the main file first, so its size is the database's.
        conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")?;
        let len = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len() as i64);
        let wal = std::path::PathBuf::from(format!("{}-wal", file.display()));
        let total = len(file) + len(&wal);
        // Per table with its indexes, where SQLite was built with the dbstat table.
        let tables: Option<Vec<Sized>> = diesel::sql_query(
            "SELECT m.tbl_name AS name, CAST(SUM(s.pgsize) AS BIGINT) AS bytes \
             FROM dbstat s JOIN sqlite_master m ON m.name = s.name GROUP BY m.tbl_name",
        )
        .load(conn)
        .ok();
        let get = |n: &str| {
            tables
                .as_ref()
                .map(|t| t.iter().find(|r| r.name == n).map_or(0, |r| r.bytes))
        };
        Ok(Size {
            total,
            rollups: get("usage_rollups"),
            raw: get("request_log"),
        })
    }
}
