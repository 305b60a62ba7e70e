//! Export and import over the API: `GET /api/v1/keys/export` (keys:read) and
//! `POST /api/v1/keys/import` (keys:write), the same use cases as the dashboard.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{Data, Payload, Query};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::caller::ApiCaller;
use crate::app::export::{Target, begin};
use crate::app::import::{Outcome, authorize, import};
use crate::error::ApiError;
use crate::routes::keys::ExportParams;
use crate::state::AppState;

/// The largest import body: about 10,000 keys with SHA-512 digests and descriptions.
pub const IMPORT_LIMIT: usize = 2 * 1024 * 1024;

#[derive(Deserialize)]
pub struct ApiExportParams {
    channel_id: Option<i64>,
    #[serde(flatten)]
    export: ExportParams,
}

pub async fn export_keys(
    state: Data<AppState>,
    caller: ApiCaller,
    params: Query<ApiExportParams>,
) -> Result<HttpResponse, ApiError> {
    let (format, query) = params
        .export
        .parse()
        .map_err(|m| ApiError::invalid("format", &m))?;
    let id = params.channel_id.unwrap_or(caller.0.key.channel_id);
    let export = begin(
        &state,
        &caller.actor(),
        Target::Channel(id),
        query,
        format.as_str(),
    )
    .await?;
    let label = export
        .channel_names
        .values()
        .next()
        .cloned()
        .unwrap_or_default();
    Ok(crate::routes::export::stream(
        state.clone(),
        export,
        format,
        &label,
    ))
}

#[derive(Deserialize)]
pub struct ImportParams {
    channel_id: Option<i64>,
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        "An import body is at most 2 MiB; split the file.",
    )
}

/// Reads a body of at most `limit` bytes (this route's own limit, above the API's
/// 64 KiB).
pub async fn read_body(
    headers: &HeaderMap,
    payload: Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(body)) => Ok(body.to_vec()),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(ApiError::bad_request("The body could not be read.")),
    }
}

pub async fn import_keys(
    state: Data<AppState>,
    caller: ApiCaller,
    req: HttpRequest,
    params: Query<ImportParams>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    // Refused before the body is read.
    authorize(&actor)?;
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let kind = kind.split(';').next().unwrap_or("").trim().to_owned();
    if !["text/csv", "application/json", "text/plain", ""].contains(&kind.as_str()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Send the keys as text/csv or application/json.",
        ));
    }
    let body = read_body(req.headers(), payload, IMPORT_LIMIT).await?;
    let text = String::from_utf8(body)
        .map_err(|_| ApiError::bad_request("The body is not valid UTF-8."))?;
    let channel_id = params.channel_id.unwrap_or(caller.0.key.channel_id);
    match import(&state, &actor, channel_id, text).await? {
        Outcome::Imported { keys, .. } => Ok(HttpResponse::Created().json(serde_json::json!({
            "imported": keys.len(),
            "data": keys.iter().map(super::keys::KeyJson::of).collect::<Vec<_>>(),
        }))),
        Outcome::Invalid(rows) => Ok(HttpResponse::UnprocessableEntity().json(serde_json::json!({
            "error": {
                "code": "IMPORT_INVALID",
                "message": "Nothing was imported: some rows are invalid.",
                "rows": rows,
            }
        }))),
    }
}
