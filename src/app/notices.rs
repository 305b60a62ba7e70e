//! Background use cases: expiry reminders for keys about to expire, and freeing the
//! slots of rolled keys whose grace is over.
//!
//! Each lead time of `LATCHKEY_EXPIRY_REMINDER_DAYS` (default 30, 7 and 1 days) sends
//! its `key.expiring` event once per key: the reminder is recorded (`db::reminders`) in
//! the transaction that queues the event, after the key's lock, so a restart or a
//! second instance never sends it again. A key whose expiry is closer than several lead
//! times gets only the shortest of them (a key made to expire in 5 days hears "5 days
//! left" once, not a 30-day reminder too). Changing the expiry starts over.

use diesel::Connection;
use time::Duration;

use crate::db::{keys, reminders};
use crate::domain::clock::days_left;
use crate::state::AppState;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::Event;
use super::run::{read, write};

/// Keys looked at per lead time and scan (the next scan takes the rest).
const BATCH: i64 = 500;

/// Queues the `key.expiring` reminders that are due at the state's clock; returns how
/// many were queued.
pub async fn queue_expiry_notices(state: &AppState) -> AppResult<usize> {
    let now = state.clock.now();
    // Shortest lead first: each lead time covers the expiries between it and the next
    // shorter one.
    let mut leads = state.settings.reminder_leads();
    leads.reverse();
    let mut queued = 0;
    let mut shorter = Duration::ZERO;
    for lead in leads {
        let after = shorter;
        let due = read(state, move |c| {
            Ok(reminders::due(c, now, lead, after, BATCH)?)
        })
        .await?;
        for (key, channel) in due {
            queued += usize::from(remind(state, key.id, channel, lead, now).await?);
        }
        shorter = Duration::days(lead);
    }
    Ok(queued)
}

/// Records and queues one reminder, unless the key changed meanwhile or another
/// instance sent it first.
async fn remind(
    state: &AppState,
    id: i64,
    channel: String,
    lead: i64,
    now: time::PrimitiveDateTime,
) -> AppResult<bool> {
    let sent = write(state, &Actor::System("system"), move |c, events| {
        let Some(key) = keys::lock_by_id(c, id)? else {
            return Ok(false);
        };
        let Some(expires_at) = key.expires_at else {
            return Ok(false);
        };
        let within = expires_at > now && expires_at <= now + Duration::days(lead);
        if !within || key.postback_url.is_none() || reminders::told(c, id, lead)? {
            return Ok(false);
        }
        reminders::record(c, id, lead, expires_at, now)?;
        events.emit(
            c,
            Event::KeyExpiring {
                key: &key,
                channel: &channel,
                days_left: days_left(now, expires_at),
            },
        )?;
        Ok(true)
    })
    .await;
    match sent {
        // Another instance recorded it between our read and our lock.
        Err(Error::NameTaken) => Ok(false),
        other => other,
    }
}

/// Rolled keys whose grace is over give their slot back to their channel.
pub async fn retire_ended_rolls(state: &AppState) -> AppResult<usize> {
    read(state, |c| {
        Ok(c.transaction(|c| keys::retire_ended_rolls(c, None))?)
    })
    .await
}
