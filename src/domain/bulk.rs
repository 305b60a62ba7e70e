//! A bulk request: one action (activate, deactivate, delete, set the expiry) over a
//! selection, which is either explicit key ids or every key a filter matches (resolved
//! on the server from the filter, never from what a browser remembers of three pages).
//! Parsed from the dashboard's form pairs or the API's JSON, with a message for every
//! refusal.

use serde::Deserialize;
use time::PrimitiveDateTime;

use super::key::looks_like_key_id;
use super::key_settings::parse_expiry;
use super::list::{ListParams, ListQuery};
use super::role::Action;

/// Keys changed per transaction.
pub const CHUNK: usize = 200;
/// The most keys one request may change (a larger filter is narrowed first).
pub const MAX_KEYS: usize = 10_000;
/// The most explicit key ids one request may name.
pub const MAX_IDS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Activate,
    Deactivate,
    Delete,
    SetExpiry,
}

impl BulkAction {
    pub const ALL: [BulkAction; 4] = [
        BulkAction::Deactivate,
        BulkAction::Activate,
        BulkAction::Delete,
        BulkAction::SetExpiry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Activate => "activate",
            BulkAction::Deactivate => "deactivate",
            BulkAction::Delete => "delete",
            BulkAction::SetExpiry => "expiry",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// What a person's role must allow: the same as the single-key action.
    pub fn permission(self) -> Action {
        match self {
            BulkAction::Activate => Action::ActivateKey,
            BulkAction::Deactivate | BulkAction::Delete => Action::RevokeKey,
            BulkAction::SetExpiry => Action::EditKey,
        }
    }

    /// "Deactivate", for buttons and titles.
    pub fn label(self) -> &'static str {
        match self {
            BulkAction::Activate => "Activate",
            BulkAction::Deactivate => "Deactivate",
            BulkAction::Delete => "Delete",
            BulkAction::SetExpiry => "Set the expiry of",
        }
    }

    /// "deactivated", for the summary.
    pub fn done(self) -> &'static str {
        match self {
            BulkAction::Activate => "activated",
            BulkAction::Deactivate => "deactivated",
            BulkAction::Delete => "deleted",
            BulkAction::SetExpiry => "given the new expiry",
        }
    }
}

/// Which keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These key ids (each once, in the order given).
    Ids(Vec<String>),
    /// Every key the filter matches, in a channel or across the channels in reach.
    Matching {
        channel: Option<i64>,
        query: ListQuery,
    },
}

/// A refusal of the request as a whole, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> BulkError {
    BulkError {
        field,
        message: message.into(),
    }
}

fn parse_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, BulkError> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let id = id.trim();
        if !looks_like_key_id(id) {
            let shown: String = id.chars().take(20).collect();
            return Err(err("ids", format!("“{shown}” is not a key id.")));
        }
        if !out.iter().any(|x| x == id) {
            if out.len() == MAX_IDS {
                return Err(err(
                    "ids",
                    format!("Select at most {MAX_IDS} keys by id, or select by filter."),
                ));
            }
            out.push(id.to_owned());
        }
    }
    Ok(out)
}

fn parse_channel(s: &str) -> Result<Option<i64>, BulkError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<i64>()
        .ok()
        .filter(|c| *c > 0)
        .map(Some)
        .ok_or_else(|| err("channel", "That is not a channel."))
}

/// The new expiry: empty means "never expires"; otherwise a time in the future.
pub fn parse_new_expiry(
    text: &str,
    now: PrimitiveDateTime,
) -> Result<Option<PrimitiveDateTime>, BulkError> {
    match parse_expiry(text).map_err(|m| err("expires_at", m))? {
        Some(t) if t <= now => Err(err(
            "expires_at",
            "Choose a time in the future, or leave empty for keys that never expire.",
        )),
        other => Ok(other),
    }
}

/// What the dashboard's bulk form sends: `action`, then either `ids` (repeated) or
/// `all=1` with the list's filter (`q`, `risk`) and, on a channel's page, `channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkForm {
    pub action: BulkAction,
    pub selection: Selection,
    /// The list the selection was made on (its channel and filter): where the person
    /// goes back to, also after choosing keys by id.
    pub channel: Option<i64>,
    pub list: ListQuery,
    /// The typed new expiry, when the form carried one (`expires_at`).
    pub expires_text: Option<String>,
}

impl BulkForm {
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, BulkError> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let action = get("action")
            .and_then(BulkAction::parse)
            .ok_or_else(|| err("action", "Choose what to do with the selected keys."))?;
        let channel = parse_channel(get("channel").unwrap_or(""))?;
        let list = ListQuery::parse(&ListParams {
            q: get("q").map(str::to_owned),
            risk: get("risk").map(str::to_owned),
            ..ListParams::default()
        });
        let all = matches!(get("all"), Some("1" | "on" | "true"));
        let selection = if all {
            Selection::Matching {
                channel,
                query: list.clone(),
            }
        } else {
            let ids = parse_ids(
                pairs
                    .iter()
                    .filter(|(k, _)| k == "ids")
                    .map(|(_, v)| v.as_str()),
            )?;
            if ids.is_empty() {
                return Err(err("ids", "Select at least one key."));
            }
            Selection::Ids(ids)
        };
        Ok(BulkForm {
            action,
            selection,
            channel,
            list,
            expires_text: get("expires_at").map(str::to_owned),
        })
    }

    /// The form's pairs again (for the confirmation's hidden fields and the way back
    /// to the list), without the expiry.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("action", self.action.as_str().to_owned())];
        match &self.selection {
            Selection::Ids(ids) => out.extend(ids.iter().map(|i| ("ids", i.clone()))),
            Selection::Matching { .. } => out.push(("all", "1".into())),
        }
        if let Some(c) = self.channel {
            out.push(("channel", c.to_string()));
        }
        if !self.list.text.is_empty() {
            out.push(("q", self.list.text.clone()));
        }
        if let Some(r) = self.list.risk {
            out.push(("risk", r.as_str().into()));
        }
        out
    }
}

/// What `POST /api/v1/keys/bulk` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    pub action: String,
    pub ids: Option<Vec<String>>,
    pub filter: Option<BulkFilter>,
    /// For `expiry`: the new expiry (ISO 8601, UTC), or null for "never expires".
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BulkFilter {
    pub channel_id: Option<i64>,
    pub q: Option<String>,
    pub risk: Option<String>,
}

/// A parsed API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRequest {
    pub action: BulkAction,
    pub selection: Selection,
    pub expires_at: Option<PrimitiveDateTime>,
}

impl BulkBody {
    pub fn parse(self, now: PrimitiveDateTime) -> Result<BulkRequest, BulkError> {
        let action = BulkAction::parse(&self.action).ok_or_else(|| {
            err(
                "action",
                "Use activate, deactivate, delete or expiry.".to_owned(),
            )
        })?;
        let selection = match (self.ids, self.filter) {
            (Some(ids), None) => {
                let ids = parse_ids(ids.iter().map(String::as_str))?;
                if ids.is_empty() {
                    return Err(err("ids", "Name at least one key id."));
                }
                Selection::Ids(ids)
            }
            (None, Some(f)) => {
                if f.channel_id.is_some_and(|c| c <= 0) {
                    return Err(err("filter", "That is not a channel."));
                }
                if let Some(r) = f.risk.as_deref() {
                    if super::list::Risk::parse(r).is_none() {
                        return Err(err(
                            "filter",
                            "Use a risk of never-expires, idle, no-network-limit, expiring or postback-off.",
                        ));
                    }
                }
                let params = ListParams {
                    q: f.q,
                    risk: f.risk,
                    ..ListParams::default()
                };
                Selection::Matching {
                    channel: f.channel_id,
                    query: ListQuery::parse(&params),
                }
            }
            _ => return Err(err("ids", "Give either `ids` or `filter`, not both.")),
        };
        let expires_at = match action {
            BulkAction::SetExpiry => match self.expires_at.as_deref() {
                None => None,
                Some(text) => parse_new_expiry(text, now)?,
            },
            _ if self.expires_at.is_some() => {
                return Err(err(
                    "expires_at",
                    "Only the expiry action takes `expires_at`.",
                ));
            }
            _ => None,
        };
        Ok(BulkRequest {
            action,
            selection,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn explicit_ids_are_checked_and_deduplicated() {
        let f = BulkForm::parse(&pairs(&[
            ("action", "deactivate"),
            ("ids", "3fQ9aZx1Lm0P"),
            ("ids", "3fQ9aZx1Lm0P"),
            ("ids", "AAAAAAAAAAAA"),
        ]))
        .unwrap();
        assert_eq!(
            f.selection,
            Selection::Ids(vec!["3fQ9aZx1Lm0P".into(), "AAAAAAAAAAAA".into()])
        );
        let bad = BulkForm::parse(&pairs(&[("action", "delete"), ("ids", "x'; drop")]));
        assert_eq!(bad.unwrap_err().field, "ids");
        let none = BulkForm::parse(&pairs(&[("action", "delete")]));
        assert!(none.unwrap_err().message.contains("at least one"));
    }

    #[test]
    fn all_matching_keeps_the_filter_and_round_trips() {
        let f = BulkForm::parse(&pairs(&[
            ("action", "activate"),
            ("all", "1"),
            ("channel", "4"),
            ("q", "billing"),
            ("risk", "expiring"),
        ]))
        .unwrap();
        let again = BulkForm::parse(
            &f.pairs()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(f, again);
        assert!(matches!(
            f.selection,
            Selection::Matching {
                channel: Some(4),
                ..
            }
        ));
    }
}
