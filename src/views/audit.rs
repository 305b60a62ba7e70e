use askama::Template;

use super::{Shell, format_time};
use crate::db::audit::AuditEvent;

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub source_ip: String,
    pub channel: Option<(i64, String)>,
    pub key: Option<(String, String)>,
    pub details: String,
    /// Failed and throttled logins are one line per account, address and minute.
    pub count: i64,
}

impl AuditRow {
    pub fn new(e: &AuditEvent) -> Self {
        AuditRow {
            at: format_time(e.occurred_at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            source_ip: e.source_ip.clone().unwrap_or_else(|| "—".into()),
            channel: e.channel_id.zip(e.channel_name.clone()),
            key: e
                .key_id
                .clone()
                .map(|k| (k, e.key_name.clone().unwrap_or_default())),
            details: e.details.clone(),
            count: e.repeat_count,
        }
    }
}

/// The filter as typed, for re-showing it.
#[derive(Debug, Clone, Default)]
pub struct AuditFilterValues {
    pub actor: String,
    pub action: String,
    pub channel: String,
    pub key: String,
    pub from: String,
    pub to: String,
}

#[derive(Template)]
#[template(path = "pages/audit.html")]
pub struct AuditPage {
    pub shell: Shell,
    pub rows: Vec<AuditRow>,
    pub values: AuditFilterValues,
    pub actions: Vec<&'static str>,
    pub channels: Vec<(i64, String)>,
    pub older_href: Option<String>,
    pub newest_href: Option<String>,
    pub keys_only: bool,
}

impl AuditPage {
    pub fn is_channel(&self, id: &i64) -> bool {
        self.values.channel == id.to_string()
    }
}
