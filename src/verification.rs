//! The hot path: deciding whether a presented key is good — what verification knows
//! of a key ([`CachedKey`], held by `key_cache::KeyCache`), the outcomes the API names
//! ([`Code`]) and the checks in their order ([`check`]).

use std::net::IpAddr;
use std::sync::OnceLock;

use ipnetwork::IpNetwork;
use serde::Serialize;
use time::PrimitiveDateTime;

use crate::db::channels::Channel;
use crate::db::keys::ApiKey;
use crate::domain::limits::RateLimit;
use crate::domain::status::{KeyStatus, Lifecycle};
use serde_json::value::RawValue;

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
    /// Rate limits (none: unlimited), checked after the other checks pass.
    pub rate_limits: Vec<RateLimit>,
    /// Whether valid verifications spend credits, and the balance epoch last read
    /// (`credits::CreditPool` voids blocks older than it).
    pub credit_limited: bool,
    pub credit_epoch: i64,
    /// The key's metadata object, handed back as it is stored.
    pub metadata: Option<Box<RawValue>>,
    /// The part of a verification's answer that only depends on the key (its id,
    /// channel, name, scopes, expiry, metadata), rendered as JSON by the verify route
    /// on first use and reused for every later answer while the key stays cached.
    pub answer_memo: OnceLock<Box<str>>,
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
            rate_limits: k.limits(),
            credit_limited: k.credits.is_some(),
            credit_epoch: k.credit_epoch,
            metadata: k.metadata.and_then(|m| RawValue::from_string(m).ok()),
            key_id: k.key_id,
            name: k.name,
            channel_id: c.id,
            channel_name: c.name,
            channel_is_system: c.is_system,
            off_the_record: k.off_the_record,
            answer_memo: OnceLock::new(),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    Valid,
    Malformed,
    NotFound,
    Disabled,
    Expired,
    IpNotAllowed,
    InsufficientScope,
    RateLimited,
    UsageExceeded,
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
            Code::RateLimited => "RATE_LIMITED",
            Code::UsageExceeded => "USAGE_EXCEEDED",
        }
    }
}

/// The checks in their order: state first (disabled, expired), then where the
/// request comes from, then what it asks for.
///
/// `now` is asked only of a key that ends (an expiry or a roll): most keys never do, and
/// reading the calendar time twice per verification was measurable.
pub fn check(
    key: &CachedKey,
    now: impl FnOnce() -> PrimitiveDateTime,
    ip: Option<IpAddr>,
    scopes: &[String],
) -> Code {
    let now = match key.ends_at() {
        Some(_) => now(),
        None => PrimitiveDateTime::MIN,
    };
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

#[cfg(test)]
impl CachedKey {
    /// An active key of channel 2, never ending, with no scopes, networks, limits,
    /// credits or metadata: what unit tests start from and change a field or two of.
    pub fn sample(id: i64) -> Self {
        CachedKey {
            id,
            key_id: "AAAAAAAAAAAA".into(),
            name: "k".into(),
            channel_id: 2,
            channel_name: "c".into(),
            channel_is_system: false,
            scopes: vec![],
            cidrs: vec![],
            lifecycle: Lifecycle {
                active: true,
                expires_at: None,
                roll_ends_at: None,
            },
            off_the_record: false,
            rate_limits: Vec::new(),
            credit_limited: false,
            credit_epoch: 0,
            metadata: None,
            answer_memo: OnceLock::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key() -> CachedKey {
        CachedKey {
            scopes: vec!["verify".into()],
            ..CachedKey::sample(1)
        }
    }

    const NOW: PrimitiveDateTime = datetime!(2026-11-22 12:00);

    #[test]
    fn codes_follow_the_key_state() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(check(&key(), || NOW, Some(ip), &[]), Code::Valid);
        assert_eq!(
            check(
                &CachedKey {
                    lifecycle: Lifecycle {
                        active: false,
                        ..key().lifecycle
                    },
                    ..key()
                },
                || NOW,
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
        assert_eq!(check(&expired, || NOW, Some(ip), &[]), Code::Expired);
        // Only a key that ends reads the clock.
        let never = || -> PrimitiveDateTime { unreachable!("a key that never ends") };
        assert_eq!(check(&key(), never, Some(ip), &[]), Code::Valid);
        let asked = std::cell::Cell::new(false);
        let clock = || {
            asked.set(true);
            NOW
        };
        assert_eq!(check(&expired, clock, Some(ip), &[]), Code::Expired);
        assert!(asked.get());
        let rolled = CachedKey {
            lifecycle: Lifecycle {
                roll_ends_at: Some(datetime!(2026-11-22 12:00)),
                ..key().lifecycle
            },
            ..key()
        };
        assert_eq!(check(&rolled, || NOW, Some(ip), &[]), Code::Expired);
        let limited = CachedKey {
            cidrs: vec!["198.51.100.0/24".parse().unwrap()],
            ..key()
        };
        assert_eq!(check(&limited, || NOW, Some(ip), &[]), Code::IpNotAllowed);
        assert_eq!(check(&limited, || NOW, None, &[]), Code::IpNotAllowed);
        assert_eq!(
            check(&limited, || NOW, Some("198.51.100.9".parse().unwrap()), &[]),
            Code::Valid
        );
        assert_eq!(
            check(&key(), || NOW, Some(ip), &["keys:write".into()]),
            Code::InsufficientScope
        );
        assert_eq!(
            check(&key(), || NOW, Some(ip), &["verify".into()]),
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
                || NOW,
                Some("::ffff:127.0.0.1".parse().unwrap()),
                &[]
            ),
            Code::Valid
        );
        assert_eq!(
            check(
                &limited,
                || NOW,
                Some("::ffff:10.0.0.1".parse().unwrap()),
                &[]
            ),
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
            check(&limited, || NOW, Some("2001:db8::1".parse().unwrap()), &[]),
            Code::Valid
        );
        assert_eq!(
            check(&limited, || NOW, Some("2001:db9::1".parse().unwrap()), &[]),
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
