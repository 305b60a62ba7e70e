//! The JSON API under `/api/v1`: key verification and key management, authenticated
//! with `Authorization: Bearer <key>`. Errors are always JSON (`error::ApiError`),
//! never HTML.

mod body;
mod caller;
mod credits;
mod errors;
mod json_body;
mod keys;
mod layer;
mod leaks;
mod transfer;
mod verify;

pub use caller::ApiCaller;
pub use credits::change_credits;
pub use errors::{json_error, not_found, redact_quoted};
pub use json_body::{ApiJson, BODY_LIMIT};
pub use keys::{
    bulk_keys, create_key, delete_key, get_key, list_keys, roll_key, roll_postback_secret,
    send_postback_test, set_active, update_key,
};
pub use layer::api_layer;
pub use leaks::report_leaks;
pub use transfer::{export_keys, import_keys};
pub use verify::verify_key;

use actix_web::HttpResponse;

/// The plain handler the benchmark compares verification with.
pub async fn ping() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "ok": true }))
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(include_str!("../../../static/openapi.json"))
}
