//! Key use cases: find, list, create, update, rename, activate / deactivate, delete.
//! (Rolling is in `app::roll`.) Each is the one implementation the dashboard and the
//! API share.

use std::sync::Arc;
use std::time::Duration;

use crate::db::DbConnection;
use crate::db::channels::{self, Channel};
use crate::db::key_list::{self, Count, KeyPage};
use crate::db::keys::{self, ApiKey, NewKey};
use crate::domain::key::PlainKey;
use crate::domain::key_settings::KeySettings;
use crate::domain::list::{Filter, ListQuery, Within};
use crate::domain::role::Action;
use crate::domain::webhook::SigningSecret;
use crate::key_reads::KeyRead;
use crate::state::AppState;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::{Event, Recorder};
use super::policy::{self, SCOPE_READ, SCOPE_WRITE};
use super::run::{read, write};

/// Loads a channel the actor may see.
pub fn load_channel(conn: &mut DbConnection, actor: &Actor, id: i64) -> AppResult<Channel> {
    let channel = channels::find(conn, id)?.ok_or(Error::NotFound)?;
    actor.reach(&channel)?;
    Ok(channel)
}

/// Loads a key (locked for writing when `lock`) and its channel, if within reach.
pub(super) fn load_key(
    conn: &mut DbConnection,
    actor: &Actor,
    key_id: &str,
    lock: bool,
) -> AppResult<(ApiKey, Channel)> {
    let key = if lock {
        keys::lock(conn, key_id)?
    } else {
        keys::find_by_key_id(conn, key_id)?
    }
    .ok_or(Error::NotFound)?;
    let channel = load_channel(conn, actor, key.channel_id)?;
    Ok((key, channel))
}

fn may_view(actor: &Actor) -> AppResult<()> {
    actor.require(Action::ViewKeys)?;
    actor.require_scope(SCOPE_READ)
}

/// A channel, for its keys page or the API's list.
pub async fn channel(state: &AppState, actor: &Actor, id: i64) -> AppResult<Channel> {
    may_view(actor)?;
    let actor = actor.clone();
    read(state, move |c| load_channel(c, &actor, id)).await
}

/// One key and its channel.
pub async fn find(state: &AppState, actor: &Actor, key_id: String) -> AppResult<(ApiKey, Channel)> {
    may_view(actor)?;
    let actor = actor.clone();
    // One joined query: the API's `GET /keys/{id}` is a read path worth its own index walk.
    let (key, channel) = read(state, move |c| {
        Ok(keys::find_with_channel_by_key_id(c, &key_id)?)
    })
    .await?
    .ok_or(Error::NotFound)?;
    actor.reach(&channel)?;
    Ok((key, channel))
}

/// One key and its channel as the API's `GET /keys/{id}` reads it: from memory when
/// read within `key_read_fresh_ms` and not changed since (`key_reads`), else with
/// [`find`]'s query. The caller's scope and reach are checked on every request.
pub async fn find_recent(
    state: &AppState,
    actor: &Actor,
    key_id: String,
) -> AppResult<Arc<KeyRead>> {
    may_view(actor)?;
    let fresh_for = Duration::from_millis(state.settings.key_read_fresh_ms);
    let id = key_id.clone();
    let held = state
        .reads
        .get_with(&key_id, fresh_for, || async move {
            let found = read(state, move |c| {
                Ok(keys::find_with_channel_by_key_id(c, &id)?)
            })
            .await?;
            Ok::<_, Error>(found.map(|(k, c)| (k.key_hash.clone(), KeyRead::new(k, c))))
        })
        .await?
        .ok_or(Error::NotFound)?;
    actor.reach(&held.channel)?;
    Ok(held)
}

/// A name for a new key that is free in the channel: "Key 3" for the third, or the
/// next free number (the generate form starts with it; people may type over it).
pub async fn suggest_name(state: &AppState, actor: &Actor, channel: &Channel) -> AppResult<String> {
    actor.require(Action::CreateKey)?;
    let (id, start) = (channel.id, channel.key_count + 1);
    read(state, move |c| {
        for n in start..start + 1_000 {
            let name = format!("Key {n}");
            if !keys::name_taken(c, id, &name)? {
                return Ok(name);
            }
        }
        Ok(String::new())
    })
    .await
}

/// A key to edit and its channel: what the edit form and the API's merge start from.
pub async fn find_for_edit(
    state: &AppState,
    actor: &Actor,
    key_id: String,
) -> AppResult<(ApiKey, Channel)> {
    actor.require(Action::EditKey)?;
    actor.require_scope(SCOPE_WRITE)?;
    let actor = actor.clone();
    read(state, move |c| load_key(c, &actor, &key_id, false)).await
}

/// One page of keys. `unfiltered_total` is the list's size without a filter (the
/// channel's `key_count`, or the sum over channels). A filtered total comes from the
/// remembered totals when known; else it is counted, exactly when the query asks
/// (`count_all`), otherwise up to [`key_list::CAP`], and an exact one is remembered.
pub async fn list_page(
    state: &AppState,
    actor: &Actor,
    within: Within,
    query: &ListQuery,
    unfiltered_total: i64,
) -> AppResult<KeyPage> {
    may_view(actor)?;
    if let Within::AllExcept(_) = within {
        actor.require(Action::SearchAllKeys)?;
    }
    let remember = crate::counts::FilterCounts::key(within, query);
    let unfiltered = matches!(query.filter, Filter::None) && query.risk.is_none();
    let known = if unfiltered {
        Some(unfiltered_total)
    } else {
        remember.as_deref().and_then(|k| state.counts.get(k))
    };
    let count = match known {
        Some(n) => Count::Known(n),
        None if query.count_all => Count::Exact,
        None => Count::Capped {
            list: unfiltered_total,
        },
    };
    let generation = state.counts.generation();
    let q = query.clone();
    let page = read(state, move |c| {
        Ok(key_list::list_page(c, within, &q, count)?)
    })
    .await?;
    if let (None, Some(k), false) = (known, remember, page.capped) {
        state.counts.put(k, generation, page.total);
    }
    Ok(page)
}

/// A new key: its plaintext and, when it has a POSTback URL, its signing secret are
/// returned once.
pub struct Created {
    pub key: ApiKey,
    pub plain: PlainKey,
    pub postback_secret: Option<SigningSecret>,
}

/// A new key with `settings` in the channel.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    channel_id: i64,
    settings: KeySettings,
) -> AppResult<Created> {
    actor.require(Action::CreateKey)?;
    actor.require_scope(SCOPE_WRITE)?;
    if let Actor::Key(k) = actor {
        policy::may_create(&k.key, &settings)?;
    }
    let (plain, parts) = PlainKey::generate(&state.settings.key_prefix);
    let hash = plain.hash();
    let default_limit = state.settings.max_keys_per_channel;
    let (a, created_by) = (actor.clone(), actor.who().name);
    let sealer = state.sealer.clone();
    let (key, postback_secret) = write(state, actor, move |c, events| {
        let channel = load_channel(c, &a, channel_id)?;
        if !keys::reserve_slot(c, channel.id, default_limit)? {
            return Err(limit_reached(&channel, default_limit));
        }
        let key = keys::insert(
            c,
            &NewKey {
                channel_id: channel.id,
                settings: &settings,
                parts: &parts,
                hash: &hash,
                created_by: &created_by,
                deactivated_by_person: false,
            },
        )?;
        let secret = super::signing::ensure_secret(c, &sealer, &key)?;
        events.emit(
            c,
            Event::KeyCreated {
                key: &key,
                channel: &channel.name,
            },
        )?;
        Ok((key, secret))
    })
    .await?;
    Ok(Created {
        key,
        plain,
        postback_secret,
    })
}

/// Whether a key that is to be `active` (or not) stays marked as deactivated by a
/// person: a person deactivating marks it, activating clears it, and anything else
/// (a key deactivating an already inactive key, an edit that leaves it inactive)
/// keeps the mark, so no API call can wash it out.
fn person_deactivated(before: &ApiKey, active: bool, by_person: bool) -> bool {
    if active {
        false
    } else if before.enabled {
        by_person
    } else {
        before.deactivated_by_person || by_person
    }
}

pub fn limit_reached(channel: &Channel, default_limit: i64) -> Error {
    let limit = channel.effective_limit(default_limit);
    Error::conflict(
        "LIMIT_REACHED",
        format!(
            "This channel has reached its limit of {limit} {}. Delete a key, or ask an admin to raise the limit.",
            if limit == 1 { "key" } else { "keys" }
        ),
    )
}

/// What every change of one existing key shares: the person's role and the key's scope,
/// then, in one transaction, the key locked and within reach, handed to `f` for its own
/// checks, write and event.
pub(super) async fn change_key<T, F>(
    state: &AppState,
    actor: &Actor,
    key_id: String,
    action: Action,
    f: F,
) -> AppResult<T>
where
    F: FnOnce(&mut DbConnection, &mut Recorder, &Actor, ApiKey, &str) -> AppResult<T>
        + Send
        + 'static,
    T: Send + 'static,
{
    actor.require(action)?;
    actor.require_scope(SCOPE_WRITE)?;
    let a = actor.clone();
    write(state, actor, move |c, events| {
        let (before, channel) = load_key(c, &a, &key_id, true)?;
        f(c, events, &a, before, &channel.name)
    })
    .await
}

/// The steps below are the single-key use cases' bodies, inside a transaction that has
/// locked `before` (in reach of the actor, whose role and scope were checked): the
/// single-key use cases run one each, `app::bulk` runs many per transaction.
pub(super) fn update_step(
    c: &mut DbConnection,
    events: &mut Recorder,
    a: &Actor,
    sealer: &crate::domain::webhook::Sealer,
    before: ApiKey,
    channel: &str,
    settings: &KeySettings,
) -> AppResult<(ApiKey, Option<SigningSecret>)> {
    if let Actor::Key(k) = a {
        policy::may_update(&k.key, &before, settings)?;
    }
    if before.enabled && !settings.enabled {
        // A deactivation in the edit form counts like the Deactivate button.
        a.require(Action::RevokeKey)?;
    }
    if !before.enabled && settings.enabled {
        a.require(Action::ActivateKey)?;
    }
    let by_person = person_deactivated(&before, settings.enabled, a.is_person());
    let after = keys::update_settings(c, before.id, settings, by_person)?;
    if before.expires_at != after.expires_at {
        // Reminders start over for the new date.
        crate::db::reminders::forget(c, before.id)?;
    }
    let secret = super::signing::ensure_secret(c, sealer, &after)?;
    let event = Event::KeyUpdated {
        before: &before,
        after: &after,
        channel,
    };
    events.emit(c, event)?;
    Ok((after, secret))
}

/// Replaces every setting of a key (not the key itself). A key that gets its first
/// POSTback URL gets a signing secret, returned once.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    key_id: String,
    settings: KeySettings,
) -> AppResult<(ApiKey, Option<SigningSecret>)> {
    let sealer = state.sealer.clone();
    change_key(
        state,
        actor,
        key_id,
        Action::EditKey,
        move |c, events, a, before, channel| {
            update_step(c, events, a, &sealer, before, channel, &settings)
        },
    )
    .await
}

pub async fn rename(
    state: &AppState,
    actor: &Actor,
    key_id: String,
    name: String,
) -> AppResult<ApiKey> {
    change_key(
        state,
        actor,
        key_id,
        Action::EditKey,
        move |c, events, a, before, channel| {
            if let Actor::Key(k) = a {
                policy::may_change(&k.key, &before)?;
            }
            let after = keys::rename(c, before.id, &name)?;
            let event = Event::KeyRenamed {
                before: &before,
                after: &after,
                channel,
            };
            events.emit(c, event)?;
            Ok(after)
        },
    )
    .await
}

pub(super) fn set_active_step(
    c: &mut DbConnection,
    events: &mut Recorder,
    a: &Actor,
    before: ApiKey,
    channel: &str,
    active: bool,
) -> AppResult<ApiKey> {
    if let Actor::Key(k) = a {
        if active {
            policy::may_activate(&k.key, &before)?;
        } else {
            policy::may_change(&k.key, &before)?;
        }
    }
    let by_person = person_deactivated(&before, active, a.is_person());
    let key = keys::set_active(c, before.id, active, by_person)?;
    events.emit(
        c,
        if active {
            Event::KeyActivated { key: &key, channel }
        } else {
            Event::KeyDeactivated { key: &key, channel }
        },
    )?;
    Ok(key)
}

/// Activates (`active`) or deactivates a key.
pub async fn set_active(
    state: &AppState,
    actor: &Actor,
    key_id: String,
    active: bool,
) -> AppResult<ApiKey> {
    let action = if active {
        Action::ActivateKey
    } else {
        Action::RevokeKey
    };
    change_key(
        state,
        actor,
        key_id,
        action,
        move |c, events, a, before, channel| set_active_step(c, events, a, before, channel, active),
    )
    .await
}

pub(super) fn delete_step(
    c: &mut DbConnection,
    events: &mut Recorder,
    a: &Actor,
    before: ApiKey,
    channel: &str,
) -> AppResult<ApiKey> {
    if let Actor::Key(k) = a {
        policy::may_change(&k.key, &before)?;
    }
    let key = keys::delete(c, before.id)?;
    events.emit(c, Event::KeyDeleted { key: &key, channel })?;
    Ok(key)
}

pub async fn delete(state: &AppState, actor: &Actor, key_id: String) -> AppResult<ApiKey> {
    change_key(state, actor, key_id, Action::RevokeKey, delete_step).await
}

/// How many keys `within` show each risk (the risk overview).
pub async fn risk_counts(
    state: &AppState,
    actor: &Actor,
) -> AppResult<Vec<(crate::domain::list::Risk, i64)>> {
    may_view(actor)?;
    actor.require(Action::SearchAllKeys)?;
    let show_system = actor.require(Action::UseSystemChannel).is_ok();
    read(state, move |c| {
        let hidden = if show_system {
            None
        } else {
            channels::list(c)?
                .into_iter()
                .find(|ch| ch.is_system)
                .map(|ch| ch.id)
        };
        crate::domain::list::Risk::ALL
            .into_iter()
            .map(|r| Ok((r, key_list::count_risk(c, Within::AllExcept(hidden), r)?)))
            .collect()
    })
    .await
}

/// Per channel the actor may see, how many keys expire within `days` (the Channels
/// page's banner), soonest-named channels first.
pub async fn expiring_soon(
    state: &AppState,
    actor: &Actor,
    days: i64,
) -> AppResult<Vec<(Channel, i64)>> {
    may_view(actor)?;
    let a = actor.clone();
    let now = crate::db::now();
    read(state, move |c| {
        let counts = key_list::expiring_per_channel(c, now, time::Duration::days(days))?;
        let mut out = Vec::new();
        for ch in channels::list(c)? {
            let Some((_, n)) = counts.iter().find(|(id, _)| *id == ch.id) else {
                continue;
            };
            if a.reach(&ch).is_ok() {
                out.push((ch, *n));
            }
        }
        Ok(out)
    })
    .await
}
