//! A key's credit balance in the database: what no instance has reserved yet.
//!
//! Instances take credits in blocks ([`reserve`], one short transaction with the key's
//! row locked) and spend them from memory (`credits::CreditPool`); what a block leaves
//! unspent goes back with [`give_back`] — unless the balance was set outright since
//! (a set or a refill bumps `credit_epoch`), when it is dropped. So the database's
//! balance plus every instance's unspent blocks never exceeds what the key may spend: a
//! crash loses blocks (under-serves), nothing over-serves.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::api_keys;
use super::{DbConnection, DbResult, begin_write};
use crate::domain::key_settings::CreditsChange;
use crate::domain::limits::{Period, Refill};

/// A block taken from the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    /// Credits taken (0 when the balance could not cover `need`).
    pub taken: i64,
    /// The balance's epoch the block belongs to.
    pub epoch: i64,
    /// What is left in the database after the block.
    pub left: i64,
    /// When the current refill period ends (the block is void after it).
    pub period_ends: Option<PrimitiveDateTime>,
}

type Row = (
    Option<i64>,
    i64,
    Option<String>,
    Option<i64>,
    Option<PrimitiveDateTime>,
);

fn locked(conn: &mut DbConnection, id: i64) -> DbResult<Option<Row>> {
    begin_write(conn)?;
    let n = diesel::update(api_keys::table.find(id))
        .set(api_keys::credit_epoch.eq(api_keys::credit_epoch))
        .execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(api_keys::table
        .find(id)
        .select((
            api_keys::credits,
            api_keys::credit_epoch,
            api_keys::refill_period,
            api_keys::refill_amount,
            api_keys::refilled_at,
        ))
        .first(conn)
        .optional()?)
}

fn refill_of(period: Option<&str>, amount: Option<i64>) -> Option<Refill> {
    Some(Refill {
        period: Period::parse(period?)?,
        amount: amount?,
    })
}

/// Takes at least `need` credits from the balance — more when it is large: an eighth
/// of it, up to `block` — refilling it first when a refill period has begun. Blocks
/// shrink as the balance does, so little is stranded on an instance near the end. `None`: the key has no credit limit (or is
/// gone).
pub fn reserve(
    conn: &mut DbConnection,
    id: i64,
    need: i64,
    block: i64,
    now: PrimitiveDateTime,
) -> DbResult<Option<Reserved>> {
    conn.transaction(|c| {
        let Some((Some(mut credits), mut epoch, period, amount, refilled_at)) = locked(c, id)?
        else {
            return Ok(None);
        };
        let refill = refill_of(period.as_deref(), amount);
        let mut changed = false;
        if let Some(r) = refill.filter(|r| r.due(refilled_at, now)) {
            credits = r.amount;
            epoch += 1;
            changed = true;
            diesel::update(api_keys::table.find(id))
                .set((
                    api_keys::credit_epoch.eq(epoch),
                    api_keys::refilled_at.eq(Some(now)),
                ))
                .execute(c)?;
        }
        let taken = if credits >= need {
            credits.min(need.max((credits / 8).min(block)))
        } else {
            0
        };
        if taken > 0 || changed {
            diesel::update(api_keys::table.find(id))
                .set(api_keys::credits.eq(Some(credits - taken)))
                .execute(c)?;
        }
        Ok(Some(Reserved {
            taken,
            epoch,
            left: credits - taken,
            period_ends: refill.map(|r| r.period.next(now)),
        }))
    })
}

/// Returns an unspent block, if the balance is still of the block's epoch.
pub fn give_back(conn: &mut DbConnection, id: i64, epoch: i64, n: i64) -> DbResult<bool> {
    if n <= 0 {
        return Ok(true);
    }
    let done = diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::credit_epoch.eq(epoch))
            .filter(api_keys::credits.is_not_null()),
    )
    .set(api_keys::credits.eq((api_keys::credits.assume_not_null() + n).nullable()))
    .execute(conn)?;
    Ok(done == 1)
}

/// Applies a settings change to the balance (in the caller's write transaction).
pub fn apply(
    conn: &mut DbConnection,
    id: i64,
    change: CreditsChange,
    now: PrimitiveDateTime,
) -> DbResult<()> {
    let credits = match change {
        CreditsChange::Keep => return Ok(()),
        CreditsChange::Unlimited => None,
        CreditsChange::Set(n) => Some(n),
    };
    diesel::update(api_keys::table.find(id))
        .set((
            api_keys::credits.eq(credits),
            api_keys::credit_epoch.eq(api_keys::credit_epoch + 1),
            api_keys::refilled_at.eq(Some(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Adds `delta` (negative: subtracts, down to 0) to a limited balance, in the caller's
/// write transaction. Blocks held by instances stay theirs. Returns the new balance;
/// `None` when the key has no credit limit.
pub fn add(conn: &mut DbConnection, id: i64, delta: i64) -> DbResult<Option<i64>> {
    let Some((Some(credits), ..)) = locked(conn, id)? else {
        return Ok(None);
    };
    let next = credits
        .saturating_add(delta)
        .clamp(0, crate::domain::limits::CREDITS_MAX);
    diesel::update(api_keys::table.find(id))
        .set(api_keys::credits.eq(Some(next)))
        .execute(conn)?;
    Ok(Some(next))
}
