//! The key cache: verification without touching the database when the answer is
//! already known.
//!
//! [`KeyCache`] maps a key's blake3 digest to what verification needs (or to "no such
//! key"). It is filled on demand and emptied of a key the moment that key changes:
//! - every write on this instance forgets its keys before answering (`app::write`), so
//!   the very next request sees a deactivation, deletion or edit;
//! - writes on other instances arrive through the `key_changes` table, polled twice a
//!   second by `background::spawn_change_poller`;
//! - a generation counter keeps a lookup that raced with an invalidation from putting
//!   a stale answer back;
//! - expiry is checked against the clock on every request, so it needs no invalidation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::{self, DbResult, Pool};
use crate::domain::key::KeyHash;
use crate::fxhash::DigestBuild;
use crate::verification::CachedKey;

type Digest = [u8; 32];

/// A cache keyed by digest, hashed by [`DigestBuild`] rather than SipHash (two lookups
/// per verification).
type DigestCache<V> = quick_cache::sync::Cache<
    Digest,
    V,
    quick_cache::UnitWeighter,
    DigestBuild,
    quick_cache::sync::DefaultLifecycle<Digest, V>,
>;

fn digest_cache<V: Clone>(capacity: usize) -> DigestCache<V> {
    quick_cache::sync::Cache::with(
        capacity,
        capacity as u64,
        quick_cache::UnitWeighter,
        DigestBuild::random(),
        quick_cache::sync::DefaultLifecycle::default(),
    )
}

/// Keys by digest, in two bounded areas: keys that exist, and digests known to match no
/// key. Forged keys (the checksum is public, so anyone can make checksum-valid keys) land
/// only in the second, small area, so a flood of them never evicts a real key; both
/// areas use quick_cache's S3-FIFO policy, which resists one-off scans.
pub struct KeyCache {
    found: DigestCache<Arc<CachedKey>>,
    missing: DigestCache<()>,
    /// Bumped by every invalidation: a lookup that raced with one is not stored.
    generation: AtomicU64,
    /// Database lookups made (cache misses), for `/metrics` and tests.
    lookups: AtomicU64,
}

impl KeyCache {
    /// `capacity` keys that exist, and up to a tenth as many (at least 1,000, at most
    /// 10,000) digests that match none.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(16);
        KeyCache {
            found: digest_cache(capacity),
            missing: digest_cache((capacity / 10).clamp(1_000, 10_000)),
            generation: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
        }
    }

    /// The key with this digest, from memory or (once) from the database.
    pub async fn get(&self, pool: &Pool, digest: Digest) -> DbResult<Option<Arc<CachedKey>>> {
        let pool = pool.clone();
        self.get_with(digest, move || async move {
            let hash = KeyHash::of(digest);
            let found = db::run(&pool, move |c| db::keys::find_with_channel(c, &hash)).await?;
            Ok(found.map(|(k, c)| CachedKey::from_rows(k, c)))
        })
        .await
    }

    /// [`KeyCache::get`] with the database lookup given (tests count them).
    pub async fn get_with<F, Fut>(
        &self,
        digest: Digest,
        load: F,
    ) -> DbResult<Option<Arc<CachedKey>>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = DbResult<Option<CachedKey>>>,
    {
        if let Some(k) = self.found.get(&digest) {
            return Ok(Some(k));
        }
        if self.missing.get(&digest).is_some() {
            return Ok(None);
        }
        let generation = self.generation.load(Ordering::Acquire);
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let loaded = load().await?.map(Arc::new);
        // Only keep the answer if nothing was invalidated while we were reading.
        if self.generation.load(Ordering::Acquire) == generation {
            match &loaded {
                Some(k) => self.found.insert(digest, k.clone()),
                None => self.missing.insert(digest, ()),
            }
        }
        Ok(loaded)
    }

    /// Forgets what is known of this key (given as its stored hex hash).
    pub fn invalidate(&self, key_hash: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(digest) = KeyHash(key_hash.to_owned()).digest() {
            self.found.remove(&digest);
            self.missing.remove(&digest);
        }
    }

    /// Forgets every key (a channel was renamed).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.found.clear();
        self.missing.clear();
    }

    /// Keys that exist, held in memory.
    pub fn len(&self) -> usize {
        self.found.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Digests known to match no key, held in memory.
    pub fn missing_len(&self) -> usize {
        self.missing.len()
    }

    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CachedKey {
        CachedKey::sample(1)
    }

    #[test]
    fn a_flood_of_forged_keys_never_evicts_a_real_one() {
        let cache = KeyCache::new(1_000);
        let real: Vec<Digest> = (0..500u32)
            .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect();
        actix_web::rt::System::new().block_on(async {
            for d in &real {
                let found = cache.get_with(*d, || async { Ok(Some(key())) }).await;
                assert!(found.unwrap().is_some());
            }
            // 200,000 checksum-valid forgeries: each is looked up once, none is found.
            for i in 0..200_000u32 {
                let forged = *blake3::hash(format!("forged {i}").as_bytes()).as_bytes();
                let found = cache.get_with(forged, || async { Ok(None) }).await;
                assert!(found.unwrap().is_none());
            }
            assert!(
                cache.missing_len() <= 10_000,
                "the no-such-key area stays small"
            );
            let before = cache.lookups();
            for d in &real {
                let found = cache
                    .get_with(*d, || async {
                        panic!("a real key went back to the database")
                    })
                    .await;
                assert!(found.unwrap().is_some());
            }
            assert_eq!(cache.lookups(), before);
        });
    }

    #[test]
    fn a_lookup_that_raced_with_an_invalidation_is_not_stored() {
        let cache = KeyCache::new(100);
        let d = *blake3::hash(b"k").as_bytes();
        actix_web::rt::System::new().block_on(async {
            let hex = KeyHash::of(d).0;
            let stale = cache
                .get_with(d, || async {
                    cache.invalidate(&hex); // a write lands while we read
                    Ok(Some(key()))
                })
                .await;
            assert!(stale.unwrap().is_some());
            assert_eq!(cache.len(), 0, "the stale answer was not kept");
        });
    }
}
