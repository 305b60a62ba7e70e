use actix_web::{HttpResponse, web};
use diesel::connection::SimpleConnection;

use crate::db;
use crate::state::AppState;

/// 200 when the database answers, 503 otherwise.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let ok = db::run(&state.pool, |c| Ok(c.batch_execute("SELECT 1")?)).await;
    match ok {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "ok"})),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "unavailable"}))
        }
    }
}

/// Prometheus text format. Serve it to your scraper only (see README: Running in
/// production); it holds counts, never keys.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.state();
    let backlog = db::run(&state.pool, db::outbox::backlog)
        .await
        .unwrap_or(-1);
    let gauges = [
        (
            "latchkey_db_pool_connections",
            "Open database connections.",
            f64::from(pool.connections),
        ),
        (
            "latchkey_db_pool_idle",
            "Idle database connections.",
            f64::from(pool.idle_connections),
        ),
        (
            "latchkey_key_cache_entries",
            "Keys in the verification cache.",
            state.cache.len() as f64,
        ),
        (
            "latchkey_request_log_buffered",
            "Request-log lines not yet written.",
            state.usage.pending() as f64,
        ),
        (
            "latchkey_outbox_backlog",
            "POSTback events not yet delivered (-1: unknown).",
            backlog as f64,
        ),
    ];
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&gauges))
}
