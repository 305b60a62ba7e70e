//! Nothing grows without bound: the raw request log by age (`LATCHKEY_REQUEST_LOG_DAYS`)
//! and per key (`LATCHKEY_REQUEST_LOG_PER_KEY` most recent rows), rollups by period
//! (minute 48 h, hour 90 days, day 400 days), the audit log when
//! `LATCHKEY_AUDIT_KEEP_DAYS` is set; and each key's "requests 24 h / 30 d" figures
//! recomputed from rollups as buckets fall out of their windows.
//!
//! Every delete is a small batch in its own statement, so neither backend holds a write
//! lock for long and requests keep flowing while old rows go.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use time::PrimitiveDateTime;

use crate::db::rollups::{self, Period};
use crate::db::{self, DbResult};
use crate::state::AppState;

/// Rows per delete statement.
const BATCH: i64 = 2_000;
/// Rollup buckets per delete statement pass.
const BUCKETS: i64 = 50;
/// Key ids per figures-refresh statement.
const SPAN: i64 = 5_000;

/// What the retention remembers between passes.
pub struct Retention {
    /// Per key: at most how many raw rows it may have (rows this instance wrote since
    /// the key was last counted or cut back to the cap). Only a key past the cap is
    /// looked at, so a pass costs nothing for keys that are far below it.
    known: HashMap<i64, i64>,
    last_refresh: Option<Instant>,
    refresh_every: Duration,
}

impl Retention {
    pub fn new(refresh_every: Duration) -> Self {
        Retention {
            known: HashMap::new(),
            last_refresh: None,
            refresh_every,
        }
    }

    /// One pass: called by the housekeeping loop every few seconds.
    pub async fn run(&mut self, state: &AppState) {
        if let Err(e) = self.pass(state).await {
            tracing::warn!(error = %e, "pruning old usage failed; will retry");
        }
    }

    async fn pass(&mut self, state: &AppState) -> DbResult<()> {
        let now = db::now();
        let cap = state.settings.request_log_per_key;
        let log_cutoff = now - time::Duration::days(state.settings.request_log_days);
        // By age, oldest first, while whole batches are old.
        loop {
            // (Rows gone by age only lower the counts `known` bounds from above.)
            let (_, more) = db::run(&state.pool, move |c| {
                db::usage::prune_older_than(c, log_cutoff, BATCH)
            })
            .await?;
            if !more {
                break;
            }
        }
        // Per key, for keys this instance wrote to.
        for (key, n) in state.usage.take_written() {
            let seen = match self.known.get(&key) {
                Some(k) => *k,
                None => db::run(&state.pool, move |c| db::usage::rows_of(c, key)).await? - n as i64,
            };
            let total = seen + n as i64;
            if total > cap {
                loop {
                    let gone = db::run(&state.pool, move |c| {
                        db::usage::prune_over_cap(c, key, cap, BATCH)
                    })
                    .await?;
                    if gone < BATCH as usize {
                        break;
                    }
                }
                self.known.insert(key, cap);
            } else {
                self.known.insert(key, total);
            }
        }
        for period in Period::ALL {
            while db::run(&state.pool, move |c| {
                rollups::prune(c, period, now, BUCKETS)
            })
            .await?
                > 0
            {}
        }
        if let Some(days) = state.settings.audit_keep_days {
            let cutoff = now - time::Duration::days(days);
            while db::run(&state.pool, move |c| db::audit::prune(c, cutoff, BATCH)).await?
                == BATCH as usize
            {}
        }
        if self
            .last_refresh
            .is_none_or(|t| t.elapsed() >= self.refresh_every)
        {
            self.last_refresh = Some(Instant::now());
            refresh_figures(state, now).await?;
        }
        Ok(())
    }
}

/// Recomputes the 24 h / 30 d figures from rollups of every key that has figures or
/// recent rollups, a few hundred keys per statement batch.
pub async fn refresh_figures(state: &AppState, now: PrimitiveDateTime) -> DbResult<usize> {
    let (_, month_from) = rollups::windows(now);
    let mut keys = db::run(&state.pool, move |c| {
        rollups::keys_used_since(c, month_from)
    })
    .await?;
    let top = db::run(&state.pool, db::keys::max_id).await?;
    let mut after = 0;
    while after < top {
        keys.extend(
            db::run(&state.pool, move |c| {
                rollups::keys_with_figures(c, after, SPAN)
            })
            .await?,
        );
        after += SPAN;
    }
    keys.sort_unstable();
    keys.dedup();
    let mut changed = 0;
    for chunk in keys.chunks(500) {
        let chunk = chunk.to_vec();
        changed += db::run(&state.pool, move |c| {
            rollups::refresh_figures(c, &chunk, now)
        })
        .await?;
    }
    Ok(changed)
}
