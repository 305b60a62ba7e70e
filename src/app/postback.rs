//! POSTback use cases: each key's Standard Webhooks signing secret (made when the key
//! first gets a URL and shown once, rolled with a 24-hour overlap), "Send test event",
//! "Resend", and turning a POSTback off when its receiver answers 410 Gone.

use time::PrimitiveDateTime;

use crate::db::keys::{self, ApiKey};
use crate::db::{now, outbox, postback_secrets};
use crate::domain::role::Action;
use crate::domain::webhook::SigningSecret;
use crate::state::AppState;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::Event;
use super::keys::load_key;
use super::policy::{self, SCOPE_WRITE};
use super::run::write;
use super::signing::seal;

/// How long a rolled signing secret keeps signing beside its successor.
pub const OVERLAP: time::Duration = time::Duration::hours(24);

fn may_manage(actor: &Actor) -> AppResult<()> {
    actor.require(Action::EditKey)?;
    actor.require_scope(SCOPE_WRITE)
}

fn check_key(actor: &Actor, key: &ApiKey) -> AppResult<()> {
    if let Actor::Key(k) = actor {
        policy::may_manage_postback(&k.key, key)?;
    }
    Ok(())
}

fn no_url() -> Error {
    Error::conflict(
        "NO_POSTBACK_URL",
        "This key has no POSTback URL. Set one in its settings first.",
    )
}

/// A new signing secret, shown once; the old one signs beside it until the returned time.
pub async fn roll_secret(
    state: &AppState,
    actor: &Actor,
    key_id: String,
) -> AppResult<(ApiKey, SigningSecret, PrimitiveDateTime)> {
    may_manage(actor)?;
    let a = actor.clone();
    let sealer = state.sealer.clone();
    write(state, actor, move |c, events| {
        let (key, channel) = load_key(c, &a, &key_id, true)?;
        check_key(&a, &key)?;
        if key.postback_url.is_none() {
            return Err(no_url());
        }
        let overlap_ends = now() + OVERLAP;
        postback_secrets::retire_current(c, key.id, overlap_ends)?;
        let secret = SigningSecret::generate();
        postback_secrets::insert(c, key.id, &seal(&sealer, &secret)?)?;
        events.emit(
            c,
            Event::PostbackSecretRolled {
                key: &key,
                channel: &channel.name,
                overlap_ends,
            },
        )?;
        Ok((key, secret, overlap_ends))
    })
    .await
}

/// Queues a `key.test` event to the key's receiver.
pub async fn send_test(state: &AppState, actor: &Actor, key_id: String) -> AppResult<ApiKey> {
    may_manage(actor)?;
    let a = actor.clone();
    write(state, actor, move |c, events| {
        let (key, channel) = load_key(c, &a, &key_id, true)?;
        check_key(&a, &key)?;
        if key.postback_url.is_none() {
            return Err(no_url());
        }
        events.emit(
            c,
            Event::PostbackTest {
                key: &key,
                channel: &channel.name,
            },
        )?;
        Ok(key)
    })
    .await
}

/// Queues one of the key's deliveries again, with the same `webhook-id`.
pub async fn resend(
    state: &AppState,
    actor: &Actor,
    key_id: String,
    delivery: i64,
) -> AppResult<ApiKey> {
    may_manage(actor)?;
    let a = actor.clone();
    let key = write(state, actor, move |c, events| {
        let (key, channel) = load_key(c, &a, &key_id, true)?;
        check_key(&a, &key)?;
        let event_type = outbox::event_type_of(c, key.id, delivery)?.ok_or(Error::NotFound)?;
        if !outbox::resend(c, key.id, delivery)? {
            return Err(Error::conflict(
                "DELIVERY_IN_FLIGHT",
                "This event is being sent right now. Try again in a moment.",
            ));
        }
        events.emit(
            c,
            Event::PostbackResent {
                key: &key,
                channel: &channel.name,
                event_type: &event_type,
            },
        )?;
        Ok(key)
    })
    .await?;
    state.postback_wake.notify_one();
    Ok(key)
}

/// The receiver at `url` answered 410 Gone: if the key still sends there, its POSTback
/// is turned off (audited, shown on its page and the Risks page) and its other pending
/// events to that receiver are dropped.
pub async fn receiver_gone(state: &AppState, api_key_id: i64, url: String) -> AppResult<bool> {
    write(state, &Actor::System("postback"), move |c, events| {
        let Some(before) = keys::lock_by_id(c, api_key_id)? else {
            return Ok(false);
        };
        if before.postback_url.as_deref() != Some(url.as_str()) {
            return Ok(false);
        }
        let channel = crate::db::channels::find(c, before.channel_id)?
            .map(|ch| ch.name)
            .unwrap_or_default();
        let key = keys::turn_off_postback(c, before.id)?;
        outbox::abandon(c, before.id, &url)?;
        events.emit(
            c,
            Event::PostbackGone {
                before: &before,
                key: &key,
                channel: &channel,
            },
        )?;
        Ok(true)
    })
    .await
}
