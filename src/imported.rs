//! Verification of imported keys (`domain::imported`): a presented key that is not in
//! Latchkey's format is looked up by its SHA-256 and SHA-512 digests, but only when
//! imported keys exist. [`ImportIndex`] remembers whether they do, so the hot path pays
//! two atomic loads and nothing else when there are none:
//! - an import on this instance marks them present at once ([`ImportIndex::mark_present`]);
//! - otherwise the answer is asked from the database at most once a second while none
//!   are known (another instance may have imported), and once a minute while some are
//!   (they may all have been deleted or rolled).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::db::{self, DbResult, Pool};
use crate::domain::imported::candidates;
use crate::key_cache::KeyCache;

/// Longest presented text that is hashed as a possible imported key.
pub const MAX_IMPORTED_LEN: usize = 1024;

#[derive(Default)]
pub struct ImportIndex {
    present: AtomicBool,
    /// When the database was last asked, in milliseconds since the epoch (0: never).
    checked_at: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ImportIndex {
    pub fn mark_present(&self) {
        self.present.store(true, Ordering::Release);
        self.checked_at.store(now_ms(), Ordering::Release);
    }

    /// Whether imported keys exist, asking the database when the remembered answer is
    /// stale. One caller per interval asks; the others use the remembered answer.
    pub async fn present(&self, pool: &Pool) -> DbResult<bool> {
        let present = self.present.load(Ordering::Acquire);
        let checked = self.checked_at.load(Ordering::Acquire);
        let every = if present { 60_000 } else { 1_000 };
        let now = now_ms();
        if checked != 0 && now.saturating_sub(checked) < every {
            return Ok(present);
        }
        if self
            .checked_at
            .compare_exchange(checked, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(present);
        }
        let exists = db::run(pool, db::imports::any_imported).await?;
        self.present.store(exists, Ordering::Release);
        Ok(exists)
    }
}

/// The cache digest of the imported key whose plaintext is `presented`, if there is
/// one (the verification then goes on as for any key: the cache answers the second
/// time from memory). `None` when no imported key exists or none matches.
pub async fn digest_for(
    index: &ImportIndex,
    cache: &KeyCache,
    pool: &Pool,
    presented: &str,
) -> DbResult<Option<[u8; 32]>> {
    if presented.is_empty() || presented.len() > MAX_IMPORTED_LEN || !index.present(pool).await? {
        return Ok(None);
    }
    for hash in candidates(presented) {
        let Some(digest) = hash.digest() else {
            continue;
        };
        if cache.get(pool, digest).await?.is_some() {
            return Ok(Some(digest));
        }
    }
    Ok(None)
}
