//! Everything about a key except the key itself, parsed from what a person typed
//! (dashboard form) or sent (JSON API). Parsing returns either valid settings or the
//! message for each field that is wrong, so forms can show errors beside the fields
//! and keep what was typed.

use ipnetwork::IpNetwork;
use time::PrimitiveDateTime;

use crate::domain::limits::{
    RateLimit, Refill, parse_credits, parse_limits, parse_metadata, parse_refill,
};
use crate::domain::receiver::Policy;
use time::macros::format_description;

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;
pub const URL_MAX: usize = 2000;
pub const CIDRS_MAX: usize = 50;

/// What a form or request carried, as text, before parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInput {
    pub name: String,
    pub description: String,
    pub expires_at: String,
    pub scopes: Vec<String>,
    pub cidrs: Vec<String>,
    pub postback_url: String,
    pub off_the_record: bool,
    pub enabled: bool,
    /// "100/second, 10000/day" (empty: no limit).
    pub rate_limits: String,
    /// Remaining credits (empty: no credit limit).
    pub credits: String,
    /// What the edit form showed as remaining credits: an unchanged figure leaves the
    /// balance alone (it may have been spent meanwhile). `None` when creating.
    pub credits_was: Option<String>,
    /// "", "daily" or "monthly", and the amount credits are refilled to.
    pub refill: String,
    pub refill_amount: String,
    /// A JSON object (empty: none).
    pub metadata: String,
}

/// What to do with a key's credit balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CreditsChange {
    /// Leave the balance as it is.
    #[default]
    Keep,
    /// No credit limit.
    Unlimited,
    /// Set the remaining credits to this.
    Set(i64),
}

/// Valid settings, ready to store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeySettings {
    pub name: String,
    pub description: Option<String>,
    pub expires_at: Option<PrimitiveDateTime>,
    /// Sorted, deduplicated, each one of the deployment's scopes.
    pub scopes: Vec<String>,
    /// Normalised networks; empty means any address.
    pub cidrs: Vec<IpNetwork>,
    pub postback_url: Option<String>,
    pub off_the_record: bool,
    pub enabled: bool,
    /// Sorted by window, at most one per window.
    pub rate_limits: Vec<RateLimit>,
    pub credits: CreditsChange,
    pub refill: Option<Refill>,
    /// Compact JSON object.
    pub metadata: Option<String>,
}

impl KeySettings {
    pub fn scopes_text(&self) -> String {
        self.scopes.join(" ")
    }

    pub fn cidrs_text(&self) -> String {
        self.cidrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The message beside each field; `cidrs` has one slot per typed network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyErrors {
    pub name: Option<String>,
    pub description: Option<String>,
    pub expires_at: Option<String>,
    pub scopes: Option<String>,
    pub cidrs: Vec<Option<String>>,
    pub postback_url: Option<String>,
    pub rate_limits: Option<String>,
    pub credits: Option<String>,
    pub refill: Option<String>,
    pub refill_amount: Option<String>,
    pub metadata: Option<String>,
}

impl KeyErrors {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.expires_at.is_none()
            && self.scopes.is_none()
            && self.cidrs.iter().all(Option::is_none)
            && self.postback_url.is_none()
            && self.rate_limits.is_none()
            && self.credits.is_none()
            && self.refill.is_none()
            && self.refill_amount.is_none()
            && self.metadata.is_none()
    }

    pub fn cidr(&self, i: usize) -> Option<&str> {
        self.cidrs.get(i).and_then(|e| e.as_deref())
    }

    /// `(field, message)` pairs for the JSON API.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut push = |f: &str, m: &Option<String>| {
            if let Some(m) = m {
                out.push((f.to_owned(), m.clone()));
            }
        };
        push("name", &self.name);
        push("description", &self.description);
        push("expires_at", &self.expires_at);
        push("scopes", &self.scopes);
        push("postback_url", &self.postback_url);
        push("rate_limits", &self.rate_limits);
        push("credits", &self.credits);
        push("refill", &self.refill);
        push("refill.amount", &self.refill_amount);
        push("metadata", &self.metadata);
        for (i, e) in self.cidrs.iter().enumerate() {
            if let Some(m) = e {
                out.push((format!("allowed_cidrs[{i}]"), m.clone()));
            }
        }
        out
    }
}

impl KeyInput {
    /// `now` decides whether an expiry is in the past; an expiry equal to
    /// `existing_expiry` (editing a key without touching its expiry) is accepted as is.
    #[expect(
        clippy::result_large_err,
        reason = "errors are the common, cheap path of a form; boxing buys nothing"
    )]
    pub fn parse(
        &self,
        allowed_scopes: &[String],
        now: PrimitiveDateTime,
        existing_expiry: Option<PrimitiveDateTime>,
        receivers: &Policy,
    ) -> Result<KeySettings, KeyErrors> {
        let mut errors = KeyErrors::default();
        let name = parse_name(&self.name)
            .map_err(|e| errors.name = Some(e))
            .ok();
        let description = parse_description(&self.description)
            .map_err(|e| errors.description = Some(e))
            .ok();
        let expires_at = parse_expiry(&self.expires_at)
            .and_then(|t| match t {
                Some(t) if t <= now && Some(t) != existing_expiry => Err(
                    "Choose a time in the future, or leave empty for a key that never expires."
                        .into(),
                ),
                other => Ok(other),
            })
            .map_err(|e| errors.expires_at = Some(e))
            .ok();
        let scopes = parse_scopes(&self.scopes, allowed_scopes)
            .map_err(|e| errors.scopes = Some(e))
            .ok();
        let typed: Vec<&String> = self.cidrs.iter().collect();
        let mut cidrs = Vec::new();
        errors.cidrs = typed
            .iter()
            .map(|c| {
                if c.trim().is_empty() {
                    return None;
                }
                match parse_cidr(c) {
                    Ok(n) => {
                        if !cidrs.contains(&n) {
                            cidrs.push(n);
                        }
                        None
                    }
                    Err(e) => Some(e),
                }
            })
            .collect();
        if cidrs.len() > CIDRS_MAX {
            errors
                .cidrs
                .push(Some(format!("Use at most {CIDRS_MAX} networks.")));
        }
        let postback_url = parse_postback_url(&self.postback_url, receivers)
            .map_err(|e| errors.postback_url = Some(e))
            .ok();
        let rate_limits = parse_limits(&self.rate_limits)
            .map_err(|e| errors.rate_limits = Some(e))
            .ok();
        let credits = match parse_credits(&self.credits) {
            Err(e) => {
                errors.credits = Some(e);
                None
            }
            Ok(_) if self.credits_was.as_deref().map(str::trim) == Some(self.credits.trim()) => {
                Some(CreditsChange::Keep)
            }
            Ok(None) => Some(CreditsChange::Unlimited),
            Ok(Some(n)) => Some(CreditsChange::Set(n)),
        };
        let refill = parse_refill(&self.refill, &self.refill_amount)
            .map_err(|(p, a)| {
                errors.refill = p;
                errors.refill_amount = a;
            })
            .ok();
        if matches!(refill, Some(Some(_))) && self.credits.trim().is_empty() {
            errors.credits =
                Some("A refill needs a credit limit: enter the remaining credits.".into());
        }
        let metadata = parse_metadata(&self.metadata)
            .map_err(|e| errors.metadata = Some(e))
            .ok();
        if !errors.is_empty() {
            return Err(errors);
        }
        let (Some(rate_limits), Some(credits), Some(refill), Some(metadata)) =
            (rate_limits, credits, refill, metadata)
        else {
            return Err(errors);
        };
        match (name, description, expires_at, scopes, postback_url) {
            (Some(name), Some(description), Some(expires_at), Some(scopes), Some(postback_url)) => {
                Ok(KeySettings {
                    name,
                    description,
                    expires_at,
                    scopes,
                    cidrs,
                    postback_url,
                    off_the_record: self.off_the_record,
                    enabled: self.enabled,
                    rate_limits,
                    credits,
                    refill,
                    metadata,
                })
            }
            _ => Err(errors),
        }
    }
}

pub fn parse_name(input: &str) -> Result<String, String> {
    let name = input.trim();
    if name.is_empty() {
        return Err("Enter a name.".into());
    }
    if name.chars().count() > NAME_MAX {
        return Err(format!("Use at most {NAME_MAX} characters."));
    }
    crate::domain::names::refuse_hidden(name)?;
    Ok(name.to_owned())
}

fn parse_description(input: &str) -> Result<Option<String>, String> {
    let d = input.trim();
    if d.is_empty() {
        return Ok(None);
    }
    if d.chars().count() > DESCRIPTION_MAX {
        return Err(format!("Use at most {DESCRIPTION_MAX} characters."));
    }
    if d.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err("Control characters are not allowed.".into());
    }
    Ok(Some(d.to_owned()))
}

/// `YYYY-MM-DDTHH:MM` (what `<input type="datetime-local">` sends), with optional
/// seconds and an optional trailing `Z`; always UTC.
pub fn parse_expiry(input: &str) -> Result<Option<PrimitiveDateTime>, String> {
    let s = input.trim().trim_end_matches('Z');
    if s.is_empty() {
        return Ok(None);
    }
    let with_seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let without = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let s = s.replacen(' ', "T", 1);
    PrimitiveDateTime::parse(&s, &with_seconds)
        .or_else(|_| PrimitiveDateTime::parse(&s, &without))
        .map(Some)
        .map_err(|_| "Enter a date and time like 2027-01-31T18:00 (UTC).".into())
}

fn parse_scopes(input: &[String], allowed: &[String]) -> Result<Vec<String>, String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in input.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            let shown: String = s.chars().take(40).collect();
            return Err(format!(
                "Unknown scope \"{shown}\". Choose from: {}.",
                allowed.join(", ")
            ));
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    scopes.sort();
    Ok(scopes)
}

/// An IPv4 or IPv6 network (`203.0.113.0/24`, `2001:db8::/32`) or a single address.
/// A network with host bits set is refused with the network it probably meant.
pub fn parse_cidr(input: &str) -> Result<IpNetwork, String> {
    let s = input.trim();
    if s.len() > 64 {
        return Err("That is not an IP network.".into());
    }
    let net: IpNetwork = s.parse().map_err(|_| {
        format!(
            "\"{}\" is not an IPv4 or IPv6 network (like 203.0.113.0/24 or 2001:db8::/32).",
            s.chars().take(64).collect::<String>()
        )
    })?;
    let normal = IpNetwork::new(net.network(), net.prefix())
        .map_err(|_| "That is not an IP network.".to_owned())?;
    if normal.ip() != net.ip() {
        return Err(format!("Host bits are set: did you mean {normal}?"));
    }
    Ok(normal)
}

/// A receiver's URL: http(s), a valid host, and nothing internal ([`crate::domain::receiver`]).
pub fn parse_postback_url(input: &str, receivers: &Policy) -> Result<Option<String>, String> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > URL_MAX {
        return Err(format!("Use at most {URL_MAX} characters."));
    }
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| "Enter an http:// or https:// URL.".to_owned())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let bare = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or_default()
            .trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or_default()
    };
    if bare.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "Enter a complete URL with a host, like https://example.com/hooks/latchkey.".into(),
        );
    }
    if !bare
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return Err("The host of this URL is not valid.".into());
    }
    crate::domain::receiver::check_url(s, receivers)?;
    Ok(Some(s.to_owned()))
}

#[cfg(test)]
mod tests;
