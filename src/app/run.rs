//! The runners every use case goes through: [`write`] (one transaction, its events,
//! then this instance forgets what changed) and [`read`].

use diesel::Connection;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events;
use crate::db::audit::Who;
use crate::db::{self, DbConnection};
use crate::state::AppState;

/// Runs a write use case: `f` in one transaction with a recorder for its events, then
/// this instance forgets what changed before the caller answers.
pub async fn write<T, F>(state: &AppState, actor: &Actor, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConnection, &mut events::Recorder) -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    write_as(state, actor.who(), f).await
}

/// [`write`] for somebody who is not an actor yet: a person logging in, named as the
/// audit log names them.
pub async fn write_as<T, F>(state: &AppState, who: Who, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConnection, &mut events::Recorder) -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let origin = state.instance.clone();
    let (value, changes, queued) = db::run_with(&state.pool, move |c| {
        c.transaction(|c| {
            db::begin_write(c)?;
            let mut recorder = events::Recorder::from_instance(who, &origin);
            let value = f(c, &mut recorder)?;
            let queued = recorder.queued();
            Ok::<_, Error>((value, recorder.into_changes(), queued))
        })
    })
    .await?;
    state.forget(&changes);
    if queued {
        state.postback_wake.notify_one();
    }
    Ok(value)
}

/// Runs a read use case on the blocking pool.
pub async fn read<T, F>(state: &AppState, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConnection) -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    db::run_with(&state.pool, f).await
}
