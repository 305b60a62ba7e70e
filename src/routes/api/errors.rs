//! The API's own error answers: unknown endpoints and unreadable JSON bodies.

use actix_web::HttpResponse;
use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;

use crate::error::ApiError;

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "No such endpoint (see /api/v1/openapi.json).",
    ))
}

/// JSON body problems, answered in the API's JSON error shape.
pub fn json_error(e: JsonPayloadError) -> ApiError {
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
