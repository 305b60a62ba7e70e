//! Rate limits shared by every instance through Redis: the same GCRA as `local`, run
//! by one Lua script per check (atomic in Redis, on Redis's own clock), so the sum of
//! what several instances let through obeys each limit.
//!
//! Redis going away must not stall verification: every call has a short timeout, and
//! after a failure Redis is not asked again for a second (the caller applies the
//! configured fail mode meanwhile). A failure is counted (`/metrics`), logged once per
//! outage, and shown by `/healthz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::decision::Decision;
use super::local::gcra;
use crate::domain::limits::RateLimit;

/// TATs are microseconds since this Unix time, so they stay small enough for Lua's
/// doubles to keep fractions of a microsecond.
const BASE: i64 = 1_700_000_000;

/// KEYS: one per limit. ARGV: per limit, the emission interval and the window (µs),
/// then the cost. Returns "now" and, per limit, the TAT before this request (strings,
/// so no precision is lost); when every limit lets the request through, stores the new
/// TATs, each expiring when its bucket is full again.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = (tonumber(t[1]) - tonumber(ARGV[#ARGV])) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[#ARGV - 1])
local tats = {}
local ok = true
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  tats[i] = tat
  if tat + interval * cost - now > window + 0.001 then ok = false end
end
if ok then
  for i = 1, #KEYS do
    local next = tats[i] + tonumber(ARGV[2 * i - 1]) * cost
    redis.call('SET', KEYS[i], string.format('%.3f', next), 'PX', math.ceil((next - now) / 1000) + 1)
  end
end
local out = { string.format('%.3f', now) }
for i = 1, #KEYS do out[i + 1] = string.format('%.3f', tats[i]) end
return out
";

pub struct RedisLimiter {
    client: redis::Client,
    conn: RwLock<Option<ConnectionManager>>,
    connecting: AtomicBool,
    script: redis::Script,
    timeout: Duration,
    start: Instant,
    /// Milliseconds since `start` until which Redis is not asked (after a failure).
    down_until: AtomicU64,
    down: AtomicBool,
    failures: AtomicU64,
}

impl RedisLimiter {
    pub fn new(url: &str, timeout: Duration) -> Result<Arc<Self>, String> {
        let client = redis::Client::open(url).map_err(|e| format!("LATCHKEY_REDIS_URL: {e}"))?;
        Ok(Arc::new(RedisLimiter {
            client,
            conn: RwLock::new(None),
            connecting: AtomicBool::new(false),
            script: redis::Script::new(SCRIPT),
            timeout,
            start: Instant::now(),
            down_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
            failures: AtomicU64::new(0),
        }))
    }

    fn ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Whether Redis is not connected, or the last call to it failed.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
            || self
                .conn
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn failed(&self, why: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.down_until.store(self.ms() + 1_000, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = why,
                "Redis is unreachable: rate limits fall back to the fail mode (LATCHKEY_REDIS_FAIL)"
            );
        }
    }

    fn recovered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis is reachable again: rate limits are shared");
        }
    }

    /// Connects in the background (at most one attempt at a time); called at start and
    /// whenever a check finds no connection.
    pub fn connect(self: &Arc<Self>) {
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        actix_web::rt::spawn(async move {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(me.timeout.max(Duration::from_millis(200))))
                .set_response_timeout(Some(me.timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(1));
            match ConnectionManager::new_with_config(me.client.clone(), config).await {
                Ok(c) => {
                    *me.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(c);
                }
                Err(e) => me.failed(&e.to_string()),
            }
            me.connecting.store(false, Ordering::Release);
        });
    }

    /// The decision from Redis, or `None` when Redis cannot answer in time.
    pub async fn check(
        self: &Arc<Self>,
        key: &str,
        limits: &[RateLimit],
        cost: u64,
    ) -> Option<Decision> {
        if self.ms() < self.down_until.load(Ordering::Relaxed) {
            return None;
        }
        let conn = self.conn.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(mut conn) = conn else {
            // Not connected (yet): the fail mode answers while a connection is made.
            self.failures.fetch_add(1, Ordering::Relaxed);
            self.connect();
            return None;
        };
        let mut call = self.script.prepare_invoke();
        for l in limits {
            let w = l.window.seconds() as f64 * 1e6;
            call.key(format!(
                "latchkey:rl:{{{key}}}:{}/{}",
                l.limit,
                l.window.seconds()
            ))
            .arg(format!("{:.6}", w / l.limit as f64))
            .arg(format!("{w}"));
        }
        call.arg(cost).arg(BASE);
        let answer: Result<Result<Vec<String>, redis::RedisError>, _> =
            tokio::time::timeout(self.timeout, call.invoke_async(&mut conn)).await;
        let values = match answer {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                return None;
            }
            Err(_) => {
                self.failed("timed out");
                return None;
            }
        };
        self.recovered();
        let nums: Vec<f64> = values.iter().filter_map(|v| v.parse().ok()).collect();
        let (now, tats) = nums.split_first()?;
        if tats.len() != limits.len() {
            return None;
        }
        // Same arithmetic as the script, in nanoseconds, for remaining / reset.
        let tats: Vec<f64> = tats.iter().map(|t| t * 1e3).collect();
        Some(gcra(limits, &tats, now * 1e3, cost as f64).0)
    }
}
