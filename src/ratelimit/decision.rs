//! What a rate-limit check answers, and the headers it makes.

use serde::Serialize;

use crate::domain::limits::RateLimit;

/// One limit after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LimitState {
    #[serde(flatten)]
    pub limit: RateLimit,
    /// Requests that would still pass now.
    pub remaining: u64,
    /// Seconds until the whole limit is available again.
    #[serde(rename = "reset")]
    pub reset_secs: u64,
    /// Seconds until one more request passes (0 when one would now).
    #[serde(rename = "retry_after")]
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub allowed: bool,
    /// One per limit; empty when the key has none (or Redis failed open).
    pub states: Vec<LimitState>,
}

impl Decision {
    pub(super) fn allow() -> Self {
        Decision {
            allowed: true,
            states: Vec::new(),
        }
    }

    /// The limit closest to refusing: fewest remaining, then longest wait.
    pub fn tightest(&self) -> Option<&LimitState> {
        self.states
            .iter()
            .min_by_key(|s| (s.remaining, std::cmp::Reverse(s.retry_after_secs)))
    }

    /// Seconds until a refused request may be tried again (at least 1).
    pub fn retry_after(&self) -> u64 {
        self.states
            .iter()
            .map(|s| s.retry_after_secs)
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers):
    /// every limit of the key, by name, with its quota and window / remaining and reset.
    pub fn headers(&self) -> Option<(String, String)> {
        if self.states.is_empty() {
            return None;
        }
        let policy = self
            .states
            .iter()
            .map(|s| {
                format!(
                    "\"{}\";q={};w={}",
                    s.limit.policy_name(),
                    s.limit.limit,
                    s.limit.window.seconds()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let now = self
            .states
            .iter()
            .map(|s| {
                format!(
                    "\"{}\";r={};t={}",
                    s.limit.policy_name(),
                    s.remaining,
                    s.reset_secs
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        Some((policy, now))
    }
}
