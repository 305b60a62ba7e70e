//! Background use cases: expiry notices for keys about to expire, and freeing the
//! slots of rolled keys whose grace is over.

use diesel::Connection;

use crate::db::keys;
use crate::state::AppState;

use super::actor::Actor;
use super::error::AppResult;
use super::events::Event;
use super::run::{read, write};

/// Queues `key.expiring` once for every key with a POSTback URL that expires within
/// `window`. The conditional claim makes sure only one instance queues it.
pub async fn queue_expiry_notices(state: &AppState, window: time::Duration) -> AppResult<usize> {
    let due = read(state, move |c| {
        Ok(keys::expiring_unnoticed(c, window, 500)?)
    })
    .await?;
    let mut queued = 0;
    for (key, channel) in due {
        let claimed = write(state, &Actor::System("system"), move |c, events| {
            if !keys::claim_expiry_notice(c, key.id)? {
                return Ok(false);
            }
            events.emit(
                c,
                Event::KeyExpiring {
                    key: &key,
                    channel: &channel,
                },
            )?;
            Ok(true)
        })
        .await?;
        queued += usize::from(claimed);
    }
    Ok(queued)
}

/// Rolled keys whose grace is over give their slot back to their channel.
pub async fn retire_ended_rolls(state: &AppState) -> AppResult<usize> {
    read(state, |c| {
        Ok(c.transaction(|c| keys::retire_ended_rolls(c, None))?)
    })
    .await
}
