//! The API's read path (`GET /api/v1/keys/{id}`) answered from memory.
//!
//! [`KeyReads`] holds recently read keys by key id, bounded, and forgets a key exactly
//! when the verification cache does (`AppState::forget`): at once after a write on this
//! instance, within the change poller's interval after a write on another. A read
//! older than `fresh_for` is read again, so what changes without a change record —
//! last use and the usage figures (written in batches), credits reserved by
//! verifications, a POSTback turned off by a 410 — is never older than that.
//!
//! Forgetting goes by the key's stored hash (what change records carry), so a second,
//! bounded map leads from hash to key id. The two maps evict independently: an entry
//! whose hash no longer leads to it could miss a forget, so it is not trusted.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use time::PrimitiveDateTime;

use crate::db::channels::Channel;
use crate::db::keys::ApiKey;

/// What one read of a key holds: the key, its channel, and the API's answer once a
/// request has rendered it (rendering is most of a request's work when the read is
/// held, and the answer only changes with the clock at the key's status boundaries).
pub struct KeyRead {
    pub key: ApiKey,
    pub channel: Channel,
    pub shown: OnceLock<Shown>,
}

impl KeyRead {
    pub fn new(key: ApiKey, channel: Channel) -> Self {
        KeyRead {
            key,
            channel,
            shown: OnceLock::new(),
        }
    }

    /// The answer rendered from this read, if it still holds at `now`.
    pub fn shown_at(&self, now: PrimitiveDateTime) -> Option<Bytes> {
        let shown = self.shown.get()?;
        shown
            .until
            .is_none_or(|u| now < u)
            .then(|| shown.body.clone())
    }
}

/// A rendered answer, and the first moment it may no longer hold (an expiry, the end
/// of a rolling grace, a refill).
pub struct Shown {
    pub body: Bytes,
    pub until: Option<PrimitiveDateTime>,
}

struct Held<V> {
    value: Arc<V>,
    hash: String,
    read_at: Instant,
}

impl<V> Clone for Held<V> {
    fn clone(&self) -> Self {
        Held {
            value: self.value.clone(),
            hash: self.hash.clone(),
            read_at: self.read_at,
        }
    }
}

/// A read of one key in flight: the requests that want the same key meanwhile wait
/// for its result instead of each reading the key again.
struct Flight<V> {
    done: Arc<tokio::sync::Notify>,
    /// The read's answer (`None`: no such key), set before `done` is notified; left
    /// empty when the read failed or was abandoned, so a waiter reads for itself.
    answer: OnceLock<Option<Arc<V>>>,
}

type Flights<V> = std::sync::Mutex<std::collections::HashMap<String, Arc<Flight<V>>>>;

/// Ends a flight however the reader stops (answered, failed, or its request dropped):
/// takes it off the map, then wakes its waiters.
struct Landing<'a, V> {
    flights: &'a Flights<V>,
    key_id: &'a str,
    flight: Arc<Flight<V>>,
}

impl<V> Drop for Landing<'_, V> {
    fn drop(&mut self) {
        if let Ok(mut flights) = self.flights.lock() {
            flights.remove(self.key_id);
        }
        self.flight.done.notify_waiters();
    }
}

/// Recently read keys (`V`: what a read answers) by key id.
pub struct KeyReads<V> {
    held: quick_cache::sync::Cache<String, Held<V>>,
    /// Reads in flight by key id. When a busy key's read goes stale, one request reads
    /// it again and the others wait for that read: each used to read it for itself, and
    /// on PostgreSQL under load the pile-up took the p99 of `GET /api/v1/keys/{id}` to
    /// 0.4-1 s (BENCHMARKS.md).
    flights: Flights<V>,
    /// Stored hash → key id, for forgetting by hash.
    ids: quick_cache::sync::Cache<String, String>,
    /// Bumped by every forget: a read that raced with one is not kept.
    generation: AtomicU64,
    /// Database reads made (misses), for `/metrics` and tests.
    lookups: AtomicU64,
}

impl<V> KeyReads<V> {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(16);
        KeyReads {
            held: quick_cache::sync::Cache::new(capacity),
            flights: Default::default(),
            ids: quick_cache::sync::Cache::new(capacity),
            generation: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
        }
    }

    /// The key `key_id` as read at most `fresh_for` ago and unchanged since, or as
    /// `load` reads it now (`load` answers the stored hash beside the value; a key that
    /// does not exist is not held).
    pub async fn get_with<E, F, Fut>(
        &self,
        key_id: &str,
        fresh_for: Duration,
        load: F,
    ) -> Result<Option<Arc<V>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<(String, V)>, E>>,
    {
        if let Some(held) = self.held.get(key_id) {
            let indexed = self.ids.get(&held.hash).is_some_and(|id| id == key_id);
            if indexed && held.read_at.elapsed() < fresh_for {
                return Ok(Some(held.value));
            }
        }
        if fresh_for.is_zero() {
            return self.read(key_id, fresh_for, load).await;
        }
        // Join a read of this key already in flight, or start one.
        let joined = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            match flights.get(key_id) {
                // Made while the map is locked: the reader lands (leaves the map, then
                // wakes its waiters) only after this, so the wake-up cannot be missed.
                Some(f) => Err((f.clone(), f.done.clone().notified_owned())),
                None => {
                    let f = Arc::new(Flight {
                        done: Arc::new(tokio::sync::Notify::new()),
                        answer: OnceLock::new(),
                    });
                    flights.insert(key_id.to_owned(), f.clone());
                    Ok(f)
                }
            }
        };
        let flight = match joined {
            Ok(mine) => mine,
            Err((theirs, done)) => {
                if theirs.answer.get().is_none() {
                    done.await;
                }
                return match theirs.answer.get() {
                    Some(answer) => Ok(answer.clone()),
                    // The read failed or was dropped: read for ourselves.
                    None => self.read(key_id, fresh_for, load).await,
                };
            }
        };
        let landing = Landing {
            flights: &self.flights,
            key_id,
            flight,
        };
        let answer = self.read(key_id, fresh_for, load).await?;
        let _ = landing.flight.answer.set(answer.clone());
        drop(landing);
        Ok(answer)
    }

    /// Reads the key now and holds the read (unless `fresh_for` is zero).
    async fn read<E, F, Fut>(
        &self,
        key_id: &str,
        fresh_for: Duration,
        load: F,
    ) -> Result<Option<Arc<V>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<(String, V)>, E>>,
    {
        let generation = self.generation.load(Ordering::Acquire);
        let read_at = Instant::now();
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let Some((hash, value)) = load().await? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        // Index first: a held entry is trusted only while its hash leads to it.
        if !fresh_for.is_zero() {
            self.ids.insert(hash.clone(), key_id.to_owned());
            let held = Held {
                value: value.clone(),
                hash,
                read_at,
            };
            self.held.insert(key_id.to_owned(), held);
            // A forget that ran while we read may have missed what we just stored.
            if self.generation.load(Ordering::Acquire) != generation {
                self.held.remove(key_id);
            }
        }
        Ok(Some(value))
    }

    /// Forgets the key whose stored hash is `hash`.
    pub fn forget(&self, hash: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some((_, id)) = self.ids.remove(hash) {
            self.held.remove(&id);
        }
    }

    /// Forgets every key.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.held.clear();
        self.ids.clear();
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(600);

    fn run<T>(f: impl Future<Output = T>) -> T {
        actix_web::rt::System::new().block_on(f)
    }

    async fn read(c: &KeyReads<String>, id: &str, v: &str) -> Option<Arc<String>> {
        let v = v.to_owned();
        let hash = format!("hash-{id}");
        c.get_with(id, LONG, || async move { Ok::<_, ()>(Some((hash, v))) })
            .await
            .unwrap()
    }

    #[test]
    fn a_read_key_is_answered_from_memory_until_forgotten() {
        let c = KeyReads::new(100);
        run(async {
            assert_eq!(read(&c, "a", "one").await.unwrap().as_str(), "one");
            assert_eq!(read(&c, "a", "two").await.unwrap().as_str(), "one");
            assert_eq!(c.lookups(), 1);
            c.forget("hash-a");
            assert_eq!(read(&c, "a", "three").await.unwrap().as_str(), "three");
            c.clear();
            assert_eq!(read(&c, "a", "four").await.unwrap().as_str(), "four");
        });
    }

    #[test]
    fn a_read_older_than_its_freshness_is_read_again() {
        let c = KeyReads::new(100);
        run(async {
            let load = |v: &'static str| move || async move { Ok::<_, ()>(Some(("h".into(), v))) };
            let short = Duration::from_millis(30);
            assert_eq!(
                *c.get_with("a", short, load("one")).await.unwrap().unwrap(),
                "one"
            );
            assert_eq!(
                *c.get_with("a", short, load("two")).await.unwrap().unwrap(),
                "one"
            );
            std::thread::sleep(Duration::from_millis(40));
            assert_eq!(
                *c.get_with("a", short, load("three"))
                    .await
                    .unwrap()
                    .unwrap(),
                "three"
            );
            // Zero: never held.
            let zero = Duration::ZERO;
            assert_eq!(
                *c.get_with("b", zero, load("x")).await.unwrap().unwrap(),
                "x"
            );
            assert_eq!(
                *c.get_with("b", zero, load("y")).await.unwrap().unwrap(),
                "y"
            );
        });
    }

    /// Counts the reads `load` makes; each takes `ms` and answers `value`.
    fn counted(
        n: &std::cell::Cell<u32>,
        ms: u64,
        value: Option<&'static str>,
    ) -> impl Future<Output = Result<Option<(String, String)>, ()>> {
        n.set(n.get() + 1);
        async move {
            actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
            Ok(value.map(|v| ("hash-a".to_owned(), v.to_owned())))
        }
    }

    #[test]
    fn a_stale_or_missing_key_is_read_once_for_all_who_ask_at_once() {
        let c = KeyReads::new(100);
        let n = std::cell::Cell::new(0);
        let short = Duration::from_millis(30);
        run(async {
            c.get_with("a", short, || counted(&n, 0, Some("one")))
                .await
                .unwrap();
            std::thread::sleep(Duration::from_millis(40));
            let asks = (0..20).map(|_| c.get_with("a", short, || counted(&n, 20, Some("two"))));
            for answer in futures_util::future::join_all(asks).await {
                assert_eq!(answer.unwrap().unwrap().as_str(), "two");
            }
            assert_eq!(n.get(), 2, "one read at first, one when it went stale");
            let asks = (0..20).map(|_| c.get_with("b", short, || counted(&n, 20, None)));
            for answer in futures_util::future::join_all(asks).await {
                assert!(answer.unwrap().is_none());
            }
            assert_eq!(n.get(), 3, "a missing key is read once for all");
        });
    }

    #[test]
    fn when_the_read_in_flight_fails_or_is_dropped_the_waiters_read_for_themselves() {
        let c = Arc::new(KeyReads::<String>::new(100));
        run(async {
            let failing = c.get_with("a", LONG, || async {
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                Err::<Option<(String, String)>, &str>("database away")
            });
            let waiting = c.get_with("a", LONG, || async {
                Ok::<_, &str>(Some(("hash-a".to_owned(), "mine".to_owned())))
            });
            let (failed, waited) = futures_util::future::join(failing, waiting).await;
            assert_eq!(failed.unwrap_err(), "database away");
            assert_eq!(waited.unwrap().unwrap().as_str(), "mine");

            let c2 = c.clone();
            let stuck = actix_web::rt::spawn(async move {
                c2.get_with("b", LONG, std::future::pending::<Result<_, ()>>)
                    .await
            });
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
            let c3 = c.clone();
            let waiter = actix_web::rt::spawn(async move {
                c3.get_with("b", LONG, || async {
                    Ok::<_, ()>(Some(("hash-b".to_owned(), "after".to_owned())))
                })
                .await
            });
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
            stuck.abort();
            let answer = actix_web::rt::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("the waiter woke when the read it waited for was dropped");
            assert_eq!(answer.unwrap().unwrap().unwrap().as_str(), "after");
        });
    }

    #[test]
    fn a_missing_key_is_not_held() {
        let c: KeyReads<String> = KeyReads::new(100);
        run(async {
            let none = c.get_with("a", LONG, || async { Ok::<_, ()>(None) }).await;
            assert!(none.unwrap().is_none());
            assert!(read(&c, "a", "now").await.is_some());
        });
    }

    #[test]
    fn a_read_that_raced_with_a_forget_is_not_kept() {
        let c = KeyReads::new(100);
        run(async {
            let stale = c
                .get_with("a", LONG, || async {
                    c.forget("hash-a"); // a write lands while we read
                    Ok::<_, ()>(Some(("hash-a".to_owned(), "stale".to_owned())))
                })
                .await;
            assert_eq!(stale.unwrap().unwrap().as_str(), "stale");
            assert!(c.is_empty(), "the stale answer was not kept");
        });
    }

    #[test]
    fn an_entry_whose_hash_was_evicted_is_not_trusted() {
        let c = KeyReads::new(16);
        run(async {
            read(&c, "a", "one").await;
            // The index loses a's hash (evicted under pressure); a forget would miss it.
            c.ids.remove("hash-a");
            assert_eq!(read(&c, "a", "two").await.unwrap().as_str(), "two");
            c.forget("hash-a");
            assert_eq!(read(&c, "a", "three").await.unwrap().as_str(), "three");
        });
    }
}
