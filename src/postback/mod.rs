//! POSTback delivery: a background engine that sends queued events (`db::outbox`) to
//! each key's receiver in the Standard Webhooks 1.0 format, signed with the key's own
//! secrets (`domain::webhook`). The dashboard never waits on the network.
//!
//! - Concurrency: up to `concurrency` deliveries in flight per instance, at most
//!   `per_host` of them to one receiver, so a slow or dead receiver holds a few slots
//!   and never delays another receiver's events.
//! - Exactly once across instances: a row is claimed only when a slot is free to send
//!   it at once, with a lease (longer than the 10 s timeout) and a random token; only
//!   the token's holder can record the outcome.
//! - Outcomes: 2xx delivered; 410 turns the key's POSTback off (`app::postback`);
//!   429/502/503/504 honour `Retry-After`; anything else retries with exponential
//!   backoff and jitter for about a day, then the delivery is marked failed.

pub mod client;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::Data;

use crate::app;
use crate::db::outbox::{self, NEVER, OutboxRow, Outcome};
use crate::db::{self, postback_secrets};
use crate::domain::secret::{os_random, random_token};
use crate::domain::webhook::{SigningSecret, signature_header};
use crate::state::AppState;
use client::{Client, Sent};

pub struct WorkerConfig {
    pub poll: Duration,
    /// The first retry waits about this long; each further one twice as long (max 1 h).
    pub retry_base: Duration,
    pub give_up_after: time::Duration,
    pub concurrency: usize,
    pub per_host: usize,
    pub timeout: Duration,
}

/// What this instance has in flight, per receiver host.
#[derive(Default)]
struct InFlight {
    total: usize,
    hosts: HashMap<String, usize>,
}

struct Engine {
    state: Data<AppState>,
    client: Client,
    config: WorkerConfig,
    in_flight: Mutex<InFlight>,
}

pub fn spawn_worker(state: Data<AppState>, config: WorkerConfig) {
    let client = match Client::new(
        state.settings.receiver_policy(),
        config.timeout,
        config.per_host,
    ) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the POSTback HTTP client; events stay queued");
            return;
        }
    };
    let engine = Arc::new(Engine {
        state,
        client,
        config,
        in_flight: Mutex::default(),
    });
    actix_web::rt::spawn(async move {
        loop {
            // Woken by a queued event or a finished delivery, else every poll.
            let wake = engine.state.postback_wake.clone();
            let _ = tokio::time::timeout(engine.config.poll, wake.notified()).await;
            dispatch(&engine).await;
        }
    });
}

/// The lease of a claimed row: the whole attempt fits in it several times over.
fn lease(config: &WorkerConfig) -> time::Duration {
    time::Duration::try_from(config.timeout * 3 + Duration::from_secs(30))
        .unwrap_or(time::Duration::MINUTE)
}

/// Claims as many due rows as there are free slots and starts sending them.
async fn dispatch(engine: &Arc<Engine>) {
    for _ in 0..8 {
        let (free, busy) = {
            let Ok(f) = engine.in_flight.lock() else {
                return;
            };
            let busy: Vec<String> = f
                .hosts
                .iter()
                .filter(|(_, n)| **n >= engine.config.per_host)
                .map(|(h, _)| h.clone())
                .collect();
            (engine.config.concurrency.saturating_sub(f.total), busy)
        };
        if free == 0 {
            return;
        }
        let token = random_token(24);
        let until = db::now() + lease(&engine.config);
        let t = token.clone();
        let claimed = match db::run(&engine.state.pool, move |c| {
            outbox::claim(c, &t, until, free as i64, &busy)
        })
        .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "claiming POSTback events failed");
                return;
            }
        };
        if claimed.is_empty() {
            return;
        }
        let mut released = Vec::new();
        for row in claimed {
            let admitted = {
                let Ok(mut f) = engine.in_flight.lock() else {
                    return;
                };
                let n = f.hosts.entry(row.host.clone()).or_default();
                if *n >= engine.config.per_host {
                    false
                } else {
                    *n += 1;
                    f.total += 1;
                    true
                }
            };
            if admitted {
                let engine = engine.clone();
                let token = token.clone();
                actix_web::rt::spawn(async move {
                    let host = row.host.clone();
                    deliver(&engine, row, &token).await;
                    if let Ok(mut f) = engine.in_flight.lock() {
                        f.total = f.total.saturating_sub(1);
                        if let Some(n) = f.hosts.get_mut(&host) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                f.hosts.remove(&host);
                            }
                        }
                    }
                    engine.state.postback_wake.notify_one();
                });
            } else {
                released.push(row.id);
            }
        }
        if !released.is_empty() {
            let t = token.clone();
            if let Err(e) = db::run(&engine.state.pool, move |c| {
                outbox::release(c, &released, &t)
            })
            .await
            {
                tracing::warn!(error = %e, "releasing POSTback events failed; their lease expires");
            }
        }
    }
}

/// The key's secrets that still sign; none when they cannot be opened.
async fn secrets(engine: &Engine, row: &OutboxRow) -> Vec<SigningSecret> {
    let Some(key_id) = row.api_key_id else {
        return Vec::new();
    };
    let sealed = db::run(&engine.state.pool, move |c| {
        postback_secrets::signing(c, key_id)
    })
    .await
    .unwrap_or_default();
    sealed
        .iter()
        .filter_map(|s| engine.state.sealer.open(s))
        .collect()
}

async fn deliver(engine: &Engine, row: OutboxRow, token: &str) {
    let secrets = secrets(engine, &row).await;
    let sent = if secrets.is_empty() {
        None
    } else {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let headers = [
            ("webhook-id", row.msg_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            (
                "webhook-signature",
                signature_header(&secrets, &row.msg_id, timestamp, &row.payload),
            ),
        ];
        Some(
            engine
                .client
                .send(&row.url, &headers, row.payload.clone())
                .await,
        )
    };
    record(engine, row, token, sent).await;
}

async fn record(engine: &Engine, row: OutboxRow, token: &str, sent: Option<Sent>) {
    let (id, t) = (row.id, token.to_owned());
    let (outcome, status, retry_after) = match sent {
        None => (Outcome::NoSecret, None, None),
        Some(Sent::Answered { status, .. }) if (200..300).contains(&status) => {
            let result = db::run(&engine.state.pool, move |c| {
                outbox::mark_delivered(c, id, &t, i32::from(status))
            })
            .await;
            report(result, id);
            return;
        }
        Some(Sent::Answered { status: 410, .. }) => (Outcome::Gone, Some(410), None),
        Some(Sent::Answered {
            status,
            retry_after,
        }) => {
            let honoured = matches!(status, 429 | 502 | 503 | 504);
            (
                Outcome::Http,
                Some(i32::from(status)),
                retry_after.filter(|_| honoured),
            )
        }
        Some(Sent::TimedOut) => (Outcome::TimedOut, None, None),
        Some(Sent::Refused) => (Outcome::Refused, None, None),
        Some(Sent::Failed) => (Outcome::Failed, None, None),
    };
    let now = db::now();
    let next = if outcome == Outcome::Gone {
        NEVER
    } else {
        let wait = retry_after.unwrap_or_else(|| backoff(&engine.config, row.attempts));
        let next = now + time::Duration::try_from(wait).unwrap_or(time::Duration::HOUR);
        if next >= row.created_at + engine.config.give_up_after {
            NEVER
        } else {
            next
        }
    };
    tracing::info!(
        event = row.id,
        attempt = row.attempts + 1,
        outcome = outcome.as_str(),
        status,
        gave_up = next == NEVER,
        "POSTback delivery failed"
    );
    let result = db::run(&engine.state.pool, move |c| {
        outbox::mark_failed(c, id, &t, outcome, status, next)
    })
    .await;
    let recorded = matches!(result, Ok(true));
    report(result, id);
    if outcome == Outcome::Gone && recorded {
        if let Some(key) = row.api_key_id {
            if let Err(e) = app::postback::receiver_gone(&engine.state, key, row.url).await {
                tracing::warn!(error = %e, "turning off a gone POSTback failed");
            }
        }
    }
}

fn report(result: Result<bool, db::DbError>, id: i64) {
    match result {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                event = id,
                "POSTback lease lost before the outcome was recorded"
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "recording a POSTback delivery failed; it will be retried");
        }
    }
}

/// Exponential backoff (base × 2^attempts, at most an hour) with jitter: a random
/// wait between half and all of it, so receivers that come back are not hit in step.
fn backoff(config: &WorkerConfig, attempts: i32) -> Duration {
    let exp = attempts.clamp(0, 20) as u32;
    let full = config
        .retry_base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(3600));
    let mut r = [0u8; 4];
    os_random(&mut r);
    let fraction = f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX);
    full.mul_f64(0.5 + fraction / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_an_hour() {
        let config = WorkerConfig {
            poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(10),
            give_up_after: time::Duration::DAY,
            concurrency: 1,
            per_host: 1,
            timeout: Duration::from_secs(10),
        };
        for (attempts, full) in [(0, 10), (1, 20), (3, 80), (15, 3600)] {
            let b = backoff(&config, attempts);
            assert!(
                b >= Duration::from_secs(full) / 2 && b <= Duration::from_secs(full),
                "{attempts}: {b:?}"
            );
        }
    }
}
