//! Credits this instance has reserved and spends from memory.
//!
//! A verification of a key with a credit limit spends from the key's block here; only
//! when the block runs short does it reserve another from the database
//! (`db::credits::reserve`). A block is void once the balance was set since
//! (`credit_epoch` grew) or its refill period ended; blocks idle for a while go back
//! to the database (`background`), and all of them at shutdown.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::PrimitiveDateTime;

use crate::db::credits::Reserved;
use crate::fxhash::FxBuild;

type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

/// How long "the balance is spent" is believed without asking the database again.
const SPENT_FOR: Duration = Duration::from_millis(250);

#[derive(Debug)]
struct Block {
    epoch: i64,
    left: i64,
    /// The database's unreserved balance when this block was last topped up.
    db_left: i64,
    period_ends: Option<PrimitiveDateTime>,
    used_at: Instant,
    spent_until: Option<Instant>,
}

/// What spending found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Spent; about this many remain (this block and the database's balance).
    Spent { remaining: i64 },
    /// The balance was found spent a moment ago.
    Spent0,
    /// Reserve at least this many from the database, then try again.
    Reserve { need: i64 },
}

/// A block to give back to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unspent {
    pub key: i64,
    pub epoch: i64,
    pub credits: i64,
}

#[derive(Default)]
pub struct CreditPool {
    blocks: Mutex<FxHashMap<i64, Block>>,
}

impl CreditPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<i64, Block>> {
        self.blocks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spends `cost` credits of key `key` (row id) from its block. `epoch` is the
    /// balance epoch this instance last read with the key: a block older than it is void.
    pub fn spend(&self, key: i64, epoch: i64, cost: i64, now: PrimitiveDateTime) -> Attempt {
        let mut blocks = self.lock();
        let Some(b) = blocks.get_mut(&key) else {
            return Attempt::Reserve { need: cost };
        };
        if b.epoch < epoch || b.period_ends.is_some_and(|end| now >= end) {
            blocks.remove(&key);
            return Attempt::Reserve { need: cost };
        }
        b.used_at = Instant::now();
        if b.left >= cost {
            b.left -= cost;
            return Attempt::Spent {
                remaining: b.left + b.db_left,
            };
        }
        if b.spent_until.is_some_and(|t| Instant::now() < t) {
            return Attempt::Spent0;
        }
        Attempt::Reserve {
            need: cost - b.left,
        }
    }

    /// Adds a block reserved from the database. A block of an older epoch than the one
    /// held is void (the balance was set since): the newer one replaces it.
    pub fn add(&self, key: i64, r: Reserved) {
        let mut blocks = self.lock();
        let now = Instant::now();
        let b = blocks.entry(key).or_insert(Block {
            epoch: r.epoch,
            left: 0,
            db_left: r.left,
            period_ends: r.period_ends,
            used_at: now,
            spent_until: None,
        });
        if r.epoch > b.epoch {
            b.epoch = r.epoch;
            b.left = 0;
            b.period_ends = r.period_ends;
        } else if r.epoch < b.epoch {
            return;
        }
        b.left += r.taken;
        b.db_left = r.left;
        b.used_at = now;
        b.spent_until = (r.taken == 0).then(|| now + SPENT_FOR);
    }

    /// What this instance holds of a key's credits (for the key page).
    pub fn held(&self, key: i64) -> i64 {
        self.lock().get(&key).map_or(0, |b| b.left)
    }

    /// Forgets a key's block without giving it back (its balance was set here).
    pub fn forget(&self, key: i64) {
        self.lock().remove(&key);
    }

    /// Removes the blocks idle for `idle` (all of them with `Duration::ZERO`), to be
    /// given back.
    pub fn take_idle(&self, idle: Duration) -> Vec<Unspent> {
        let now = Instant::now();
        let mut out = Vec::new();
        self.lock().retain(|&key, b| {
            if now.duration_since(b.used_at) < idle {
                return true;
            }
            if b.left > 0 {
                out.push(Unspent {
                    key,
                    epoch: b.epoch,
                    credits: b.left,
                });
            }
            false
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: PrimitiveDateTime = datetime!(2026-11-30 12:00);

    fn block(taken: i64, epoch: i64) -> Reserved {
        Reserved {
            taken,
            epoch,
            left: 100,
            period_ends: Some(datetime!(2026-12-01 0:00)),
        }
    }

    #[test]
    fn spends_from_the_block_then_asks_for_more() {
        let pool = CreditPool::default();
        assert_eq!(pool.spend(1, 0, 2, NOW), Attempt::Reserve { need: 2 });
        pool.add(1, block(3, 0));
        assert_eq!(pool.spend(1, 0, 2, NOW), Attempt::Spent { remaining: 101 });
        assert_eq!(pool.spend(1, 0, 2, NOW), Attempt::Reserve { need: 1 });
        pool.add(1, block(0, 0));
        assert_eq!(pool.spend(1, 0, 2, NOW), Attempt::Spent0);
    }

    #[test]
    fn a_set_or_a_new_period_voids_the_block() {
        let pool = CreditPool::default();
        pool.add(1, block(10, 0));
        assert_eq!(pool.spend(1, 1, 1, NOW), Attempt::Reserve { need: 1 });
        pool.add(1, block(10, 1));
        assert_eq!(
            pool.spend(1, 1, 1, datetime!(2026-12-01 0:00)),
            Attempt::Reserve { need: 1 }
        );
        assert!(pool.take_idle(Duration::ZERO).is_empty());
    }

    #[test]
    fn idle_blocks_are_handed_back() {
        let pool = CreditPool::default();
        pool.add(7, block(10, 2));
        pool.spend(7, 0, 4, NOW);
        assert!(pool.take_idle(Duration::from_secs(60)).is_empty());
        assert_eq!(
            pool.take_idle(Duration::ZERO),
            vec![Unspent {
                key: 7,
                epoch: 2,
                credits: 6
            }]
        );
        assert_eq!(pool.held(7), 0);
    }
}
