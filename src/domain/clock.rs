//! How times are written: every stored time is UTC, and the dashboard says so.

use time::PrimitiveDateTime;
use time::macros::format_description;

/// `2026-11-22 14:05 UTC`.
pub fn format_time(t: PrimitiveDateTime) -> String {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.format(&f).unwrap_or_default()
}

/// ISO-8601 for `<time datetime=…>` and JSON.
pub fn iso_time(t: PrimitiveDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

/// The value an `<input type="datetime-local">` expects.
pub fn input_time(t: PrimitiveDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    t.format(&f).unwrap_or_default()
}
