//! Login throttling: a few free failures, then a wait that doubles with each further
//! failure (capped), counted per account and per source address. The same rule
//! applies to unknown usernames, so the answer never tells whether an account exists.

use time::{Duration, PrimitiveDateTime};

pub const WINDOW: Duration = Duration::minutes(15);
pub const FREE_PER_ACCOUNT: i64 = 5;
pub const FREE_PER_ADDRESS: i64 = 20;
pub const MAX_WAIT_SECONDS: i64 = 15 * 60;

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
