//! Structured logs with tracing. Request lines name the method, the path (never the
//! query string: a pasted key could sit there), the status and the duration.

use std::time::Instant;

use std::borrow::Cow;

use actix_web::HttpMessage;
use actix_web::HttpRequest;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
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
/// With their method: `GET /api/v1/keys/verify` is the key route with key id "verify".
const FIXED_ROUTES: [(Method, &str); 3] = [
    (Method::POST, "/api/v1/keys/verify"),
    (Method::GET, "/api/v1/ping"),
    (Method::GET, "/healthz"),
];

/// The API's routes with a key id, after `/api/v1/keys/{key_id}` (`routes::api`).
const KEY_ROUTE_TAILS: [(&str, &str); 5] = [
    ("", "/api/v1/keys/{key_id}"),
    ("/roll", "/api/v1/keys/{key_id}/roll"),
    ("/credits", "/api/v1/keys/{key_id}/credits"),
    ("/postback/secret", "/api/v1/keys/{key_id}/postback/secret"),
    ("/postback/test", "/api/v1/keys/{key_id}/postback/test"),
];

#[derive(Clone)]
struct MatchedRoute(Cow<'static, str>);

/// The matched route pattern (`/api/v1/keys/{key_id}`), never the raw path; worked
/// out once per request (metrics and the request log both ask).
pub fn route_of(req: &HttpRequest) -> Cow<'static, str> {
    let path = req.path();
    if let Some((_, fixed)) = FIXED_ROUTES
        .iter()
        .find(|(m, r)| *r == path && m == req.method())
    {
        return Cow::Borrowed(fixed);
    }
    if let Some(route) = key_route(req) {
        return Cow::Borrowed(route);
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

/// The pattern of a matched key route, read off the path and the matched parameters
/// (the route map's own answer walks every pattern with a regex: 3k instructions of a
/// refused API call). The segment after `/keys/` is the key id in every such route;
/// what follows it is one of the routes' literal tails, or the `{action}` parameter.
/// `None` (the route map decides) for anything else.
fn key_route(req: &HttpRequest) -> Option<&'static str> {
    let rest = req.path().strip_prefix("/api/v1/keys/")?;
    let params = req.match_info();
    params.get("key_id")?;
    let tail = rest.find('/').map_or("", |i| &rest[i..]);
    if params.get("action").is_some() {
        let action = tail.strip_prefix('/')?;
        return (!action.is_empty() && !action.contains('/'))
            .then_some("/api/v1/keys/{key_id}/{action}");
    }
    KEY_ROUTE_TAILS
        .iter()
        .find(|(t, _)| *t == tail)
        .map(|(_, route)| *route)
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
