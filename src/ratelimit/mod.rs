//! Rate limits per key: [`Limiter`] checks a key's limits in memory (one instance
//! enforces them exactly) or, with `LATCHKEY_REDIS_URL`, in Redis (every instance
//! shares them). Both use the same algorithm (`local::gcra`).

pub mod local;
pub mod redis;

use std::sync::Arc;

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
    fn allow() -> Self {
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

/// What to do when Redis cannot answer (`LATCHKEY_REDIS_FAIL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Let requests through (limits are not enforced while Redis is away).
    #[default]
    Open,
    /// Refuse requests of keys with limits while Redis is away.
    Closed,
}

impl FailMode {
    pub fn parse(s: &str) -> Option<FailMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Some(FailMode::Open),
            "closed" => Some(FailMode::Closed),
            _ => None,
        }
    }
}

#[derive(Default)]
pub struct Limiter {
    local: local::LocalLimiter,
    redis: Option<Arc<redis::RedisLimiter>>,
    fail: FailMode,
}

impl Limiter {
    /// Starts connecting to Redis at once (in the background: a Redis that is down at
    /// start does not stop the server).
    pub fn with_redis(redis: Arc<redis::RedisLimiter>, fail: FailMode) -> Self {
        redis.connect();
        Limiter {
            local: local::LocalLimiter::default(),
            redis: Some(redis),
            fail,
        }
    }

    /// Checks (and counts) one request of key `key` (row id; `key_id`, unique across
    /// deployments, names its state in Redis).
    pub async fn check(&self, key: i64, key_id: &str, limits: &[RateLimit]) -> Decision {
        if limits.is_empty() {
            return Decision::allow();
        }
        let Some(redis) = &self.redis else {
            return self.local.check(key, limits);
        };
        if let Some(d) = redis.check(key_id, limits, 1).await {
            return d;
        }
        match self.fail {
            FailMode::Open => Decision::allow(),
            FailMode::Closed => Decision {
                allowed: false,
                states: limits
                    .iter()
                    .map(|l| LimitState {
                        limit: *l,
                        remaining: 0,
                        reset_secs: 1,
                        retry_after_secs: 1,
                    })
                    .collect(),
            },
        }
    }

    /// The current state of a key's limits on this instance (none with Redis: the
    /// state is shared there).
    pub fn peek(&self, key: i64, limits: &[RateLimit]) -> Option<Vec<LimitState>> {
        self.redis.is_none().then(|| self.local.peek(key, limits))
    }

    /// Frees buckets that are full again (housekeeping).
    pub fn sweep(&self) -> usize {
        self.local.sweep()
    }

    /// For `/healthz`: "off" (no Redis), "up" or "down".
    pub fn redis_health(&self) -> &'static str {
        match &self.redis {
            None => "off",
            Some(r) if r.is_down() => "down",
            Some(_) => "up",
        }
    }

    /// Calls to Redis that failed or timed out, for `/metrics`.
    pub fn redis_failures(&self) -> u64 {
        self.redis.as_ref().map_or(0, |r| r.failures())
    }

    pub fn uses_redis(&self) -> bool {
        self.redis.is_some()
    }
}
