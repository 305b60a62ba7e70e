//! `AppError` and THE one place errors become HTTP responses.
//!
//! Handlers return `Result<_, AppError>`. `AppError::error_response` gives a plain
//! answer with the right status; the [`render_errors`] middleware then replaces it
//! with what the caller can use, because only there is the request known:
//! - an htmx request gets a toast fragment retargeted into `#toasts` (and an expired
//!   session gets `HX-Redirect: /login`);
//! - `/api/` gets a JSON error;
//! - everything else gets a full error page.
//!
//! Errors are logged once, here. Form validation is not an error: handlers re-render
//! the form with 422 and the typed values.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::app;
use crate::db::DbError;
use crate::htmx::{self, HxResponse};
use crate::views::errors::{ErrorPage, Toast};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("login required")]
    Unauthenticated,
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is too large")]
    TooLarge,
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn forbidden() -> Self {
        AppError::Forbidden("You do not have permission to do that.".into())
    }

    /// The sentence shown to the person; internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            AppError::NotFound => {
                "That page or item does not exist (it may have been deleted).".into()
            }
            AppError::BadRequest(m) | AppError::Forbidden(m) | AppError::Conflict(m) => m.clone(),
            AppError::Unauthenticated => "Your session has ended. Please log in again.".into(),
            AppError::TooLarge => "The form is too large: forms take up to 64 KiB, an import of keys up to 256 KiB (larger files go through the API). Shorten what you sent.".into(),
            AppError::Unavailable(_) => {
                "The service is busy or the database is unreachable. Please try again in a moment."
                    .into()
            }
            AppError::Internal(_) => {
                "Something went wrong on our side. The problem has been logged.".into()
            }
        }
    }

    fn title(&self) -> &'static str {
        match self {
            AppError::NotFound => "Not found",
            AppError::BadRequest(_) => "Bad request",
            AppError::Forbidden(_) => "Not allowed",
            AppError::Unauthenticated => "Login required",
            AppError::Conflict(_) => "Conflict",
            AppError::TooLarge => "Too large",
            AppError::Unavailable(_) => "Unavailable",
            AppError::Internal(_) => "Error",
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::NotFound => "NOT_FOUND",
            AppError::BadRequest(_) => "BAD_REQUEST",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::Unauthenticated => "UNAUTHENTICATED",
            AppError::Conflict(_) => "CONFLICT",
            AppError::TooLarge => "PAYLOAD_TOO_LARGE",
            AppError::Unavailable(_) => "UNAVAILABLE",
            AppError::Internal(_) => "INTERNAL",
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.public_message())
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Pool(e) => AppError::Unavailable(e.to_string()),
            DbError::Canceled => AppError::Unavailable("blocking pool canceled".into()),
            DbError::Query(diesel::result::Error::DatabaseError(_, info)) => {
                AppError::Internal(format!("database error: {}", info.message()))
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// A use case's error, for the dashboard. Handlers that show a field message (a name
/// taken) match on it first; everything else becomes a page or toast here.
impl From<app::Error> for AppError {
    fn from(e: app::Error) -> Self {
        match e {
            app::Error::NotFound => AppError::NotFound,
            app::Error::Refused(r) => AppError::Forbidden(r.message),
            app::Error::NameTaken => AppError::Conflict("That name is already taken.".into()),
            app::Error::Conflict(r) => AppError::Conflict(r.message),
            app::Error::Db(e) => AppError::from(e),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(format!("template error: {e}"))
    }
}

impl From<actix_session::SessionGetError> for AppError {
    fn from(_: actix_session::SessionGetError) -> Self {
        AppError::Unauthenticated
    }
}

impl From<actix_session::SessionInsertError> for AppError {
    fn from(e: actix_session::SessionInsertError) -> Self {
        AppError::Internal(format!("session error: {e}"))
    }
}

/// An error of the JSON API: a status, a stable machine code, a sentence, and the
/// message of each invalid field. Rendered as
/// `{"error": {"code": ..., "message": ..., "fields": {...}}}`.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No such key in your reach.",
        )
    }

    /// 422 with the message of each invalid field.
    pub fn fields(fields: Vec<(String, String)>) -> Self {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            "Some fields are invalid.",
        );
        e.fields = fields;
        e
    }

    pub fn invalid(field: &str, message: &str) -> Self {
        ApiError::fields(vec![(field.to_owned(), message.to_owned())])
    }
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(serde::Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Fields::is_empty")]
    fields: Fields<'a>,
}

/// Field messages as a JSON object (`{"ip": "Not an IP address."}`).
struct Fields<'a>(&'a [(String, String)]);

impl Fields<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl serde::Serialize for Fields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    /// Serialised straight from borrowed parts: a refused API request (a bad bearer
    /// key, say) builds no JSON tree.
    /// Into a buffer sized for it, with a static content type (`json()` parses one and
    /// grows its buffer from 128 bytes).
    fn error_response(&self) -> HttpResponse {
        let fields: usize = self.fields.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
        let mut out = Vec::with_capacity(64 + self.code.len() + self.message.len() + fields);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                fields: Fields(&self.fields),
            },
        };
        if serde_json::to_writer(&mut out, &body).is_err() {
            out = br#"{"error":{"code":"INTERNAL","message":"The answer could not be written."}}"#
                .to_vec();
        }
        HttpResponse::build(self.status)
            .insert_header((
                actix_web::http::header::CONTENT_TYPE,
                actix_web::http::header::HeaderValue::from_static("application/json"),
            ))
            .body(out)
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        if let AppError::Internal(detail) | AppError::Unavailable(detail) = &e {
            tracing::error!(error = %detail, "api request failed");
        }
        ApiError::new(e.status_code(), e.code(), e.public_message())
    }
}

/// A use case's error, for the API: refusals carry the code of the rule that refused.
impl From<app::Error> for ApiError {
    fn from(e: app::Error) -> Self {
        match e {
            app::Error::NotFound => ApiError::not_found(),
            app::Error::Refused(r) => ApiError::new(StatusCode::FORBIDDEN, r.code, r.message),
            app::Error::NameTaken => ApiError::invalid(
                "name",
                "A key with this name already exists in this channel.",
            ),
            app::Error::Conflict(r) => ApiError::new(StatusCode::CONFLICT, r.code, r.message),
            app::Error::Db(e) => ApiError::from(e),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::from(AppError::from(e))
    }
}

/// Renders a template into a response with the given status.
pub fn render(status: StatusCode, template: &impl Template) -> Result<HttpResponse, AppError> {
    let body = template.render()?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// Middleware: turns a response that carries an error into the shape the caller wants.
/// Errors from extractors (bad form, bad query) arrive here too, as 400s.
pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let is_htmx = htmx::is_htmx(req.headers());
    let is_api = req.path().starts_with("/api/");
    let res = next.call(req).await?.map_into_boxed_body();
    Ok(render_error(res, is_api, is_htmx))
}

/// [`render_errors`] for one response (the API's own middleware calls it directly).
pub fn render_error(
    res: ServiceResponse<BoxBody>,
    is_api: bool,
    is_htmx: bool,
) -> ServiceResponse<BoxBody> {
    let Some(err) = res.response().error() else {
        return res;
    };
    if err.as_error::<ApiError>().is_some() {
        // Already in the API's JSON shape.
        return res;
    }
    let status = res.status();
    let (message, title, code) = match err.as_error::<AppError>() {
        Some(app) => {
            match app {
                AppError::Internal(detail) | AppError::Unavailable(detail) => {
                    tracing::error!(status = status.as_u16(), error = %detail, "request failed");
                }
                other => {
                    tracing::debug!(status = status.as_u16(), error = %other, "request refused")
                }
            }
            (app.public_message(), app.title(), app.code())
        }
        None => {
            // actix's own errors (payload too large, bad form, unknown route...). Their
            // text describes the input, never secrets, but keep 5xx details in the log.
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), error = %err, "request failed");
                (
                    "Something went wrong on our side. The problem has been logged.".to_owned(),
                    "Error",
                    "INTERNAL",
                )
            } else {
                tracing::debug!(status = status.as_u16(), error = %err, "request refused");
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "PAYLOAD_TOO_LARGE"
                } else {
                    "BAD_REQUEST"
                };
                (
                    client_message(status, &err.to_string()),
                    "Bad request",
                    code,
                )
            }
        }
    };
    let (req, _) = res.into_parts();
    let response = if is_api {
        HttpResponse::build(status).json(serde_json::json!({
            "error": { "code": code, "message": message }
        }))
    } else if is_htmx && status == StatusCode::UNAUTHORIZED {
        HttpResponse::build(status)
            .insert_header((htmx::HX_REDIRECT, "/login"))
            .finish()
    } else if is_htmx {
        HxResponse::new(status)
            .html(&Toast::error(&message).render().unwrap_or_default())
            .retarget("#toasts")
            .reswap("beforeend")
            .finish()
    } else if status == StatusCode::UNAUTHORIZED {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/login"))
            .finish()
    } else {
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message: &message,
        };
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(page.render().unwrap_or_else(|_| message.clone()))
    };
    ServiceResponse::new(req, response)
}

fn client_message(status: StatusCode, detail: &str) -> String {
    match status {
        StatusCode::NOT_FOUND => {
            "That page or item does not exist (it may have been deleted).".into()
        }
        StatusCode::METHOD_NOT_ALLOWED => "That action is not available here.".into(),
        StatusCode::PAYLOAD_TOO_LARGE => "The request is larger than 64 KiB.".into(),
        _ => {
            let mut d: String = detail.chars().take(200).collect();
            if d.is_empty() {
                d = "The request could not be understood.".into();
            }
            d
        }
    }
}
