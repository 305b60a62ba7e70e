//! Password hashing and checking (argon2id) off the async executor, holding no
//! database connection, and at most `LATCHKEY_PASSWORD_CHECKS` at once (one per core by
//! default). A login flood therefore waits in this queue: it cannot hold the pool's
//! connections (`/healthz` and verification need them) or every blocking thread.

use std::time::Duration;

use crate::db::DbError;
use crate::domain::password;
use crate::state::AppState;

use super::error::{AppResult, Error};

/// How long a login may wait for its turn before it is told to come back.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// The queue was too long: the caller answers "busy, try again".
#[derive(Debug)]
pub struct Busy;

/// A turn in the queue: held by a whole login (its two short transactions and the
/// hash between them), so a flood also holds at most this many pool connections.
pub type Turn = tokio::sync::OwnedSemaphorePermit;

pub async fn turn(state: &AppState) -> Result<Turn, Busy> {
    match tokio::time::timeout(QUEUE_WAIT, state.password_checks.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) | Err(_) => Err(Busy),
    }
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
    let value = blocking(f).await?;
    drop(turn);
    Ok(Ok(value))
}

/// Whether `plain` matches `stored` (a PHC string; `None` checks a dummy hash, so an
/// unknown name costs the same time as a wrong password). The caller holds a [`Turn`].
pub async fn verify(_turn: &Turn, plain: String, stored: Option<String>) -> AppResult<bool> {
    blocking(move || match stored.as_deref() {
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
