//! The whole URL map on one screen.

pub mod api;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod health;
pub mod keys;
pub mod users;

use actix_web::{HttpResponse, web};

use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;

use crate::error::{ApiError, AppError};

/// `/api/v1/...`: JSON only.
pub fn api(cfg: &mut web::ServiceConfig) {
    cfg.route("/ping", web::get().to(api::ping))
        .route("/openapi.json", web::get().to(api::openapi))
        .route("/keys/verify", web::post().to(api::verify_key))
        .route("/keys", web::get().to(api::list_keys))
        .route("/keys", web::post().to(api::create_key))
        .route("/keys/{key_id}", web::get().to(api::get_key))
        .route("/keys/{key_id}", web::patch().to(api::update_key))
        .route("/keys/{key_id}", web::delete().to(api::delete_key))
        .route("/keys/{key_id}/roll", web::post().to(api::roll_key))
        .route("/keys/{key_id}/{action}", web::post().to(api::set_enabled));
}

/// Everything else: the dashboard.
pub fn dashboard(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(auth::home))
        .route("/login", web::get().to(auth::login_page))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/healthz", web::get().to(health::healthz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/static/{path:.*}", web::get().to(assets::asset))
        .route("/channels", web::get().to(channels::list_channels))
        .route("/channels", web::post().to(channels::create_channel))
        .route("/channels/new", web::get().to(channels::new_channel))
        .route("/channels/{id}/edit", web::get().to(channels::edit_channel))
        .route("/channels/{id}", web::post().to(channels::update_channel))
        .route("/channels/{id}/keys", web::get().to(keys::list_keys))
        .route("/channels/{id}/keys", web::post().to(keys::create_key))
        .route("/channels/{id}/keys/new", web::get().to(keys::new_key))
        .route("/audit", web::get().to(audit::list_audit))
        .route("/users", web::get().to(users::list_users))
        .route("/users", web::post().to(users::create_user))
        .route("/users/{id}/role", web::post().to(users::change_role))
        .route(
            "/users/{id}/password",
            web::post().to(users::reset_password),
        )
        .route("/users/{id}/{action}", web::post().to(users::set_disabled))
        .route("/keys", web::get().to(keys::all_keys))
        .route("/risks", web::get().to(keys::risks))
        .route("/keys/{key_id}", web::get().to(keys::show_key))
        .route("/keys/{key_id}/edit", web::get().to(keys::edit_key))
        .route("/keys/{key_id}", web::post().to(keys::update_key))
        .route("/keys/{key_id}/rename", web::get().to(keys::rename_form))
        .route("/keys/{key_id}/rename", web::post().to(keys::rename_key))
        .route("/keys/{key_id}/roll", web::get().to(keys::roll_form))
        .route("/keys/{key_id}/roll", web::post().to(keys::roll_key))
        .route(
            "/keys/{key_id}/confirm/{action}",
            web::get().to(keys::confirm_action),
        )
        .route("/keys/{key_id}/{action}", web::post().to(keys::act_on_key));
}

pub async fn api_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "No such endpoint (see /api/v1/openapi.json).",
    ))
}

/// JSON body problems, answered in the API's JSON error shape.
pub fn api_json_error(e: JsonPayloadError) -> ApiError {
    match e {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "The body is larger than 64 KiB.",
            )
        }
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Send the body as application/json.",
        ),
        JsonPayloadError::Deserialize(e) => ApiError::bad_request(format!(
            "Invalid JSON body: {}",
            redact_quoted(&e.to_string())
        )),
        other => ApiError::bad_request(format!("The body could not be read: {other}")),
    }
}

/// Unknown URLs get the same 404 as a missing item, through `AppError`.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// serde quotes the offending value in its messages (`invalid type: string "…"`);
/// that value could be a key sent in the wrong field, so it is never echoed.
pub fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if inside {
                out.push('…');
            }
            inside = !inside;
            out.push(c);
        } else if !inside {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_values_are_not_echoed() {
        assert_eq!(
            super::redact_quoted("invalid type: string \"lk_secret\", expected a sequence"),
            "invalid type: string \"…\", expected a sequence"
        );
        assert_eq!(
            super::redact_quoted("EOF while parsing"),
            "EOF while parsing"
        );
    }
}
