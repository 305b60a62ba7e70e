//! What a key may spend: rate limits ("100 per second"), usage credits with an optional
//! daily or monthly refill, and the metadata object verification hands back. Parsed
//! from what a person typed or an API client sent, each with a message for its field.

use serde::{Deserialize, Serialize};
use time::{Date, Month, PrimitiveDateTime, Time};

/// At most this many rate limits per key.
pub const LIMITS_MAX: usize = 4;
/// Requests per window, at most.
pub const LIMIT_MAX: u64 = 1_000_000_000;
/// Credits a key may hold or be refilled to, at most.
pub const CREDITS_MAX: i64 = 1_000_000_000_000;
/// A verification may cost at most this many credits.
pub const COST_MAX: i64 = 1_000_000;
/// Metadata, as compact JSON, at most this many bytes.
pub const METADATA_MAX: usize = 4096;

/// The window a rate limit counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Second,
    Minute,
    Hour,
    Day,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::Second, Window::Minute, Window::Hour, Window::Day];

    pub fn seconds(self) -> u64 {
        match self {
            Window::Second => 1,
            Window::Minute => 60,
            Window::Hour => 3_600,
            Window::Day => 86_400,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    fn from_seconds(s: u64) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.seconds() == s)
    }

    /// "s", "sec", "second", "seconds", "1s"… (case-insensitive).
    fn parse(s: &str) -> Option<Window> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix('1').unwrap_or(&s).trim();
        Some(match s {
            "s" | "sec" | "secs" | "second" | "seconds" => Window::Second,
            "m" | "min" | "mins" | "minute" | "minutes" => Window::Minute,
            "h" | "hr" | "hrs" | "hour" | "hours" => Window::Hour,
            "d" | "day" | "days" => Window::Day,
            _ => return None,
        })
    }
}

/// `limit` requests per `window`: a bucket of `limit` requests that refills steadily
/// over the window (GCRA; see `ratelimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RateLimit {
    pub limit: u64,
    #[serde(rename = "per")]
    pub window: Window,
}

impl RateLimit {
    pub fn window_micros(&self) -> u64 {
        self.window.seconds() * 1_000_000
    }

    /// "100/second": what the form shows and what is stored.
    pub fn text(&self) -> String {
        format!("{}/{}", self.limit, self.window.as_str())
    }

    /// The policy's name in the `RateLimit-Policy` header.
    pub fn policy_name(&self) -> String {
        format!("{}-per-{}", self.limit, self.window.as_str())
    }
}

/// Limits as stored: "100/1 10000/86400" (limit / window in seconds).
pub fn stored_limits(limits: &[RateLimit]) -> String {
    limits
        .iter()
        .map(|l| format!("{}/{}", l.limit, l.window.seconds()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The stored form back; anything unreadable is skipped (the writer is this module).
pub fn read_stored_limits(stored: &str) -> Vec<RateLimit> {
    stored
        .split_whitespace()
        .filter_map(|item| {
            let (limit, secs) = item.split_once('/')?;
            Some(RateLimit {
                limit: limit.parse().ok()?,
                window: Window::from_seconds(secs.parse().ok()?)?,
            })
        })
        .collect()
}

/// Limits for the form: "100/second, 10000/day".
pub fn limits_text(limits: &[RateLimit]) -> String {
    limits
        .iter()
        .map(RateLimit::text)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Typed limits: "100/second, 10000 per day", separated by commas, semicolons or new
/// lines. At most one limit per window; sorted by window.
pub fn parse_limits(input: &str) -> Result<Vec<RateLimit>, String> {
    let mut out: Vec<RateLimit> = Vec::new();
    for item in input
        .split([',', ';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (n, w) = item
            .split_once('/')
            .or_else(|| item.split_once(" per "))
            .ok_or_else(|| {
                format!(
                    "Write “{}” as a number per window, e.g. 100/second.",
                    clip(item)
                )
            })?;
        let limit: u64 = n
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("“{}” is not a whole number of requests.", clip(n.trim())))?;
        if limit == 0 || limit > LIMIT_MAX {
            return Err(format!(
                "Allow between 1 and {LIMIT_MAX} requests per window."
            ));
        }
        let window = Window::parse(w).ok_or_else(|| {
            format!(
                "Use second, minute, hour or day (not “{}”).",
                clip(w.trim())
            )
        })?;
        if out.iter().any(|l| l.window == window) {
            return Err(format!("Give one limit per {}.", window.as_str()));
        }
        out.push(RateLimit { limit, window });
    }
    if out.len() > LIMITS_MAX {
        return Err(format!("Use at most {LIMITS_MAX} limits."));
    }
    out.sort_by_key(|l| (l.window, l.limit));
    Ok(out)
}

/// The same rules for limits sent as JSON objects.
pub fn check_limits(mut limits: Vec<RateLimit>) -> Result<Vec<RateLimit>, String> {
    parse_limits(&limits_text(&limits))?;
    if limits.iter().any(|l| l.limit == 0 || l.limit > LIMIT_MAX) {
        return Err(format!(
            "Allow between 1 and {LIMIT_MAX} requests per window."
        ));
    }
    limits.sort_by_key(|l| (l.window, l.limit));
    Ok(limits)
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// When credits are refilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Every day at 00:00 UTC.
    Daily,
    /// The first of every month at 00:00 UTC.
    Monthly,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Monthly => "monthly",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        match s.trim().to_ascii_lowercase().as_str() {
            "daily" | "day" => Some(Period::Daily),
            "monthly" | "month" => Some(Period::Monthly),
            _ => None,
        }
    }

    /// The start of the period `at` falls in.
    pub fn start(self, at: PrimitiveDateTime) -> PrimitiveDateTime {
        let day = match self {
            Period::Daily => at.date(),
            Period::Monthly => at.date().replace_day(1).unwrap_or(at.date()),
        };
        PrimitiveDateTime::new(day, Time::MIDNIGHT)
    }

    /// The start of the next period after the one `at` falls in.
    pub fn next(self, at: PrimitiveDateTime) -> PrimitiveDateTime {
        let start = self.start(at).date();
        let next = match self {
            Period::Daily => start.next_day().unwrap_or(start),
            Period::Monthly => {
                let (y, m) = match start.month() {
                    Month::December => (start.year() + 1, Month::January),
                    m => (start.year(), m.next()),
                };
                Date::from_calendar_date(y, m, 1).unwrap_or(start)
            }
        };
        PrimitiveDateTime::new(next, Time::MIDNIGHT)
    }
}

/// Credits refilled to `amount` at the start of every period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refill {
    #[serde(rename = "interval")]
    pub period: Period,
    pub amount: i64,
}

impl Refill {
    /// Whether a balance last refilled (or set) at `last` is due a refill at `now`.
    pub fn due(&self, last: Option<PrimitiveDateTime>, now: PrimitiveDateTime) -> bool {
        match last {
            None => true,
            Some(last) => self.period.start(now) > last,
        }
    }
}

/// A count of credits as typed: "" is `None` (no credit limit).
pub fn parse_credits(input: &str) -> Result<Option<i64>, String> {
    let t = input.trim().replace([',', '_'], "");
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<i64>() {
        Ok(n) if (0..=CREDITS_MAX).contains(&n) => Ok(Some(n)),
        Ok(_) => Err(format!("Use a number from 0 to {CREDITS_MAX}.")),
        Err(_) => Err("Enter a whole number, or leave empty for no credit limit.".into()),
    }
}

/// A refill as typed in the form: its period ("", "daily", "monthly") and amount.
pub fn parse_refill(
    period: &str,
    amount: &str,
) -> Result<Option<Refill>, (Option<String>, Option<String>)> {
    if period.trim().is_empty() || period.trim() == "none" {
        return Ok(None);
    }
    let Some(period) = Period::parse(period) else {
        return Err((Some("Choose daily or monthly.".into()), None));
    };
    match parse_credits(amount) {
        Ok(Some(amount)) if amount > 0 => Ok(Some(Refill { period, amount })),
        Ok(_) => Err((
            None,
            Some("Refill to how many credits? (at least 1)".into()),
        )),
        Err(e) => Err((None, Some(e))),
    }
}

/// Metadata as typed or sent: a JSON object, at most [`METADATA_MAX`] bytes once
/// compacted. Empty text is `None`.
pub fn parse_metadata(input: &str) -> Result<Option<String>, String> {
    if input.trim().is_empty() {
        return Ok(None);
    }
    if input.len() > METADATA_MAX * 4 {
        return Err(format!("Keep metadata under {METADATA_MAX} bytes."));
    }
    let value: serde_json::Value = serde_json::from_str(input)
        .map_err(|e| format!("Not valid JSON (line {}, column {}).", e.line(), e.column()))?;
    check_metadata(&value)
}

/// The same rules for metadata sent as a JSON value (`null` clears it).
pub fn check_metadata(value: &serde_json::Value) -> Result<Option<String>, String> {
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Object(_) => {
            let compact = value.to_string();
            if compact.len() > METADATA_MAX {
                Err(format!(
                    "Keep metadata under {METADATA_MAX} bytes (this is {}).",
                    compact.len()
                ))
            } else {
                Ok(Some(compact))
            }
        }
        _ => Err("Metadata must be a JSON object, like {\"plan\": \"pro\"}.".into()),
    }
}

/// Metadata pretty-printed for the form.
pub fn metadata_text(stored: Option<&str>) -> String {
    stored
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn limits_parse_in_many_spellings_and_round_trip() {
        let l = parse_limits("10000 per day, 100/s;\n 5/1m").unwrap();
        assert_eq!(limits_text(&l), "100/second, 5/minute, 10000/day");
        assert_eq!(read_stored_limits(&stored_limits(&l)), l);
        assert!(parse_limits("").unwrap().is_empty());
        assert!(parse_limits("0/second").is_err());
        assert!(parse_limits("10/second, 20/sec").is_err());
        assert!(parse_limits("10/fortnight").is_err());
        assert!(parse_limits("ten/second").is_err());
        assert!(parse_limits("1/s,1/m,1/h,1/d").is_ok());
    }

    #[test]
    fn refill_periods_start_at_midnight_utc() {
        let at = datetime!(2026-12-31 23:59:59);
        assert_eq!(Period::Daily.next(at), datetime!(2027-01-01 0:00));
        assert_eq!(Period::Monthly.start(at), datetime!(2026-12-01 0:00));
        assert_eq!(Period::Monthly.next(at), datetime!(2027-01-01 0:00));
        assert_eq!(
            Period::Monthly.next(datetime!(2028-01-31 12:00)),
            datetime!(2028-02-01 0:00)
        );
        let r = Refill {
            period: Period::Daily,
            amount: 5,
        };
        assert!(!r.due(
            Some(datetime!(2026-11-30 0:00)),
            datetime!(2026-11-30 23:59)
        ));
        assert!(r.due(
            Some(datetime!(2026-11-30 23:59)),
            datetime!(2026-12-01 0:00)
        ));
        assert!(r.due(None, datetime!(2026-12-01 0:00)));
    }

    #[test]
    fn metadata_is_a_small_json_object() {
        assert_eq!(
            parse_metadata(" { \"plan\" : \"pro\" } ")
                .unwrap()
                .as_deref(),
            Some("{\"plan\":\"pro\"}")
        );
        assert_eq!(parse_metadata("").unwrap(), None);
        assert!(parse_metadata("[1]").is_err());
        assert!(parse_metadata("{").is_err());
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(METADATA_MAX));
        assert!(parse_metadata(&big).is_err());
    }

    #[test]
    fn credits_are_whole_and_bounded() {
        assert_eq!(parse_credits(" 1,000 ").unwrap(), Some(1000));
        assert_eq!(parse_credits("").unwrap(), None);
        assert!(parse_credits("-1").is_err());
        assert!(parse_credits("1.5").is_err());
        assert!(parse_refill("weekly", "5").is_err());
        assert!(parse_refill("daily", "").is_err());
        assert_eq!(
            parse_refill("monthly", "10").unwrap(),
            Some(Refill {
                period: Period::Monthly,
                amount: 10
            })
        );
    }
}
