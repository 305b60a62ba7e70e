//! Bulk actions: activate, deactivate, delete or set the expiry of many keys at once,
//! for the dashboard and the API alike.
//!
//! The whole request needs what the single-key action needs (the person's role, the
//! key's `keys:write` scope). A filter selection is resolved here, from the filter,
//! within what the actor may see. Then the keys are changed in chunks of
//! [`CHUNK`] per transaction, each key through the very step its single-key use case
//! runs (`app::keys`), so each is locked, checked for reach and (for an API key) by
//! `app::policy`, audited, and its change record and POSTback event are written with
//! it. A key that is refused (out of reach, already deleted, a policy rule) is rolled
//! back to its savepoint and reported; the others go ahead.

use diesel::Connection;
use time::PrimitiveDateTime;

use crate::db::channels;
use crate::db::key_list;
use crate::db::keys::ApiKey;
use crate::db::{DbConnection, DbResult};
use crate::domain::bulk::{BulkAction, CHUNK, MAX_KEYS, Selection};
use crate::domain::key_settings::KeySettings;
use crate::domain::list::Within;
use crate::domain::role::Action;
use crate::domain::webhook::Sealer;
use crate::state::AppState;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::Recorder;
use super::keys::{delete_step, load_channel, load_key, set_active_step, update_step};
use super::policy::SCOPE_WRITE;
use super::run::{read, write};

/// One key in a result.
#[derive(Debug, Clone)]
pub struct Item {
    pub key_id: String,
    pub name: String,
}

/// A key the action was refused for, and why.
#[derive(Debug, Clone)]
pub struct RefusedItem {
    pub key_id: String,
    pub code: &'static str,
    pub reason: String,
}

/// What a bulk action did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub action: BulkAction,
    pub changed: Vec<Item>,
    /// Already in the wanted state (already inactive, already that expiry): untouched.
    pub unchanged: Vec<Item>,
    pub refused: Vec<RefusedItem>,
}

fn keys_word(n: usize) -> &'static str {
    if n == 1 { "key" } else { "keys" }
}

impl Outcome {
    /// "130 keys deactivated. 7 refused: 5 in the system channel, which only admins
    /// may change; 2 not found (already deleted, or out of reach)."
    pub fn summary(&self) -> String {
        let n = self.changed.len();
        let mut text = format!("{n} {} {}.", keys_word(n), self.action.done());
        if !self.unchanged.is_empty() {
            let already = match self.action {
                BulkAction::Activate => "already active",
                BulkAction::Deactivate => "already inactive",
                BulkAction::SetExpiry => "already had that expiry",
                BulkAction::Delete => "unchanged",
            };
            text.push_str(&format!(" {} {already}.", self.unchanged.len()));
        }
        if !self.refused.is_empty() {
            let mut groups: Vec<(&str, usize)> = Vec::new();
            for r in &self.refused {
                match groups.iter_mut().find(|(reason, _)| *reason == r.reason) {
                    Some((_, count)) => *count += 1,
                    None => groups.push((&r.reason, 1)),
                }
            }
            let parts: Vec<String> = groups
                .iter()
                .map(|(reason, count)| format!("{count} {reason}"))
                .collect();
            text.push_str(&format!(
                " {} refused: {}.",
                self.refused.len(),
                parts.join("; ")
            ));
        }
        text
    }
}

/// Why a key was refused, in words that read after a count ("5 in the system channel").
fn reason(e: &Error) -> (&'static str, String) {
    match e {
        Error::NotFound => (
            "NOT_FOUND",
            "not found (already deleted, or out of reach)".into(),
        ),
        Error::Refused(r) if r.code == "FORBIDDEN" => (
            r.code,
            "in the system channel, which only admins may change".into(),
        ),
        Error::Refused(r) | Error::Conflict(r) => {
            (r.code, r.message.trim_end_matches('.').to_owned())
        }
        Error::NameTaken => ("NAME_TAKEN", "name taken".into()),
        Error::Db(_) => ("ERROR", "database error".into()),
    }
}

/// The request as a whole: what the single-key action needs.
fn may(actor: &Actor, action: BulkAction) -> AppResult<()> {
    actor.require(action.permission())?;
    actor.require_scope(SCOPE_WRITE)
}

/// Where a filter selection looks: the given channel (if in reach), else every channel
/// the actor may see (a channel key: its own channel).
fn within(conn: &mut DbConnection, actor: &Actor, channel: Option<i64>) -> AppResult<Within> {
    if let Some(id) = channel {
        return Ok(Within::Channel(load_channel(conn, actor, id)?.id));
    }
    match actor {
        Actor::Key(k) if !k.key.channel_is_system => Ok(Within::Channel(k.key.channel_id)),
        Actor::Key(_) | Actor::System(_) => Ok(Within::AllExcept(None)),
        Actor::Person(_) => {
            actor.require(Action::SearchAllKeys)?;
            let hidden = if actor.require(Action::UseSystemChannel).is_ok() {
                None
            } else {
                system_channel(conn)?
            };
            Ok(Within::AllExcept(hidden))
        }
    }
}

fn system_channel(conn: &mut DbConnection) -> DbResult<Option<i64>> {
    Ok(channels::list(conn)?
        .into_iter()
        .find(|c| c.is_system)
        .map(|c| c.id))
}

fn too_many(n: i64) -> Error {
    Error::conflict(
        "TOO_MANY_KEYS",
        format!(
            "{n} keys match; a bulk action changes at most {MAX_KEYS} at a time. Narrow the filter."
        ),
    )
}

/// How many keys the selection holds (what the confirmation states).
pub async fn count(
    state: &AppState,
    actor: &Actor,
    action: BulkAction,
    selection: &Selection,
) -> AppResult<i64> {
    may(actor, action)?;
    match selection {
        Selection::Ids(ids) => Ok(ids.len() as i64),
        Selection::Matching { channel, query } => {
            let (a, channel, query) = (actor.clone(), *channel, query.clone());
            let n = read(state, move |c| {
                let w = within(c, &a, channel)?;
                Ok(key_list::count_matching(c, w, &query)?)
            })
            .await?;
            if n > MAX_KEYS as i64 {
                return Err(too_many(n));
            }
            Ok(n)
        }
    }
}

/// The key ids to act on. A filter never selects the calling API key itself (a key
/// that deactivated or deleted itself halfway would leave the rest undone); it is
/// reported instead, and may be named by id.
async fn resolve(
    state: &AppState,
    actor: &Actor,
    selection: Selection,
) -> AppResult<(Vec<String>, Vec<RefusedItem>)> {
    match selection {
        Selection::Ids(ids) => Ok((ids, Vec::new())),
        Selection::Matching { channel, query } => {
            let a = actor.clone();
            let mut ids = read(state, move |c| {
                let w = within(c, &a, channel)?;
                Ok(key_list::matching_key_ids(
                    c,
                    w,
                    &query,
                    MAX_KEYS as i64 + 1,
                )?)
            })
            .await?;
            if ids.len() > MAX_KEYS {
                return Err(too_many(ids.len() as i64));
            }
            let mut skipped = Vec::new();
            if let Actor::Key(k) = actor {
                if let Some(at) = ids.iter().position(|i| *i == k.key.key_id) {
                    skipped.push(RefusedItem {
                        key_id: ids.remove(at),
                        code: "CALLING_KEY",
                        reason: "the calling key itself (name it by id to include it)".into(),
                    });
                }
            }
            Ok((ids, skipped))
        }
    }
}

/// A key's settings with another expiry (what "Set expiry" changes).
fn with_expiry(k: &ApiKey, expires_at: Option<PrimitiveDateTime>) -> KeySettings {
    KeySettings {
        expires_at,
        ..k.settings()
    }
}

enum Done {
    Changed(Item),
    Unchanged(Item),
}

fn item(k: &ApiKey) -> Item {
    Item {
        key_id: k.key_id.clone(),
        name: k.name.clone(),
    }
}

/// One key, inside the chunk's transaction: the single-key use case's step.
fn one(
    c: &mut DbConnection,
    events: &mut Recorder,
    a: &Actor,
    sealer: &Sealer,
    action: BulkAction,
    expires_at: Option<PrimitiveDateTime>,
    key_id: &str,
) -> AppResult<Done> {
    let (before, channel) = load_key(c, a, key_id, true)?;
    let ch = channel.name.as_str();
    Ok(match action {
        BulkAction::Deactivate if !before.enabled => Done::Unchanged(item(&before)),
        BulkAction::Activate if before.enabled => Done::Unchanged(item(&before)),
        BulkAction::SetExpiry if before.expires_at == expires_at => Done::Unchanged(item(&before)),
        BulkAction::Activate | BulkAction::Deactivate => {
            let active = action == BulkAction::Activate;
            Done::Changed(item(&set_active_step(c, events, a, before, ch, active)?))
        }
        BulkAction::Delete => Done::Changed(item(&delete_step(c, events, a, before, ch)?)),
        BulkAction::SetExpiry => {
            let settings = with_expiry(&before, expires_at);
            let (after, _) = update_step(c, events, a, sealer, before, ch, &settings)?;
            Done::Changed(item(&after))
        }
    })
}

/// Runs `action` over the selection (`expires_at` for [`BulkAction::SetExpiry`]; `None`
/// there means "never expires").
pub async fn run(
    state: &AppState,
    actor: &Actor,
    action: BulkAction,
    selection: Selection,
    expires_at: Option<PrimitiveDateTime>,
) -> AppResult<Outcome> {
    may(actor, action)?;
    let (ids, skipped) = resolve(state, actor, selection).await?;
    let mut outcome = Outcome {
        action,
        changed: Vec::new(),
        unchanged: Vec::new(),
        refused: skipped,
    };
    for chunk in ids.chunks(CHUNK) {
        let (a, chunk, sealer) = (actor.clone(), chunk.to_vec(), state.sealer.clone());
        let results = write(state, actor, move |c, events| {
            let mut results = Vec::with_capacity(chunk.len());
            for key_id in chunk {
                // A savepoint per key: a refused key leaves nothing behind.
                let r = c.transaction(|c| one(c, events, &a, &sealer, action, expires_at, &key_id));
                match r {
                    Err(Error::Db(e)) => return Err(Error::Db(e)),
                    r => results.push((key_id, r)),
                }
            }
            Ok(results)
        })
        .await?;
        for (key_id, r) in results {
            match r {
                Ok(Done::Changed(i)) => outcome.changed.push(i),
                Ok(Done::Unchanged(i)) => outcome.unchanged.push(i),
                Err(e) => {
                    let (code, reason) = reason(&e);
                    outcome.refused.push(RefusedItem {
                        key_id,
                        code,
                        reason,
                    });
                }
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item {
                key_id: format!("{i:012}"),
                name: format!("k{i}"),
            })
            .collect()
    }

    fn refused(code: &'static str, reason: &str) -> RefusedItem {
        RefusedItem {
            key_id: "AAAAAAAAAAAA".into(),
            code,
            reason: reason.into(),
        }
    }

    #[test]
    fn the_summary_counts_what_was_done_and_groups_refusals() {
        let outcome = Outcome {
            action: BulkAction::Deactivate,
            changed: items(130),
            unchanged: items(3),
            refused: vec![
                refused(
                    "FORBIDDEN",
                    "in the system channel, which only admins may change",
                ),
                refused("NOT_FOUND", "not found (already deleted, or out of reach)"),
                refused(
                    "FORBIDDEN",
                    "in the system channel, which only admins may change",
                ),
            ],
        };
        assert_eq!(
            outcome.summary(),
            "130 keys deactivated. 3 already inactive. 3 refused: 2 in the system channel, \
             which only admins may change; 1 not found (already deleted, or out of reach)."
        );
        let one = Outcome {
            action: BulkAction::Delete,
            changed: items(1),
            unchanged: Vec::new(),
            refused: Vec::new(),
        };
        assert_eq!(one.summary(), "1 key deleted.");
    }
}
