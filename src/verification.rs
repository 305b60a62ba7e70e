//! The hot path: deciding whether a presented key is good, without touching the
//! database when the answer is already known.
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

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use ipnetwork::IpNetwork;
use serde::Serialize;
use time::PrimitiveDateTime;

use crate::db::channels::Channel;
use crate::db::keys::ApiKey;
use crate::db::{self, DbResult, Pool};
use crate::domain::key::KeyHash;
use crate::domain::status::{KeyStatus, Lifecycle};

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
    /// Active flag, expiry and rolling grace: what decides its status.
    pub lifecycle: Lifecycle,
    pub off_the_record: bool,
}

impl CachedKey {
    /// Built from the database's rows of the key and its channel.
    pub fn from_rows(k: ApiKey, c: Channel) -> Self {
        CachedKey {
            id: k.id,
            cidrs: k
                .cidr_list()
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            scopes: k.scope_list().into_iter().map(str::to_owned).collect(),
            lifecycle: k.lifecycle(),
            key_id: k.key_id,
            name: k.name,
            channel_id: c.id,
            channel_name: c.name,
            channel_is_system: c.is_system,
            off_the_record: k.off_the_record,
        }
    }

    /// When the key stops working: its expiry or the end of its rolling grace.
    pub fn ends_at(&self) -> Option<PrimitiveDateTime> {
        self.lifecycle.ends_at()
    }

    /// An IPv4-mapped IPv6 address is checked as the IPv4 address it carries.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
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
    match key.lifecycle.status(now) {
        KeyStatus::Inactive => return Code::Disabled,
        KeyStatus::Expired => return Code::Expired,
        KeyStatus::Active | KeyStatus::Rolling { .. } => {}
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
        let loaded = db::run(pool, move |c| db::keys::find_with_channel(c, &hash)).await?;
        let slot = match loaded {
            Some((k, c)) => Slot::Found(Arc::new(CachedKey::from_rows(k, c))),
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

    /// Forgets every key (a channel was renamed).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
            lifecycle: Lifecycle {
                active: true,
                expires_at: None,
                roll_ends_at: None,
            },
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
                    lifecycle: Lifecycle {
                        active: false,
                        ..key().lifecycle
                    },
                    ..key()
                },
                NOW,
                Some(ip),
                &[]
            ),
            Code::Disabled
        );
        let expired = CachedKey {
            lifecycle: Lifecycle {
                expires_at: Some(datetime!(2026-11-22 11:59)),
                ..key().lifecycle
            },
            ..key()
        };
        assert_eq!(check(&expired, NOW, Some(ip), &[]), Code::Expired);
        let rolled = CachedKey {
            lifecycle: Lifecycle {
                roll_ends_at: Some(datetime!(2026-11-22 12:00)),
                ..key().lifecycle
            },
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
    fn ipv4_mapped_addresses_match_ipv4_networks() {
        let limited = CachedKey {
            cidrs: vec!["127.0.0.0/8".parse().unwrap()],
            ..key()
        };
        assert_eq!(
            check(
                &limited,
                NOW,
                Some("::ffff:127.0.0.1".parse().unwrap()),
                &[]
            ),
            Code::Valid
        );
        assert_eq!(
            check(&limited, NOW, Some("::ffff:10.0.0.1".parse().unwrap()), &[]),
            Code::IpNotAllowed
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
