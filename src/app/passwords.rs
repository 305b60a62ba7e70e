//! Password hashing and checking (argon2id) off the async executor, holding no
//! database connection, and at most `LATCHKEY_PASSWORD_CHECKS` at once (one per core but
//! one by default). A login flood therefore waits in this queue: it cannot hold the
//! pool's connections (`/healthz` and verification need them) or every blocking thread.
//! The hashes run on spare CPU (`spare_cpu`: threads of the lowest priority, while the
//! machine has CPU to spare): argon2 takes only what answering requests leaves, so a
//! flood of logins does not slow `/healthz` or verification (issue 11: their p95 within
//! 2× of idle), and on a busy machine logins still get their share. A login that has
//! already waited half its allowance for its turn takes no more chances with spare CPU:
//! it runs at normal priority at once, so a burst of real logins is not told "busy".

use std::time::{Duration, Instant};

use crate::db::DbError;
use crate::domain::password;
use crate::spare_cpu::on_spare_thread;
use crate::state::AppState;

use super::error::{AppResult, Error};

/// How long a login may wait for its turn before it is told to come back.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// The queue was too long: the caller answers "busy, try again".
#[derive(Debug)]
pub struct Busy;

/// A turn in the queue: held by a whole login (its two short transactions and the
/// hash between them), so a flood also holds at most this many pool connections.
pub struct Turn {
    _permit: tokio::sync::OwnedSemaphorePermit,
    /// The login waited half of [`QUEUE_WAIT`] or more for it.
    late: bool,
}

pub async fn turn(state: &AppState) -> Result<Turn, Busy> {
    let asked = Instant::now();
    match tokio::time::timeout(QUEUE_WAIT, state.password_checks.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(Turn {
            _permit: permit,
            late: asked.elapsed() >= QUEUE_WAIT / 2,
        }),
        Ok(Err(_)) | Err(_) => Err(Busy),
    }
}

/// Runs one hash or check on spare CPU (or twice: see `spare_cpu`), or at once at
/// normal priority for a login that has waited long already.
async fn hashing<T: Send + 'static>(
    state: &AppState,
    turn: &Turn,
    f: impl Fn() -> T + Send + Sync + 'static,
) -> AppResult<T> {
    let answer = if turn.late {
        state.spare_cpu.run_now(f).await
    } else {
        state.spare_cpu.run(f).await
    };
    answer.map_err(|_| Error::Db(DbError::Canceled))
}

async fn guarded<T: Send + 'static>(
    state: &AppState,
    f: impl Fn() -> T + Send + Sync + 'static,
) -> AppResult<Result<T, Busy>> {
    let Ok(turn) = turn(state).await else {
        return Ok(Err(Busy));
    };
    let value = hashing(state, &turn, f).await?;
    drop(turn);
    Ok(Ok(value))
}

/// Whether `plain` matches `stored` (a PHC string; `None` checks a dummy hash, so an
/// unknown name costs the same time as a wrong password). The caller holds a [`Turn`].
pub async fn verify(
    state: &AppState,
    turn: &Turn,
    plain: String,
    stored: Option<String>,
) -> AppResult<bool> {
    hashing(state, turn, move || match stored.as_deref() {
        Some(stored) => password::verify(&plain, stored, on_spare_thread()),
        None => password::verify(&plain, password::dummy_hash(), on_spare_thread()),
    })
    .await
}

/// A new argon2id hash of `plain`.
pub async fn hash(state: &AppState, plain: String) -> AppResult<String> {
    match guarded(state, move || password::hash(&plain)).await? {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(e)) => Err(Error::Db(DbError::Config(e))),
        Err(Busy) => Err(Error::conflict(
            "BUSY",
            "Too many password checks at once; try again in a moment.",
        )),
    }
}
