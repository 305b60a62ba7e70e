//! How an event becomes a POSTback: its Standard Webhooks message and the receiver host
//! its delivery is counted against (used by `events::Recorder` when it fills the outbox).

use crate::db::keys::ApiKey;
use crate::domain::clock::iso_time;

/// The Standard Webhooks payload: `{"type", "timestamp", "data"}`; `data` is the key
/// as the API shows it, never the key itself.
pub(super) fn payload(key: &ApiKey, channel: &str, event_type: &str) -> serde_json::Value {
    let now = crate::db::now();
    serde_json::json!({
        "type": event_type,
        "timestamp": iso_time(now),
        "data": {
            "key_id": key.key_id,
            "name": key.name,
            "channel_id": key.channel_id,
            "channel": channel,
            "enabled": key.enabled,
            "status": key.status(now).as_str(),
            "scopes": key.scope_list(),
            "expires_at": key.expires_at.map(iso_time),
            "roll_ends_at": key.roll_ends_at.map(iso_time),
            "rolled_to_key_id": key.rolled_to_key_id,
        }
    })
}

/// `host:port` of a receiver: the unit of the per-host cap on concurrent deliveries.
pub(super) fn receiver_host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_ascii_lowercase();
            Some(format!("{host}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_default()
}
