use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use diesel::connection::SimpleConnection;

use crate::db;
use crate::state::AppState;

/// 200 when the database answers, 503 otherwise. `redis` says whether the rate-limit
/// store is in use and answering ("off", "up", "down"): Redis down degrades rate
/// limits to the fail mode but does not make the instance unhealthy.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let ok = db::run(&state.pool, |c| Ok(c.batch_execute("SELECT 1")?)).await;
    match ok {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({
            "status": "ok",
            "redis": state.limiter.redis_health(),
        })),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "unavailable"}))
        }
    }
}

/// Who may read `/metrics`: with `LATCHKEY_METRICS_TOKEN` set, a request carrying
/// `Authorization: Bearer <token>`; without it, only this machine (loopback).
fn may_read_metrics(state: &AppState, req: &HttpRequest) -> Result<(), HttpResponse> {
    match &state.settings.metrics_token {
        Some(token) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if crate::domain::secret::constant_time_eq(presented.trim(), token.expose()) {
                Ok(())
            } else {
                Err(HttpResponse::Unauthorized()
                    .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                    .body("Send Authorization: Bearer <LATCHKEY_METRICS_TOKEN>.\n"))
            }
        }
        None if req
            .peer_addr()
            .is_some_and(|a| a.ip().to_canonical().is_loopback()) =>
        {
            Ok(())
        }
        None => Err(HttpResponse::Forbidden()
            .body("Set LATCHKEY_METRICS_TOKEN to read /metrics from another machine.\n")),
    }
}

/// Prometheus text format, for the scraper only (see README: Running in production);
/// it holds counts, never keys.
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Err(refused) = may_read_metrics(&state, &req) {
        return refused;
    }
    let pool = state.pool.state();
    let backlog = db::run(&state.pool, db::outbox::backlog)
        .await
        .unwrap_or(-1);
    let (spare, normal) = state.spare_cpu.answered();
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
            "latchkey_key_cache_missing_entries",
            "Digests known to match no key, in the verification cache.",
            state.cache.missing_len() as f64,
        ),
        (
            "latchkey_key_cache_lookups_total",
            "Database lookups the verification cache made (its misses).",
            state.cache.lookups() as f64,
        ),
        (
            "latchkey_key_read_cache_lookups_total",
            "Database reads the API's key-read cache made (its misses).",
            state.reads.lookups() as f64,
        ),
        (
            "latchkey_request_log_buffered",
            "Request-log lines not yet written.",
            state.usage.pending() as f64,
        ),
        (
            "latchkey_redis_up",
            "1 when Redis answers rate-limit checks, 0 when it does not, -1 when unused.",
            match state.limiter.redis_health() {
                "up" => 1.0,
                "down" => 0.0,
                _ => -1.0,
            },
        ),
        (
            "latchkey_redis_failures_total",
            "Rate-limit checks Redis failed to answer in time (since start).",
            state.limiter.redis_failures() as f64,
        ),
        (
            "latchkey_password_checks_spare_total",
            "Password checks run on spare CPU (lowest priority).",
            spare as f64,
        ),
        (
            "latchkey_password_checks_normal_total",
            "Password checks run at normal priority: the machine had no CPU to spare.",
            normal as f64,
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
