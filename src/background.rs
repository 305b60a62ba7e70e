//! Work that runs beside the server: following other instances' key changes, and
//! housekeeping (expiry notices, freeing the slots of rolls whose grace ended, pruning
//! records nobody needs any more).

use std::time::{Duration, Instant};

use actix_web::web::Data;

use crate::app;
use crate::db;
use crate::retention::Retention;
use crate::state::AppState;

/// Polls `key_changes` so that a change made by another instance sharing the database
/// is honoured here within about half a second, and runs the housekeeping.
pub fn spawn_change_poller(state: Data<AppState>, every: Duration, expiry_scan_every: Duration) {
    actix_web::rt::spawn(async move {
        let mut last_seen = match db::run(&state.pool, db::changes::latest_id).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "cannot read key changes; cross-instance revocation is delayed");
                0
            }
        };
        let mut ticker = actix_web::rt::time::interval(every);
        // Pruning also runs at once, then every ten minutes.
        let mut last_prune: Option<Instant> = None;
        // The first scan runs at once.
        let mut last_expiry_scan: Option<Instant> = None;
        loop {
            ticker.tick().await;
            if last_expiry_scan.is_none_or(|t| t.elapsed() >= expiry_scan_every) {
                last_expiry_scan = Some(Instant::now());
                expiry_and_slots(&state).await;
            }
            if last_prune.is_none_or(|t| t.elapsed() >= Duration::from_secs(600)) {
                last_prune = Some(Instant::now());
                prune(&state).await;
            }
            let (since, origin) = (last_seen, state.instance.clone());
            match db::run(&state.pool, move |c| db::changes::since(c, since, &origin)).await {
                Ok((last, changes)) => {
                    last_seen = last_seen.max(last);
                    state.forget(&changes);
                }
                Err(e) => tracing::warn!(error = %e, "polling key changes failed"),
            }
        }
    });
}

/// Usage retention, in a task of its own: a long prune never delays the change poller
/// (revocations must reach this instance within a second).
pub fn spawn_retention(state: Data<AppState>) {
    actix_web::rt::spawn(async move {
        let every = Duration::from_millis(state.settings.retention_every_ms.max(10));
        // Figures are recomputed every ten passes (five minutes by default).
        let mut retention = Retention::new(every * 10);
        let mut ticker = actix_web::rt::time::interval(every);
        loop {
            ticker.tick().await;
            retention.run(&state).await;
        }
    });
}

/// Gives back the credit blocks this instance has not touched for two seconds (another
/// instance may need them), and frees full rate-limit buckets.
pub fn spawn_credit_keeper(state: Data<AppState>) {
    actix_web::rt::spawn(async move {
        let mut ticker = actix_web::rt::time::interval(Duration::from_secs(1));
        loop {
            ticker.tick().await;
            let idle = state.credits.take_idle(Duration::from_secs(2));
            if let Err(e) = app::credits::give_back(&state.pool, idle).await {
                tracing::warn!(error = %e, "giving back unspent credits failed");
            }
            state.limiter.sweep();
        }
    });
}

async fn expiry_and_slots(state: &AppState) {
    match app::notices::queue_expiry_notices(state).await {
        Ok(n) if n > 0 => tracing::info!(events = n, "queued key.expiring events"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "scanning for expiring keys failed"),
    }
    if let Err(e) = app::notices::retire_ended_rolls(state).await {
        tracing::warn!(error = %e, "freeing the slots of ended rolls failed");
    }
}

/// Change records every instance has long seen, login attempts older than the
/// throttling window needs, and sessions past their end (refused already; this only
/// frees the rows).
async fn prune(state: &AppState) {
    let keep = time::Duration::days(state.settings.postback_keep_days);
    let pruned = db::run(&state.pool, move |c| {
        let now = db::now();
        let changes = db::changes::prune(c, now - time::Duration::hours(1))?;
        let attempts = db::login_attempts::prune(c, now - time::Duration::days(1))?;
        let sessions = db::sessions::delete_expired(c)?;
        // Delivered POSTbacks after LATCHKEY_POSTBACK_KEEP_DAYS; retired signing secrets.
        let events = db::outbox::prune(c, now - keep)?;
        let secrets = db::postback_secrets::prune(c)?;
        Ok(changes + attempts + sessions + events + secrets)
    })
    .await;
    if let Err(e) = pruned {
        tracing::warn!(error = %e, "pruning old records failed");
    }
}
