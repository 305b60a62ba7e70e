//! Structured logs with tracing. Request lines name the method, the path (never the
//! query string: a pasted key could sit there), the status and the duration.

use std::time::Instant;

use std::borrow::Cow;

use actix_web::HttpMessage;
use actix_web::HttpRequest;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Routes without parameters whose pattern is their path: the hot ones are named
/// here so that finding their pattern costs a comparison, not a walk of the route map.
const FIXED_ROUTES: [&str; 3] = ["/api/v1/keys/verify", "/api/v1/ping", "/healthz"];

#[derive(Clone)]
struct MatchedRoute(Cow<'static, str>);

/// The matched route pattern (`/api/v1/keys/{key_id}`), never the raw path; worked
/// out once per request (metrics and the request log both ask).
pub fn route_of(req: &HttpRequest) -> Cow<'static, str> {
    if let Some(fixed) = FIXED_ROUTES.iter().find(|r| **r == req.path()) {
        return Cow::Borrowed(fixed);
    }
    if let Some(MatchedRoute(r)) = req.extensions().get::<MatchedRoute>() {
        return r.clone();
    }
    let route: Cow<'static, str> = req
        .match_pattern()
        .map_or(Cow::Borrowed("unmatched"), Cow::Owned);
    req.extensions_mut().insert(MatchedRoute(route.clone()));
    route
}

/// Counts the request in the metrics and, for the API, logs it at debug level.
pub fn observe<B>(state: &crate::state::AppState, res: &ServiceResponse<B>, started: Instant) {
    let micros = started.elapsed().as_micros() as u64;
    let route = route_of(res.request());
    state.metrics.observe(&route, res.status().as_u16(), micros);
    tracing::debug!(method = %res.request().method(), path = %res.request().path(), status = res.status().as_u16(), micros, "api request");
}

pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let res = next.call(req).await?;
    let micros = started.elapsed().as_micros() as u64;
    if let Some(state) = res
        .request()
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
    {
        let route = route_of(res.request());
        state.metrics.observe(&route, res.status().as_u16(), micros);
    }
    let (method, path) = (res.request().method(), res.request().path());
    if path.starts_with("/api/") {
        // The API is recorded in the request log; per-request lines would only slow it.
        tracing::debug!(method = %method, path = %path, status = res.status().as_u16(), micros = started.elapsed().as_micros() as u64, "api request");
        return Ok(res);
    }
    tracing::info!(
        method = %method,
        path = %path,
        status = res.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(res)
}
