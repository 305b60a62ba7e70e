//! Password hashing and checking (argon2id) off the async executor, holding no
//! database connection, and at most `LATCHKEY_PASSWORD_CHECKS` at once (one per core by
//! default). A login flood therefore waits in this queue: it cannot hold the pool's
//! connections (`/healthz` and verification need them) or every blocking thread.

use std::time::{Duration, Instant};

use crate::db::DbError;
use crate::domain::password;
use crate::state::AppState;

use super::error::{AppResult, Error};

/// How long a login may wait for its turn before it is told to come back.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// While logins queue, password hashing takes at most a quarter of its turns' time:
/// after each hash the next waits three times as long as that hash took. (Seven, an
/// eighth, made 64 concurrent logins queue past `QUEUE_WAIT`: 503 busy answers.) A flood of
/// logins then leaves verification and `/healthz` most of the machine (issue 11's
/// target: their p95 within 2× of idle); one login alone never waits.
const REST_PER_HASH: u32 = 3;

/// The queue was too long: the caller answers "busy, try again".
#[derive(Debug)]
pub struct Busy;

/// A turn in the queue: held by a whole login (its two short transactions and the
/// hash between them), so a flood also holds at most this many pool connections.
pub type Turn = tokio::sync::OwnedSemaphorePermit;

pub async fn turn(state: &AppState) -> Result<Turn, Busy> {
    let permit =
        match tokio::time::timeout(QUEUE_WAIT, state.password_checks.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => return Err(Busy),
        };
    // The rest the previous hash left, if it is not over yet.
    let rest_until = state.password_rest.lock().ok().and_then(|r| *r);
    if let Some(until) = rest_until {
        let now = Instant::now();
        if until > now {
            tokio::time::sleep(until - now).await;
        }
    }
    Ok(permit)
}

/// Runs one hash or check on the blocking pool, then sets the rest before the next.
async fn hashing<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> T + Send + 'static,
) -> AppResult<T> {
    let started = Instant::now();
    let value = blocking(f).await?;
    let turns = u32::try_from(state.password_checks_total.max(1)).unwrap_or(1);
    let rest = started.elapsed() * REST_PER_HASH / turns;
    if let Ok(mut r) = state.password_rest.lock() {
        *r = Some(Instant::now() + rest);
    }
    Ok(value)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    actix_web::web::block(f)
        .await
        .map_err(|_| Error::Db(DbError::Canceled))
}

async fn guarded<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> T + Send + 'static,
) -> AppResult<Result<T, Busy>> {
    let Ok(turn) = turn(state).await else {
        return Ok(Err(Busy));
    };
    let value = hashing(state, f).await?;
    drop(turn);
    Ok(Ok(value))
}

/// Whether `plain` matches `stored` (a PHC string; `None` checks a dummy hash, so an
/// unknown name costs the same time as a wrong password). The caller holds a [`Turn`].
pub async fn verify(
    state: &AppState,
    _turn: &Turn,
    plain: String,
    stored: Option<String>,
) -> AppResult<bool> {
    hashing(state, move || match stored.as_deref() {
        Some(stored) => password::verify(&plain, stored),
        None => password::verify(&plain, password::dummy_hash()),
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
