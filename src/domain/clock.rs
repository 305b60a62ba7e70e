//! How times are written: every stored time is UTC, and the dashboard says so.

use time::PrimitiveDateTime;
use time::macros::format_description;

/// `2026-11-22 14:05 UTC`.
pub fn format_time(t: PrimitiveDateTime) -> String {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.format(&f).unwrap_or_default()
}

/// ISO-8601 for `<time datetime=…>` and JSON: `2026-11-22T14:05:09Z`.
///
/// Written digit by digit: `time`'s formatter costs about 2,500 instructions a call,
/// and an API answer carries several times. Years outside 0–9999 go through it.
pub fn iso_time(t: PrimitiveDateTime) -> String {
    let Ok(year) = u32::try_from(t.year()) else {
        return iso_time_formatted(t);
    };
    if year > 9999 {
        return iso_time_formatted(t);
    }
    let mut s = String::with_capacity(20);
    let parts = [
        (year, 4, '-'),
        (u32::from(u8::from(t.month())), 2, '-'),
        (u32::from(t.day()), 2, 'T'),
        (u32::from(t.hour()), 2, ':'),
        (u32::from(t.minute()), 2, ':'),
        (u32::from(t.second()), 2, 'Z'),
    ];
    for (n, width, then) in parts {
        for p in (0..width).rev() {
            let d = n / 10u32.pow(p) % 10;
            s.push(char::from(b'0' + d as u8));
        }
        s.push(then);
    }
    s
}

fn iso_time_formatted(t: PrimitiveDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

/// The value an `<input type="datetime-local">` expects.
pub fn input_time(t: PrimitiveDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    t.format(&f).unwrap_or_default()
}

/// Where "now" comes from: the system clock, or a clock a test sets and moves (the
/// expiry reminders are tested at 30, 7 and 1 days before an expiry without waiting).
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(std::sync::Arc<std::sync::Mutex<PrimitiveDateTime>>),
}

impl Clock {
    pub fn manual(at: PrimitiveDateTime) -> Self {
        Clock::Manual(std::sync::Arc::new(std::sync::Mutex::new(at)))
    }

    /// UTC, to the microsecond (what the database stores).
    pub fn now(&self) -> PrimitiveDateTime {
        match self {
            Clock::System => {
                let now = time::OffsetDateTime::now_utc();
                let now = now.replace_microsecond(now.microsecond()).unwrap_or(now);
                PrimitiveDateTime::new(now.date(), now.time())
            }
            Clock::Manual(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Moves a manual clock (the system clock cannot be moved).
    pub fn set(&self, at: PrimitiveDateTime) {
        if let Clock::Manual(t) = self {
            *t.lock().unwrap_or_else(|e| e.into_inner()) = at;
        }
    }
}

/// "in 3 days", "in 5 hours", "in 2 months": how far `later` is from `now` (for the
/// keys table, beside the date). `None` once it has passed.
pub fn relative_future(now: PrimitiveDateTime, later: PrimitiveDateTime) -> Option<String> {
    let left = later - now;
    if left <= time::Duration::ZERO {
        return None;
    }
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("in 1 {unit}")
        } else {
            format!("in {n} {unit}s")
        }
    };
    let (minutes, hours, days) = (left.whole_minutes(), left.whole_hours(), left.whole_days());
    Some(if minutes < 60 {
        plural(minutes.max(1), "minute")
    } else if hours < 48 {
        plural(hours, "hour")
    } else if days < 60 {
        plural(days, "day")
    } else if days < 730 {
        plural(days / 30, "month")
    } else {
        plural(days / 365, "year")
    })
}

/// Whole days left until `later`, rounded up ("expires in 7 days" a minute after the
/// 7-day reminder became due).
pub fn days_left(now: PrimitiveDateTime, later: PrimitiveDateTime) -> i64 {
    let secs = (later - now).whole_seconds().max(0);
    (secs + 86_399) / 86_400
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn relative_times_read_naturally() {
        let now = datetime!(2027-01-01 00:00);
        let at = |d: time::Duration| relative_future(now, now + d);
        assert_eq!(at(time::Duration::seconds(20)).unwrap(), "in 1 minute");
        assert_eq!(at(time::Duration::hours(5)).unwrap(), "in 5 hours");
        assert_eq!(at(time::Duration::days(3)).unwrap(), "in 3 days");
        assert_eq!(at(time::Duration::days(1)).unwrap(), "in 24 hours");
        assert_eq!(at(time::Duration::days(90)).unwrap(), "in 3 months");
        assert_eq!(at(time::Duration::days(800)).unwrap(), "in 2 years");
        assert_eq!(at(time::Duration::days(-1)), None);
        assert_eq!(days_left(now, now + time::Duration::hours(167)), 7);
        assert_eq!(days_left(now, now + time::Duration::days(30)), 30);
    }

    #[test]
    fn iso_times_match_the_formatter() {
        for t in [
            datetime!(2026-11-22 14:05:09.999),
            datetime!(0001-01-01 00:00),
            datetime!(0000-12-31 23:59:59),
            datetime!(9999-12-31 23:59:59),
            datetime!(-0001-06-15 12:00),
            datetime!(2027-02-01 09:08:07),
        ] {
            assert_eq!(iso_time(t), iso_time_formatted(t), "{t}");
        }
        assert_eq!(
            iso_time(datetime!(2026-11-22 14:05:09)),
            "2026-11-22T14:05:09Z"
        );
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = Clock::manual(datetime!(2027-01-01 00:00));
        assert_eq!(c.now(), datetime!(2027-01-01 00:00));
        c.set(datetime!(2027-02-01 00:00));
        assert_eq!(c.now(), datetime!(2027-02-01 00:00));
    }
}
