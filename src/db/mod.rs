//! The database: one code path over SQLite and PostgreSQL.
//!
//! `DbConnection` is a diesel `MultiConnection`; the backend is picked from the URL
//! scheme by our own r2d2 manager (diesel's derived `establish` tries every backend and
//! would turn a PostgreSQL typo into a new SQLite file). Every query goes through
//! [`run`], which takes a pooled connection on actix's blocking pool, so no database
//! work ever runs on the async executor and no connection is held across an `.await`.
//!
//! Write transactions start with a write statement: on SQLite a deferred transaction
//! that reads first and writes later can fail with SQLITE_BUSY instead of waiting.

pub mod audit;
pub mod changes;
pub mod channels;
pub mod credits;
pub mod imports;
pub mod key_list;
pub mod key_search;
pub mod keys;
pub mod login_attempts;
pub mod outbox;
pub mod postback_secrets;
pub mod raw_log;
pub mod reminders;
pub mod rollups;
pub mod schema;
pub mod sessions;
pub mod two_factor;
pub mod usage;
pub mod users;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConnection = r2d2::PooledConnection<Manager>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("the blocking pool is gone")]
    Canceled,
    #[error("{0}")]
    Config(String),
}

impl DbError {
    /// True when a unique index refused the write (a name taken, a race lost).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// Where the data lives, parsed from `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://` and `postgresql://` select PostgreSQL; `sqlite://PATH`,
    /// `sqlite:PATH` or a plain path select SQLite. Any other scheme is refused so that
    /// a typo never silently creates an empty SQLite database.
    pub fn parse(url: &str) -> DbResult<Self> {
        let url = url.trim();
        if url.is_empty() {
            return Err(DbError::Config("DATABASE_URL is empty".into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(DbError::Config("DATABASE_URL names no SQLite file".into()));
            }
            return Ok(DatabaseUrl::Sqlite(path.to_owned()));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(DbError::Config(format!(
                "unsupported DATABASE_URL scheme `{scheme}://`: use sqlite://PATH or postgres://..."
            )));
        }
        Ok(DatabaseUrl::Sqlite(url.to_owned()))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

/// r2d2 manager that opens the backend the URL names and reports its real error.
pub struct Manager {
    url: DatabaseUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Postgresql)
                .map_err(r2d2::Error::ConnectionError),
            DatabaseUrl::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the single writer; busy_timeout makes a
                // writer wait for the lock instead of failing at once. It comes first:
                // the pool opens its connections at once, and `journal_mode` reads the
                // database, which another one may hold. Set after it, a connection
                // failed there with SQLITE_BUSY and r2d2 tried again after a pause
                // (every start waited ~400 ms for its pool).
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Opens the pool and runs the embedded migrations of the chosen backend.
pub fn connect(url: &str, max_size: u32) -> DbResult<Pool> {
    let url = DatabaseUrl::parse(url)?;
    // A SQLite connection is a file handle that cannot drop; only a PostgreSQL one is
    // worth a `SELECT 1` round trip before each use.
    let test_on_check_out = matches!(url, DatabaseUrl::Postgres(_));
    let pool = r2d2::Pool::builder()
        .max_size(max_size.max(1))
        .test_on_check_out(test_on_check_out)
        .connection_timeout(Duration::from_secs(5))
        .build(Manager { url })
        .map_err(|e| DbError::Config(format!("cannot open the database: {e}")))?;
    migrate(&mut *pool.get()?)?;
    Ok(pool)
}

fn migrate(conn: &mut DbConnection) -> DbResult<()> {
    let result = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| DbError::Config(format!("migrations failed: {e}")))
}

/// Call first in a write transaction. SQLite runs transactions deferred: one that reads
/// first and writes later cannot upgrade while another writer holds the lock, and fails
/// with SQLITE_BUSY at once instead of waiting (`busy_timeout` does not apply). A
/// statement that writes (even zero rows) takes the write lock at the start, so the
/// transaction waits its turn here. PostgreSQL locks rows as it writes and needs nothing.
pub fn begin_write(conn: &mut DbConnection) -> DbResult<()> {
    if let DbConnection::Sqlite(c) = conn {
        c.batch_execute("UPDATE channels SET id = id WHERE 0")?;
    }
    Ok(())
}

/// Runs `f` with a pooled connection on the blocking thread pool.
pub async fn run<T, F>(pool: &Pool, f: F) -> DbResult<T>
where
    F: FnOnce(&mut DbConnection) -> DbResult<T> + Send + 'static,
    T: Send + 'static,
{
    run_with(pool, f).await
}

/// [`run`] for a closure with an error type of its own (a use case's error).
pub async fn run_with<T, E, F>(pool: &Pool, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get().map_err(DbError::from)?;
        f(&mut conn)
    })
    .await
    .map_err(|_| DbError::Canceled)?
}

/// The current time as stored: UTC without offset, to the microsecond (PostgreSQL's
/// precision, so a value read back compares equal to the one written).
pub fn now() -> time::PrimitiveDateTime {
    let now = time::OffsetDateTime::now_utc();
    let micros = now.microsecond();
    let now = now.replace_microsecond(micros).unwrap_or(now);
    time::PrimitiveDateTime::new(now.date(), now.time())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_pick_the_backend_by_scheme() {
        assert!(
            matches!(DatabaseUrl::parse("latchkey.db"), Ok(DatabaseUrl::Sqlite(p)) if p == "latchkey.db")
        );
        assert!(
            matches!(DatabaseUrl::parse("sqlite:///tmp/x.db"), Ok(DatabaseUrl::Sqlite(p)) if p == "/tmp/x.db")
        );
        assert!(
            matches!(DatabaseUrl::parse("sqlite://x.db"), Ok(DatabaseUrl::Sqlite(p)) if p == "x.db")
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(DatabaseUrl::parse("postgress://u@h/db").is_err());
        assert!(DatabaseUrl::parse("mysql://u@h/db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("  ").is_err());
    }

    /// A connection opened while another holds the database waits for it instead of
    /// failing with SQLITE_BUSY (which cost every start a retry pause in r2d2).
    #[test]
    fn a_sqlite_connection_waits_for_a_busy_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db").display().to_string();
        let mut holder = SqliteConnection::establish(&path).unwrap();
        // A database not yet in WAL mode, locked whole: `journal_mode` cannot read it.
        holder
            .batch_execute("CREATE TABLE t (x INTEGER); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);")
            .unwrap();
        let manager = Manager {
            url: DatabaseUrl::Sqlite(path),
        };
        let opening = std::thread::spawn(move || manager.connect().map(|_| ()));
        std::thread::sleep(std::time::Duration::from_millis(300));
        holder.batch_execute("COMMIT").unwrap();
        let opened = opening.join().unwrap();
        assert!(opened.is_ok(), "{:?}", opened.err().map(|e| e.to_string()));
    }
}
