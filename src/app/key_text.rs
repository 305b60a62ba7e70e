//! How a key and a change to it read in the audit log.

use crate::db::keys::ApiKey;
use crate::domain::clock::format_time;
use crate::domain::limits;

/// An imported key: by which digest, and its settings.
pub(super) fn imported(k: &ApiKey) -> String {
    format!(
        "imported by its {} digest; {}",
        k.imported_as.as_deref().unwrap_or("sha256"),
        describe(k)
    )
}

/// A leak report: who found the key where, and what was done.
pub(super) fn leaked(url: &str, reporter: &str, deactivated: bool) -> String {
    let done = if deactivated {
        "deactivated"
    } else {
        "flagged (left active)"
    };
    format!("reported leaked by {reporter}, found at {url}; {done}")
}

/// An export: how many keys, in which format, with which filter.
pub(super) fn exported(count: i64, format: &str, filter: &str) -> String {
    let keys = if count == 1 { "key" } else { "keys" };
    format!("exported {count} {keys} as {format} ({filter})")
}

pub(super) fn describe(k: &ApiKey) -> String {
    let scopes = k.scope_list();
    let mut parts = vec![format!(
        "scopes: {}",
        if scopes.is_empty() {
            "none".into()
        } else {
            scopes.join(", ")
        }
    )];
    parts.push(format!(
        "expires: {}",
        k.expires_at.map_or_else(|| "never".to_owned(), format_time)
    ));
    if !k.allowed_cidrs.is_empty() {
        parts.push(format!("allowed networks: {}", k.allowed_cidrs));
    }
    if k.off_the_record {
        parts.push("off the record".into());
    }
    if !k.enabled {
        parts.push("inactive".into());
    }
    parts.join("; ")
}

pub(super) fn diff(a: &ApiKey, b: &ApiKey) -> Vec<String> {
    let mut out = Vec::new();
    if a.name != b.name {
        out.push(format!("name \"{}\" → \"{}\"", a.name, b.name));
    }
    if a.description != b.description {
        out.push("description changed".into());
    }
    if a.scopes != b.scopes {
        out.push(format!("scopes \"{}\" → \"{}\"", a.scopes, b.scopes));
    }
    if a.allowed_cidrs != b.allowed_cidrs {
        out.push(format!(
            "allowed networks \"{}\" → \"{}\"",
            a.allowed_cidrs, b.allowed_cidrs
        ));
    }
    if a.postback_url != b.postback_url {
        out.push("POSTback URL changed".into());
    }
    if a.off_the_record != b.off_the_record {
        out.push(format!(
            "off the record {} → {}",
            a.off_the_record, b.off_the_record
        ));
    }
    if a.enabled != b.enabled {
        out.push(if b.enabled {
            "activated".into()
        } else {
            "deactivated".into()
        });
    }
    if a.expires_at != b.expires_at {
        let f =
            |t: Option<time::PrimitiveDateTime>| t.map_or_else(|| "never".to_owned(), format_time);
        out.push(format!("expiry {} → {}", f(a.expires_at), f(b.expires_at)));
    }
    if a.rate_limits != b.rate_limits {
        let f = |k: &ApiKey| match limits::limits_text(&k.limits()) {
            t if t.is_empty() => "none".to_owned(),
            t => t,
        };
        out.push(format!("rate limits \"{}\" → \"{}\"", f(a), f(b)));
    }
    if a.credits != b.credits || a.credit_epoch != b.credit_epoch {
        let f = |c: Option<i64>| c.map_or_else(|| "unlimited".to_owned(), |c| c.to_string());
        out.push(format!("credits {} → {}", f(a.credits), f(b.credits)));
    }
    if a.refill() != b.refill() {
        let f = |k: &ApiKey| {
            k.refill().map_or_else(
                || "none".to_owned(),
                |r| format!("{} to {}", r.period.as_str(), r.amount),
            )
        };
        out.push(format!("refill {} → {}", f(a), f(b)));
    }
    if a.metadata != b.metadata {
        out.push("metadata changed".into());
    }
    out
}
