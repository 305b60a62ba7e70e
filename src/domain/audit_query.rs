//! The audit page's filter, parsed from the URL. Out-of-range or malformed values are
//! refused with a message (a 400), never a panic: `to=9999-12-31` once overflowed the
//! "end of that day" arithmetic and closed the connection.

use serde::Deserialize;
use time::PrimitiveDateTime;
use time::macros::format_description;

#[derive(Deserialize, Default, Debug, Clone)]
pub struct AuditParams {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub channel: Option<String>,
    pub key: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub before: Option<i64>,
}

/// What the audit log is filtered by; `to` is exclusive (the end of the chosen day).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub channel_id: Option<i64>,
    pub key_id: Option<String>,
    pub from: Option<PrimitiveDateTime>,
    pub to: Option<PrimitiveDateTime>,
    pub before: Option<i64>,
}

fn text(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(100).collect())
}

fn date(field: &str, s: &Option<String>) -> Result<Option<time::Date>, String> {
    let Some(s) = s.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    time::Date::parse(s, &format_description!("[year]-[month]-[day]"))
        .map(Some)
        .map_err(|_| format!("Enter the “{field}” date as YYYY-MM-DD."))
}

impl AuditQuery {
    /// `actions` are the known audit actions; an unknown one filters nothing.
    pub fn parse(p: &AuditParams, actions: &[&str]) -> Result<Self, String> {
        let channel_id = match p.channel.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) => Some(c.parse().map_err(|_| "Choose a channel from the list.")?),
        };
        let from = date("from", &p.from)?.map(time::Date::midnight);
        let to = match date("to", &p.to)? {
            None => None,
            Some(d) => Some(
                d.next_day()
                    .ok_or_else(|| "The “to” date is out of range.".to_owned())?
                    .midnight(),
            ),
        };
        Ok(AuditQuery {
            actor: text(&p.actor),
            action: text(&p.action).filter(|a| actions.contains(&a.as_str())),
            channel_id,
            key_id: text(&p.key),
            from,
            to,
            before: p.before.filter(|b| *b > 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(from: &str, to: &str) -> AuditParams {
        AuditParams {
            from: Some(from.into()),
            to: Some(to.into()),
            ..AuditParams::default()
        }
    }

    #[test]
    fn dates_at_the_edges_are_answered_not_panicked_on() {
        assert!(AuditQuery::parse(&params("", "9999-12-31"), &[]).is_err());
        assert!(AuditQuery::parse(&params("9999-12-31", ""), &[]).is_ok());
        assert!(AuditQuery::parse(&params("0000-01-01", "9999-12-30"), &[]).is_ok());
        assert!(AuditQuery::parse(&params("2026-02-30", ""), &[]).is_err());
        assert!(AuditQuery::parse(&params("yesterday", ""), &[]).is_err());
        let q = AuditQuery::parse(&params("2026-11-01", "2026-11-29"), &[]).unwrap();
        assert_eq!(q.to, Some(time::macros::datetime!(2026-11-30 00:00)));
    }
}
