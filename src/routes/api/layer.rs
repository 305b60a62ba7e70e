//! The one middleware of `/api/v1`, in place of five stacked ones (each boxed its
//! future and polled through another layer on every request — the hot path's cost):
//! resolves the client's address (refusing an unreadable forwarded value), renders
//! errors as JSON, records usage against the calling key with its rate-limit headers,
//! adds `X-Content-Type-Options`, and counts the request in the metrics.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Data;

use crate::error::AppError;
use crate::state::AppState;

pub async fn api_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let Some(state) = req.app_data::<Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let res = match crate::net::resolve_client(&req, &state.settings.trusted_proxies) {
        Err(message) => req.error_response(AppError::BadRequest(message)),
        Ok(()) => next.call(req).await?.map_into_boxed_body(),
    };
    let mut res = crate::error::render_error(res, true, false);
    super::caller::record_usage(&mut res, &state);
    res.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    crate::telemetry::observe(&state, &res, started);
    Ok(res)
}
