//! Credits: spent by valid verifications (from blocks this instance reserved, see
//! `credits` and `db::credits`), given back when unused, and set, added or subtracted
//! by a person or a key (audited).

use crate::credits::{Attempt, Unspent};
use crate::db::{self, DbResult, Pool};
use crate::domain::key_settings::CreditsChange;
use crate::domain::role::Action;
use crate::state::AppState;
use crate::verification::CachedKey;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::Event;
use super::keys::change_key;
use super::policy;

/// The most credits one block takes from the database.
const BLOCK_MAX: i64 = 10_000;

/// What a verification's credit check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditCheck {
    /// The key has no credit limit (or the request cost nothing).
    NotCounted,
    /// Spent; about this many remain.
    Spent { remaining: i64 },
    /// Not enough credits left: `USAGE_EXCEEDED`.
    Exceeded,
}

/// Spends `cost` credits of `key`, if it has a credit limit. Never overspends: blocks
/// are taken from the database atomically and spent under a lock.
pub async fn spend(state: &AppState, key: &CachedKey, cost: i64) -> DbResult<CreditCheck> {
    if !key.credit_limited || cost == 0 {
        return Ok(CreditCheck::NotCounted);
    }
    let now = state.clock.now();
    for _ in 0..4 {
        match state.credits.spend(key.id, key.credit_epoch, cost, now) {
            Attempt::Spent { remaining } => return Ok(CreditCheck::Spent { remaining }),
            Attempt::Spent0 => return Ok(CreditCheck::Exceeded),
            Attempt::Reserve { need } => {
                let id = key.id;
                let reserved = db::run(&state.pool, move |c| {
                    db::credits::reserve(c, id, need, BLOCK_MAX, now)
                })
                .await?;
                let Some(r) = reserved else {
                    // The limit was removed since this key was cached.
                    return Ok(CreditCheck::NotCounted);
                };
                state.credits.add(id, r);
                if r.taken == 0 {
                    return Ok(CreditCheck::Exceeded);
                }
            }
        }
    }
    Ok(CreditCheck::Exceeded)
}

/// Gives unspent blocks back to the database (those of a balance set since are
/// dropped). Returns the credits given back.
pub async fn give_back(pool: &Pool, blocks: Vec<Unspent>) -> DbResult<i64> {
    if blocks.is_empty() {
        return Ok(0);
    }
    db::run(pool, move |c| {
        let mut n = 0;
        for b in blocks {
            if db::credits::give_back(c, b.key, b.epoch, b.credits)? {
                n += b.credits;
            }
        }
        Ok(n)
    })
    .await
}

/// A change of a key's credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOp {
    /// Remaining credits become this (blocks held by instances are void).
    Set(i64),
    Add(i64),
    /// Down to 0 at most.
    Subtract(i64),
    /// No credit limit any more.
    Unlimited,
}

impl CreditOp {
    fn describe(self) -> String {
        match self {
            CreditOp::Set(n) => format!("set to {n}"),
            CreditOp::Add(n) => format!("added {n}"),
            CreditOp::Subtract(n) => format!("subtracted {n}"),
            CreditOp::Unlimited => "limit removed".into(),
        }
    }
}

/// Sets, adds or subtracts credits (audited as `key.credits`). A key may not change
/// its own (`LIMIT_ESCALATION`); adding to a key without a credit limit is refused.
pub async fn change(
    state: &AppState,
    actor: &Actor,
    key_id: String,
    op: CreditOp,
) -> AppResult<crate::db::keys::ApiKey> {
    let now = state.clock.now();
    let after = change_key(
        state,
        actor,
        key_id,
        Action::EditKey,
        move |c, events, a, before, channel| {
            if let Actor::Key(k) = a {
                policy::may_change_credits(&k.key, &before)?;
            }
            match op {
                CreditOp::Set(n) => db::credits::apply(c, before.id, CreditsChange::Set(n), now)?,
                CreditOp::Unlimited => {
                    db::credits::apply(c, before.id, CreditsChange::Unlimited, now)?;
                }
                CreditOp::Add(n) | CreditOp::Subtract(n) => {
                    let delta = if matches!(op, CreditOp::Add(_)) {
                        n
                    } else {
                        -n
                    };
                    if db::credits::add(c, before.id, delta)?.is_none() {
                        return Err(Error::refused(
                            "NO_CREDIT_LIMIT",
                            "This key has no credit limit: set its credits first.",
                        ));
                    }
                }
            }
            let after = db::keys::lock_by_id(c, before.id)?.ok_or(Error::NotFound)?;
            events.emit(
                c,
                Event::CreditsChanged {
                    before: &before,
                    after: &after,
                    channel,
                    what: &op.describe(),
                },
            )?;
            Ok(after)
        },
    )
    .await?;
    if matches!(op, CreditOp::Set(_) | CreditOp::Unlimited) {
        state.credits.forget(after.id);
    }
    Ok(after)
}
