//! `POST /api/v1/leak-reports`: reports of keys found in public code, in the format of
//! GitHub's secret-scanning partner program (`domain::leak_report`). Authenticated by
//! the scanner's signature over the raw body, not by a bearer key: an unsigned or
//! forged report is refused (401) before anything is read or changed.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};

use crate::config::LeakAction;
use crate::domain::leak_report::{BODY_LIMIT, load_keys, parse_report, verify};
use crate::error::ApiError;
use crate::net::client_ip;
use crate::state::AppState;

pub async fn report_leaks(
    state: Data<AppState>,
    req: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(setting) = state.settings.leak_report_keys.as_deref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Leak reports are not set up here (LATCHKEY_LEAK_REPORT_KEYS).",
        ));
    };
    let keys = load_keys(setting).map_err(|e| {
        tracing::error!(error = %e, "leak report keys cannot be read");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The trusted keys of leak reports cannot be read.",
        )
    })?;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let identifier = header("github-public-key-identifier");
    let signature = header("github-public-key-signature");
    if identifier.is_none() || signature.is_none() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNSIGNED",
            "Send Github-Public-Key-Identifier and Github-Public-Key-Signature.",
        ));
    }
    let body = super::transfer::read_body(req.headers(), payload, BODY_LIMIT).await?;
    if let Err(e) = verify(&keys, identifier.as_deref(), signature.as_deref(), &body) {
        tracing::warn!(reason = e.message(), "leak report refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "BAD_SIGNATURE",
            e.message(),
        ));
    }
    let tokens = parse_report(&body).map_err(ApiError::bad_request)?;
    let ip = client_ip(&req, &state.settings.trusted_proxies).map(|ip| ip.to_string());
    let deactivate = state.settings.leak_action == LeakAction::Deactivate;
    let verdicts = crate::app::leaks::report(&state, ip, &body, tokens, deactivate).await?;
    Ok(HttpResponse::Ok().json(verdicts))
}
