//! The hot path: deciding whether a presented key is good, without touching the
//! database when the answer is already known.
//!
//! [`KeyCache`] maps a key's blake3 digest to what verification needs (or to "no such
//! key"). It is filled on demand and emptied of a key the moment that key changes:
//! - every write on this instance calls [`KeyCache::invalidate`] before answering, so
//!   the very next request sees a deactivation, deletion or edit;
//! - writes on other instances arrive through the `key_changes` table, polled twice a
//!   second by [`spawn_change_poller`];
//! - a generation counter keeps a lookup that raced with an invalidation from putting
//!   a stale answer back;
//! - expiry is checked against the clock on every request, so it needs no invalidation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ipnetwork::IpNetwork;
use serde::Serialize;
use time::PrimitiveDateTime;

use crate::db::{self, DbResult, Pool};
use crate::domain::key::KeyHash;

/// What verification needs to know about a key.
#[derive(Debug, Clone)]
pub struct CachedKey {
    pub id: i64,
    pub key_id: String,
    pub name: String,
    pub channel_id: i64,
    pub channel_name: String,
    pub channel_is_system: bool,
    pub scopes: Vec<String>,
    pub cidrs: Vec<IpNetwork>,
    pub enabled: bool,
    pub expires_at: Option<PrimitiveDateTime>,
    /// A rolled key keeps working until this time.
    pub roll_ends_at: Option<PrimitiveDateTime>,
    pub off_the_record: bool,
}

impl CachedKey {
    /// When the key stops working: its expiry or the end of its rolling grace.
    pub fn ends_at(&self) -> Option<PrimitiveDateTime> {
        match (self.expires_at, self.roll_ends_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.cidrs.is_empty() || self.cidrs.iter().any(|n| n.contains(ip))
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Can a caller holding this key see `other`? System keys reach every channel.
    pub fn reaches(&self, other: &CachedKey) -> bool {
        self.channel_is_system || self.channel_id == other.channel_id
    }

    pub fn reaches_channel(&self, channel_id: i64) -> bool {
        self.channel_is_system || self.channel_id == channel_id
    }
}

/// Verification outcomes, as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    Valid,
    Malformed,
    NotFound,
    Disabled,
    Expired,
    IpNotAllowed,
    InsufficientScope,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Valid => "VALID",
            Code::Malformed => "MALFORMED",
            Code::NotFound => "NOT_FOUND",
            Code::Disabled => "DISABLED",
            Code::Expired => "EXPIRED",
            Code::IpNotAllowed => "IP_NOT_ALLOWED",
            Code::InsufficientScope => "INSUFFICIENT_SCOPE",
        }
    }
}

/// The checks in their order: state first (disabled, expired), then where the
/// request comes from, then what it asks for.
pub fn check(
    key: &CachedKey,
    now: PrimitiveDateTime,
    ip: Option<IpAddr>,
    scopes: &[String],
) -> Code {
    if !key.enabled {
        return Code::Disabled;
    }
    if key.ends_at().is_some_and(|t| t <= now) {
        return Code::Expired;
    }
    if let Some(ip) = ip {
        if !key.allows_ip(ip) {
            return Code::IpNotAllowed;
        }
    } else if !key.cidrs.is_empty() {
        // A key limited to networks cannot be vouched for without an address.
        return Code::IpNotAllowed;
    }
    if !scopes.iter().all(|s| key.has_scope(s)) {
        return Code::InsufficientScope;
    }
    Code::Valid
}

#[derive(Clone)]
enum Slot {
    Found(Arc<CachedKey>),
    Missing,
}

pub struct KeyCache {
    map: RwLock<HashMap<[u8; 32], Slot>>,
    generation: AtomicU64,
    capacity: usize,
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        KeyCache {
            map: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            capacity: capacity.max(16),
        }
    }

    /// The key with this digest, from memory or (once) from the database.
    pub async fn get(&self, pool: &Pool, digest: [u8; 32]) -> DbResult<Option<Arc<CachedKey>>> {
        if let Some(slot) = self.peek(&digest) {
            return Ok(match slot {
                Slot::Found(k) => Some(k),
                Slot::Missing => None,
            });
        }
        let generation = self.generation.load(Ordering::Acquire);
        let hash = KeyHash::of(digest);
        let loaded = db::run(pool, move |c| db::keys::find_for_verification(c, &hash)).await?;
        let slot = match &loaded {
            Some(k) => Slot::Found(Arc::new(k.clone())),
            None => Slot::Missing,
        };
        if let Ok(mut map) = self.map.write() {
            // Only keep the answer if nothing was invalidated while we were reading.
            if self.generation.load(Ordering::Acquire) == generation {
                if map.len() >= self.capacity {
                    map.clear();
                }
                map.insert(digest, slot.clone());
            }
        }
        Ok(match slot {
            Slot::Found(k) => Some(k),
            Slot::Missing => None,
        })
    }

    fn peek(&self, digest: &[u8; 32]) -> Option<Slot> {
        self.map.read().ok().and_then(|m| m.get(digest).cloned())
    }

    /// Forgets what is known of this key (given as its stored hex hash).
    pub fn invalidate(&self, key_hash: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(digest) = KeyHash(key_hash.to_owned()).digest() {
            if let Ok(mut map) = self.map.write() {
                map.remove(&digest);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Polls `key_changes` so that a change made by another instance sharing the
/// database is honoured here within about half a second.
pub fn spawn_change_poller(
    pool: Pool,
    cache: Arc<KeyCache>,
    counts: Arc<crate::counts::FilterCounts>,
    every: Duration,
) {
    actix_web::rt::spawn(async move {
        let mut last_seen = match db::run(&pool, db::keys::latest_change_id).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "cannot read key changes; cross-instance revocation is delayed");
                0
            }
        };
        let mut ticker = actix_web::rt::time::interval(every);
        let mut last_prune = std::time::Instant::now();
        loop {
            ticker.tick().await;
            // Housekeeping, about every ten minutes: change records every instance has
            // long seen, login attempts older than the throttling window needs, and
            // sessions past their end (refused already; this only frees the rows).
            if last_prune.elapsed() >= Duration::from_secs(600) {
                last_prune = std::time::Instant::now();
                let pruned = db::run(&pool, |c| {
                    let now = db::now();
                    let changes = db::keys::prune_changes(c, now - time::Duration::hours(1))?;
                    let attempts = db::login_attempts::prune(c, now - time::Duration::days(1))?;
                    let sessions = db::sessions::delete_expired(c)?;
                    Ok(changes + attempts + sessions)
                })
                .await;
                if let Err(e) = pruned {
                    tracing::warn!(error = %e, "pruning old records failed");
                }
            }
            let since = last_seen;
            match db::run(&pool, move |c| db::keys::changes_since(c, since)).await {
                Ok(changes) => {
                    if !changes.is_empty() {
                        counts.forget_all();
                    }
                    for (id, hash) in changes {
                        cache.invalidate(&hash);
                        last_seen = last_seen.max(id);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "polling key changes failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key() -> CachedKey {
        CachedKey {
            id: 1,
            key_id: "AAAAAAAAAAAA".into(),
            name: "k".into(),
            channel_id: 2,
            channel_name: "c".into(),
            channel_is_system: false,
            scopes: vec!["verify".into()],
            cidrs: vec![],
            enabled: true,
            expires_at: None,
            roll_ends_at: None,
            off_the_record: false,
        }
    }

    const NOW: PrimitiveDateTime = datetime!(2026-11-22 12:00);

    #[test]
    fn codes_follow_the_key_state() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(check(&key(), NOW, Some(ip), &[]), Code::Valid);
        assert_eq!(
            check(
                &CachedKey {
                    enabled: false,
                    ..key()
                },
                NOW,
                Some(ip),
                &[]
            ),
            Code::Disabled
        );
        let expired = CachedKey {
            expires_at: Some(datetime!(2026-11-22 11:59)),
            ..key()
        };
        assert_eq!(check(&expired, NOW, Some(ip), &[]), Code::Expired);
        let rolled = CachedKey {
            roll_ends_at: Some(datetime!(2026-11-22 12:00)),
            ..key()
        };
        assert_eq!(check(&rolled, NOW, Some(ip), &[]), Code::Expired);
        let limited = CachedKey {
            cidrs: vec!["198.51.100.0/24".parse().unwrap()],
            ..key()
        };
        assert_eq!(check(&limited, NOW, Some(ip), &[]), Code::IpNotAllowed);
        assert_eq!(check(&limited, NOW, None, &[]), Code::IpNotAllowed);
        assert_eq!(
            check(&limited, NOW, Some("198.51.100.9".parse().unwrap()), &[]),
            Code::Valid
        );
        assert_eq!(
            check(&key(), NOW, Some(ip), &["keys:write".into()]),
            Code::InsufficientScope
        );
        assert_eq!(
            check(&key(), NOW, Some(ip), &["verify".into()]),
            Code::Valid
        );
    }

    #[test]
    fn ipv6_networks_are_checked() {
        let limited = CachedKey {
            cidrs: vec!["2001:db8::/32".parse().unwrap()],
            ..key()
        };
        assert_eq!(
            check(&limited, NOW, Some("2001:db8::1".parse().unwrap()), &[]),
            Code::Valid
        );
        assert_eq!(
            check(&limited, NOW, Some("2001:db9::1".parse().unwrap()), &[]),
            Code::IpNotAllowed
        );
    }

    #[test]
    fn system_keys_reach_every_channel() {
        let sys = CachedKey {
            channel_is_system: true,
            channel_id: 1,
            ..key()
        };
        let other = CachedKey {
            channel_id: 99,
            ..key()
        };
        assert!(sys.reaches(&other));
        assert!(!key().reaches(&other));
        assert!(key().reaches(&key()));
    }
}
