//! One key: its settings, last use, usage charts (server-rendered SVG) and request log.

use std::collections::HashMap;

use askama::Template;
use time::PrimitiveDateTime;

use super::keys::KeyPermissions;
use super::{Shell, format_time};
use crate::db::channels::Channel;
use crate::db::keys::ApiKey;
use crate::db::outbox::{NEVER, OutboxRow, Outcome};
use crate::db::usage::{RequestRow, StatusFilter};
use crate::domain::key::obfuscate;
use crate::domain::status::KeyStatus;

pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub label: String,
    pub count: i64,
}

/// A bar chart as plain SVG shapes: no script, no chart library.
pub struct Chart {
    pub title: String,
    pub total: i64,
    pub max: i64,
    pub bars: Vec<Bar>,
    pub first_label: String,
    pub last_label: String,
}

pub const CHART_W: u32 = 600;
pub const CHART_H: u32 = 120;

impl Chart {
    fn new(title: &str, buckets: Vec<(String, i64)>) -> Self {
        let max = buckets.iter().map(|b| b.1).max().unwrap_or(0);
        let n = buckets.len().max(1) as u32;
        let slot = CHART_W / n;
        let gap = if slot > 6 { 2 } else { 1 };
        let bars = buckets
            .iter()
            .enumerate()
            .map(|(i, (label, count))| {
                let h = if max == 0 {
                    0
                } else {
                    ((*count as f64 / max as f64) * f64::from(CHART_H - 4)).round() as u32
                };
                let h = if *count > 0 { h.max(2) } else { 0 };
                Bar {
                    x: i as u32 * slot,
                    y: CHART_H - h,
                    width: slot.saturating_sub(gap).max(1),
                    height: h,
                    label: label.clone(),
                    count: *count,
                }
            })
            .collect();
        Chart {
            title: title.to_owned(),
            total: buckets.iter().map(|b| b.1).sum(),
            max,
            first_label: buckets.first().map(|b| b.0.clone()).unwrap_or_default(),
            last_label: buckets.last().map(|b| b.0.clone()).unwrap_or_default(),
            bars,
        }
    }

    pub fn width(&self) -> u32 {
        CHART_W
    }

    pub fn height(&self) -> u32 {
        CHART_H
    }
}

/// Per-day (30) and per-hour (48) charts from rollup series (bucket start, count);
/// buckets with no row are zero.
pub fn charts(
    days: &[(PrimitiveDateTime, i64)],
    hours: &[(PrimitiveDateTime, i64)],
    now: PrimitiveDateTime,
) -> (Chart, Chart) {
    let by_day: HashMap<PrimitiveDateTime, i64> = days.iter().copied().collect();
    let by_hour: HashMap<PrimitiveDateTime, i64> = hours.iter().copied().collect();
    let day_fmt = time::macros::format_description!("[year]-[month]-[day]");
    let hour_fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:00");
    let today = now.replace_time(time::Time::MIDNIGHT);
    let this_hour = today + time::Duration::hours(i64::from(now.hour()));
    let day_bars: Vec<(String, i64)> = (0..30)
        .rev()
        .map(|d| {
            let at = today - time::Duration::days(d);
            let n = by_day.get(&at).copied().unwrap_or(0);
            (at.format(&day_fmt).unwrap_or_default(), n)
        })
        .collect();
    let hour_bars: Vec<(String, i64)> = (0..48)
        .rev()
        .map(|h| {
            let at = this_hour - time::Duration::hours(h);
            let n = by_hour.get(&at).copied().unwrap_or(0);
            (at.format(&hour_fmt).unwrap_or_default(), n)
        })
        .collect();
    (
        Chart::new("Requests per day, last 30 days", day_bars),
        Chart::new("Requests per hour, last 48 hours", hour_bars),
    )
}

pub struct LogRow {
    pub at: String,
    /// "Made with this key" or "Verified by a caller".
    pub kind: &'static str,
    pub verification: bool,
    /// For verifications: the outcome code (VALID, DISABLED, …).
    pub code: String,
    pub method: String,
    pub route: String,
    pub status: i32,
    pub status_class: &'static str,
    pub source_ip: String,
}

impl LogRow {
    pub fn new(r: &RequestRow) -> Self {
        LogRow {
            at: format_time(r.occurred_at),
            kind: if r.kind == "verify" {
                "Verified by a caller"
            } else {
                "Made with this key"
            },
            verification: r.kind == "verify",
            code: r.code.clone().unwrap_or_default(),
            method: r.method.clone(),
            route: r.route.clone(),
            status: r.status,
            status_class: match r.status {
                200..=299 => "badge-success",
                400..=499 => "badge-warn",
                _ => "badge-danger",
            },
            source_ip: r.source_ip.clone().unwrap_or_else(|| "—".into()),
        }
    }
}

/// The request log table with its status filter and "older" link.
#[derive(Template)]
#[template(path = "partials/request_log.html")]
pub struct RequestLog {
    pub key_id: String,
    pub rows: Vec<LogRow>,
    pub status: Option<StatusFilter>,
    pub older_href: Option<String>,
    pub newest_href: Option<String>,
    pub off_the_record: bool,
}

impl RequestLog {
    pub fn filter_href(&self, f: Option<&str>) -> String {
        match f {
            Some(f) => format!("/keys/{}?status={f}", self.key_id),
            None => format!("/keys/{}", self.key_id),
        }
    }

    pub fn is_status(&self, f: &str) -> bool {
        self.status.map(|s| s.as_str()) == Some(f)
    }
}

/// One POSTback event of this key and how its delivery went: a coarse outcome, never
/// the HTTP client's error text (it would map the receiver's network).
pub struct DeliveryRow {
    pub id: i64,
    pub event: String,
    pub queued: String,
    pub attempts: i32,
    pub state: &'static str,
    pub state_class: &'static str,
    pub detail: String,
    /// Not being sent right now, so it can be queued again.
    pub resendable: bool,
}

impl DeliveryRow {
    pub fn new(r: &OutboxRow, now: PrimitiveDateTime) -> Self {
        let outcome = r.last_outcome.as_deref().and_then(Outcome::parse);
        let (state, state_class) = match (r.delivered_at, r.next_attempt_at >= NEVER) {
            (Some(_), _) => ("Delivered", "badge-success"),
            (None, true) => ("Failed", "badge-danger"),
            (None, false) if r.attempts == 0 => ("Queued", "badge"),
            (None, false) => ("Retrying", "badge-warn"),
        };
        let status = r.last_status.unwrap_or(0);
        let what = match outcome {
            None => String::new(),
            Some(Outcome::Delivered) => match r.delivered_at {
                Some(t) => format!("{} · HTTP {status}", format_time(t)),
                None => String::new(),
            },
            Some(Outcome::Refused) => "Refused by policy (internal address)".into(),
            Some(Outcome::Http) => format!("Failed with HTTP {status}"),
            Some(Outcome::TimedOut) => "Timed out".into(),
            Some(Outcome::Failed) => "Failed: no answer".into(),
            Some(Outcome::Gone) => "410 Gone: POSTback turned off".into(),
            Some(Outcome::NoSecret) => {
                "Not sent: the signing secret cannot be read (roll it)".into()
            }
        };
        let detail = match state {
            "Retrying" => format!("{what}; next try {}", format_time(r.next_attempt_at)),
            "Failed" if outcome != Some(Outcome::Gone) => {
                format!("{what}; gave up after a day")
            }
            _ => what,
        };
        DeliveryRow {
            id: r.id,
            event: r.event_type.clone(),
            queued: format_time(r.created_at),
            attempts: r.attempts,
            state,
            state_class,
            detail,
            resendable: r.locked_until.is_none_or(|t| t < now),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/key_detail.html")]
pub struct KeyDetailPage {
    pub shell: Shell,
    pub key_id: String,
    pub name: String,
    pub description: Option<String>,
    pub obfuscated: String,
    pub channel_id: i64,
    pub channel_name: String,
    pub scopes: Vec<String>,
    pub cidrs: Vec<String>,
    pub postback_url: Option<String>,
    pub enabled: bool,
    pub status: KeyStatus,
    pub expires: Option<String>,
    pub created: String,
    pub created_by: String,
    pub last_used: Option<String>,
    pub last_used_ip: Option<String>,
    pub off_the_record: bool,
    pub daily: Chart,
    pub hourly: Chart,
    /// Requests in the last 24 hours and 30 days (from rollups).
    pub uses_24h: i64,
    pub uses_30d: i64,
    /// Totals per outcome over 30 days, largest first.
    pub outcomes: Vec<(String, i64)>,
    pub log: RequestLog,
    pub perms: KeyPermissions,
    pub deliveries: Vec<DeliveryRow>,
    /// When a receiver answered 410 Gone and the POSTback was turned off.
    pub postback_off: Option<String>,
    /// During a signing-secret roll: until when the previous secret also signs.
    pub secret_overlap_ends: Option<String>,
    /// Each rate limit and its use in the current window ("37 of 100 used").
    pub rate_limits: Vec<(String, String)>,
    /// Remaining credits (`None`: no credit limit), and the next refill.
    pub credits: Option<i64>,
    pub refill: Option<String>,
    pub next_refill: Option<String>,
    /// Pretty-printed metadata.
    pub metadata: Option<String>,
}

impl KeyDetailPage {
    pub fn new(
        shell: Shell,
        k: &ApiKey,
        channel: &Channel,
        now: PrimitiveDateTime,
        charts: (Chart, Chart),
        log: RequestLog,
        perms: KeyPermissions,
    ) -> Self {
        KeyDetailPage {
            shell,
            key_id: k.key_id.clone(),
            name: k.name.clone(),
            description: k.description.clone(),
            obfuscated: obfuscate(&k.prefix, &k.key_id, &k.last_four),
            channel_id: channel.id,
            channel_name: channel.name.clone(),
            scopes: k.scope_list().into_iter().map(str::to_owned).collect(),
            cidrs: k.cidr_list().into_iter().map(str::to_owned).collect(),
            postback_url: k.postback_url.clone(),
            enabled: k.enabled,
            status: k.status(now),
            expires: k.expires_at.map(format_time),
            created: format_time(k.created_at),
            created_by: k.created_by.clone(),
            last_used: k.last_used_at.map(format_time),
            last_used_ip: k.last_used_ip.clone(),
            off_the_record: k.off_the_record,
            daily: charts.0,
            hourly: charts.1,
            uses_24h: k.uses_24h,
            uses_30d: k.uses_30d,
            outcomes: Vec::new(),
            log,
            perms,
            deliveries: Vec::new(),
            postback_off: k.postback_gone_at.map(format_time),
            secret_overlap_ends: None,
            rate_limits: Vec::new(),
            credits: k.credits,
            refill: k
                .refill()
                .map(|r| format!("{} to {}", r.period.as_str(), r.amount)),
            next_refill: k.next_refill(now).map(format_time),
            metadata: k
                .metadata
                .as_deref()
                .map(|m| crate::domain::limits::metadata_text(Some(m))),
        }
    }
}
