//! POSTback delivery: a background worker that sends queued events (see
//! `db::outbox`) to each key's POSTback URL, signed, and retries failures with
//! exponential backoff for a day. The dashboard never waits on the network.
//!
//! Signature header: `Latchkey-Signature: t=<unix seconds>,v1=<hex>` where `v1` is
//! `blake3::keyed_hash(key, "<t>.<body>")` and the key is 32 bytes derived from the
//! deployment's secret. Receivers recompute it and refuse old timestamps (replay).

use std::sync::Arc;
use std::time::Duration;

use crate::db::outbox::{self, NEVER, OutboxRow};
use crate::db::{self, Pool};
use crate::domain::secret::random_token;

/// The signing key, derived from `LATCHKEY_POSTBACK_SECRET`.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl Signer {
    pub fn from_secret(secret: &str) -> Self {
        Signer {
            key: blake3::derive_key("latchkey 2026 postback signature", secret.as_bytes()),
        }
    }

    /// The header value for `body` sent at `unix_seconds`.
    pub fn header(&self, unix_seconds: i64, body: &str) -> String {
        let mac = blake3::keyed_hash(&self.key, format!("{unix_seconds}.{body}").as_bytes());
        format!("t={unix_seconds},v1={}", mac.to_hex())
    }

    /// What a receiver does: recompute and compare, and refuse stale timestamps.
    pub fn verify(&self, header: &str, body: &str, now: i64, tolerance_secs: i64) -> bool {
        let mut t = None;
        let mut v1 = None;
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", v)) => t = v.parse::<i64>().ok(),
                Some(("v1", v)) => v1 = Some(v),
                _ => {}
            }
        }
        let (Some(t), Some(v1)) = (t, v1) else {
            return false;
        };
        if (now - t).abs() > tolerance_secs {
            return false;
        }
        let expected = self.header(t, body);
        let expected = expected.rsplit_once("v1=").map_or("", |(_, v)| v);
        expected.len() == v1.len()
            && expected
                .bytes()
                .zip(v1.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0
    }
}

pub struct WorkerConfig {
    pub poll: Duration,
    /// The first retry waits this long; each further one twice as long (max 1 hour).
    pub retry_base: Duration,
    pub give_up_after: time::Duration,
}

pub fn spawn_worker(pool: Pool, signer: Signer, config: WorkerConfig) {
    let worker_id = format!("worker-{}", random_token(10));
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Latchkey-Postback/1")
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the POSTback HTTP client; events stay queued");
            return;
        }
    };
    let config = Arc::new(config);
    actix_web::rt::spawn(async move {
        let mut ticker = actix_web::rt::time::interval(config.poll);
        loop {
            ticker.tick().await;
            let lease = db::now() + time::Duration::seconds(60);
            let id = worker_id.clone();
            let claimed = match db::run(&pool, move |c| outbox::claim(c, &id, lease, 20)).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming POSTback events failed");
                    continue;
                }
            };
            for row in claimed {
                deliver(&pool, &client, &signer, &config, row).await;
            }
        }
    });
}

async fn deliver(
    pool: &Pool,
    client: &reqwest::Client,
    signer: &Signer,
    config: &WorkerConfig,
    row: OutboxRow,
) {
    let now_unix = time::OffsetDateTime::now_utc().unix_timestamp();
    let result = client
        .post(&row.url)
        .header("content-type", "application/json")
        .header("Latchkey-Event", &row.event_type)
        .header("Latchkey-Delivery", row.id.to_string())
        .header("Latchkey-Signature", signer.header(now_unix, &row.payload))
        .body(row.payload.clone())
        .send()
        .await;
    let (status, error) = match result {
        Ok(res) if res.status().is_success() => (Some(i32::from(res.status().as_u16())), None),
        Ok(res) => (
            Some(i32::from(res.status().as_u16())),
            Some(format!("HTTP {}", res.status().as_u16())),
        ),
        Err(e) => (
            None,
            Some(if e.is_timeout() {
                "timed out".to_owned()
            } else {
                "could not connect or send".to_owned()
            }),
        ),
    };
    let id = row.id;
    let outcome = match error {
        None => {
            db::run(pool, move |c| {
                outbox::mark_delivered(c, id, status.unwrap_or(200))
            })
            .await
        }
        Some(err) => {
            let now = db::now();
            let give_up = row.created_at + config.give_up_after <= now;
            let exp = row.attempts.clamp(0, 16) as u32;
            let wait = config
                .retry_base
                .saturating_mul(2u32.saturating_pow(exp))
                .min(Duration::from_secs(3600));
            let next = if give_up {
                NEVER
            } else {
                now + time::Duration::try_from(wait).unwrap_or(time::Duration::HOUR)
            };
            let message = if give_up {
                format!("gave up after a day: {err}")
            } else {
                err
            };
            tracing::info!(event = row.id, attempt = row.attempts + 1, error = %message, "POSTback delivery failed");
            db::run(pool, move |c| {
                outbox::mark_failed(c, id, status, &message, next)
            })
            .await
        }
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "recording a POSTback delivery failed; it will be retried");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_refuse_tampering_and_replays() {
        let s = Signer::from_secret("deployment secret");
        let h = s.header(1_700_000_000, "{\"a\":1}");
        assert!(s.verify(&h, "{\"a\":1}", 1_700_000_010, 300));
        assert!(
            !s.verify(&h, "{\"a\":2}", 1_700_000_010, 300),
            "tampered body"
        );
        assert!(
            !s.verify(&h, "{\"a\":1}", 1_700_001_000, 300),
            "replayed later"
        );
        assert!(
            !Signer::from_secret("other").verify(&h, "{\"a\":1}", 1_700_000_010, 300),
            "other secret"
        );
        assert!(!s.verify("garbage", "{}", 0, 300));
    }
}
