//! Rolling a key: a successor with every setting copied takes the old key's name and
//! is shown once; the old key is renamed and keeps working for the grace period, never
//! past its own expiry.
//!
//! - Exactly one successor: the old key is locked and checked inside the transaction,
//!   so of simultaneous rolls one wins and the others get `ALREADY_ROLLED`.
//! - The limit counts live keys: a roll with a grace needs a free slot (the old key
//!   holds its slot until its grace ends); a roll that stops the old key at once hands
//!   the old key's slot to the successor.
//! - The old key's new name carries its key id, so rolls in the same minute never
//!   collide on names.

use crate::db::keys::{self, ApiKey, NewKey};
use crate::db::now;
use crate::domain::grace::Grace;
use crate::domain::key::PlainKey;
use crate::domain::key_settings::{CreditsChange, KeySettings, NAME_MAX};
use crate::domain::role::Action;
use crate::state::AppState;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::Event;
use super::keys::{limit_reached, load_channel};
use super::policy::{self, SCOPE_WRITE};
use super::run::write;

pub struct Rolled {
    pub old: ApiKey,
    pub new: ApiKey,
    pub plain: PlainKey,
}

pub async fn roll(
    state: &AppState,
    actor: &Actor,
    key_id: String,
    grace: Grace,
) -> AppResult<Rolled> {
    actor.require(Action::CreateKey)?;
    actor.require_scope(SCOPE_WRITE)?;
    let (plain, parts) = PlainKey::generate(&state.settings.key_prefix);
    let hash = plain.hash();
    let default_limit = state.settings.max_keys_per_channel;
    let (a, created_by) = (actor.clone(), actor.who().name);
    let (old, new) = write(state, actor, move |c, events| {
        let before = keys::lock(c, &key_id)?.ok_or(Error::NotFound)?;
        let channel = load_channel(c, &a, before.channel_id)?;
        if let Actor::Key(k) = &a {
            policy::may_roll(&k.key, &before)?;
        }
        if before.rolled_to_key_id.is_some() {
            return Err(Error::conflict(
                "ALREADY_ROLLED",
                "This key was already rolled; roll its successor instead.",
            ));
        }
        let t = now();
        let ends = before
            .expires_at
            .map_or(t + grace.duration(), |e| e.min(t + grace.duration()));
        let keeps_slot = ends > t;
        if keeps_slot && !keys::reserve_slot(c, channel.id, default_limit)? {
            return Err(limit_reached(&channel, default_limit));
        }
        // The credit balance moves to the successor: spent by either, never twice.
        if before.credits.is_some() {
            crate::db::credits::apply(c, before.id, CreditsChange::Set(0), t)?;
        }
        let old = keys::mark_rolled(
            c,
            before.id,
            &rolled_name(&before.name, &before.key_id),
            ends,
            &parts.key_id,
            keeps_slot,
        )?;
        let settings = copied_settings(&before);
        let new = keys::insert(
            c,
            &NewKey {
                channel_id: before.channel_id,
                settings: &settings,
                parts: &parts,
                hash: &hash,
                created_by: &created_by,
                deactivated_by_person: before.deactivated_by_person,
            },
        )?;
        // The successor signs its POSTbacks with the same secrets: receivers need no change.
        crate::db::postback_secrets::copy(c, before.id, new.id)?;
        events.emit(
            c,
            Event::KeyRolled {
                old: &old,
                new: &new,
                channel: &channel.name,
            },
        )?;
        Ok((old, new))
    })
    .await?;
    Ok(Rolled { old, new, plain })
}

/// The successor's settings: everything of the old key, under its original name.
/// Its credit balance moves with it (the old key keeps a limit of 0).
fn copied_settings(old: &ApiKey) -> KeySettings {
    KeySettings {
        credits: old.credits.map_or(CreditsChange::Keep, CreditsChange::Set),
        ..old.settings()
    }
}

/// `billing` → `billing (rolled 2026-11-29 · 3fQ9aZx1Lm0P)`: the key id makes it unique
/// however often a name is rolled in a day; long names are cut so the result stays
/// within the name limit.
fn rolled_name(name: &str, key_id: &str) -> String {
    let stamp = now().date();
    let suffix = format!(" (rolled {stamp} · {key_id})");
    let room = NAME_MAX.saturating_sub(suffix.chars().count());
    if name.chars().count() <= room {
        format!("{name}{suffix}")
    } else {
        let cut: String = name.chars().take(room.saturating_sub(1)).collect();
        format!("{cut}…{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_names_are_unique_per_key_and_within_the_limit() {
        let a = rolled_name("billing", "AAAAAAAAAAAA");
        let b = rolled_name("billing", "BBBBBBBBBBBB");
        assert!(a.starts_with("billing (rolled "));
        assert_ne!(a, b);
        let long = rolled_name(&"x".repeat(100), "AAAAAAAAAAAA");
        assert!(long.chars().count() <= NAME_MAX, "{long}");
        assert!(long.contains("… (rolled "));
    }
}
