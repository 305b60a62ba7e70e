//! Login throttling: a few free failures, then a wait that doubles with each further
//! failure (capped). Failures are counted per account *and address* (five free) and per
//! address over all accounts (twenty free); an IPv6 address counts as its /64, which one
//! host usually holds whole.
//!
//! There is deliberately no lock on an account as a whole: failures from one address
//! never stop a correct password from another address that has not been failing, so
//! nobody can lock the real user out from elsewhere. Distributed guessing is bounded by
//! each address's budget, the global cap on password checks and two-factor
//! authentication (SECURITY.md). The same rule applies to unknown usernames, so the
//! answer never tells whether an account exists.

use std::net::IpAddr;

use time::{Duration, PrimitiveDateTime};

pub const WINDOW: Duration = Duration::minutes(15);
pub const FREE_PER_ACCOUNT_AND_ADDRESS: i64 = 5;
pub const FREE_PER_ADDRESS: i64 = 20;
pub const MAX_WAIT_SECONDS: i64 = 15 * 60;

/// The address a failure is counted against: an IPv4 address itself, an IPv6 address
/// as its /64 (`2001:db8:1:2::/64`), an IPv4-mapped IPv6 address as the IPv4 address.
/// No address at all (a test client without a peer) counts as `unknown`.
pub fn address_key(ip: Option<IpAddr>) -> String {
    match ip {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
    }
}

/// Seconds to wait after `failures` failures, the last at `last`, or `None` to go on.
pub fn wait(
    failures: i64,
    free: i64,
    last: Option<PrimitiveDateTime>,
    now: PrimitiveDateTime,
) -> Option<i64> {
    if failures < free {
        return None;
    }
    let exp = (failures - free).min(20) as u32;
    let delay = 2i64.saturating_pow(exp).min(MAX_WAIT_SECONDS);
    let until = last? + Duration::seconds(delay);
    // Round up: half a second left is still a wait of one second.
    let left_ms = (until - now).whole_milliseconds();
    (left_ms > 0).then(|| ((left_ms + 999) / 1000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let key = |s: &str| address_key(Some(s.parse().unwrap()));
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:1:2:3"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("203.0.113.9"), "203.0.113.9");
        assert_eq!(key("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(address_key(None), "unknown");
    }

    const NOW: PrimitiveDateTime = datetime!(2026-11-22 12:00);

    #[test]
    fn waits_grow_with_each_failure_past_the_free_ones() {
        assert_eq!(wait(4, 5, Some(NOW), NOW), None);
        assert_eq!(wait(5, 5, Some(NOW), NOW), Some(1));
        assert_eq!(wait(6, 5, Some(NOW), NOW), Some(2));
        assert_eq!(wait(9, 5, Some(NOW), NOW), Some(16));
        assert_eq!(wait(60, 5, Some(NOW), NOW), Some(MAX_WAIT_SECONDS));
    }

    #[test]
    fn the_wait_runs_from_the_last_failure() {
        let last = NOW - Duration::seconds(10);
        assert_eq!(wait(9, 5, Some(last), NOW), Some(6));
        assert_eq!(wait(8, 5, Some(last), NOW), None);
        assert_eq!(
            wait(5, 5, Some(NOW - Duration::milliseconds(300)), NOW),
            Some(1),
            "partial seconds round up"
        );
    }
}
