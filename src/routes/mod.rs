//! The whole URL map on one screen.

pub mod api;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod export;
pub mod health;
pub mod keys;
pub mod two_factor;
pub mod users;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::error::UrlencodedError;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{HttpResponse, web};

use crate::error::{AppError, render_errors};

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The one limit of every request body, form or JSON, dashboard or API (defined
/// beside the API's JSON reader, which routes::api's modules cannot import from here
/// without a cycle).
pub use api::BODY_LIMIT;

/// What the dashboard's session cookie is made with.
#[derive(Clone)]
pub struct CookieSettings {
    pub key: Key,
    pub secure: bool,
}

/// Security headers of every dashboard response (a handler's own value wins).
fn dashboard_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), clipboard-write=(self)",
        ))
        .add(("Vary", "HX-Request"))
        // Pages show keys' metadata and audit data: no cache keeps them. (Static
        // files set their own, cacheable, header.)
        .add(("Cache-Control", "no-store"));
    if https {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}

/// Every scope, its middleware and its error shapes: the API (JSON only, requests
/// recorded per key) and the dashboard (sessions, CSRF, security headers).
pub fn configure(cfg: &mut web::ServiceConfig, cookies: &CookieSettings) {
    let sessions = SessionMiddleware::builder(CookieSessionStore::default(), cookies.key.clone())
        .cookie_name("latchkey_session".into())
        .cookie_secure(cookies.secure)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Strict)
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(BrowserSession::default())
        .build();
    cfg.app_data(
        web::FormConfig::default()
            .limit(BODY_LIMIT)
            .error_handler(|e, _| match e {
                UrlencodedError::Overflow { .. } => AppError::TooLarge.into(),
                e => AppError::BadRequest(format!("The form could not be read: {e}")).into(),
            }),
    )
    .app_data(web::QueryConfig::default().error_handler(|e, _| {
        AppError::BadRequest(format!("The address has an invalid parameter: {e}")).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
    .service(
        web::scope("/api/v1")
            .app_data(
                web::JsonConfig::default()
                    .limit(BODY_LIMIT)
                    .error_handler(|e, _| api::json_error(e).into()),
            )
            // Raw bodies (the roll's optional JSON) too. The dashboard keeps actix's
            // larger default for raw reads: the CSRF check reads a form whole, so an
            // oversized form is answered 413 by the form's own limit after it arrived,
            // not by a connection closed while the browser still sends.
            .app_data(web::PayloadConfig::default().limit(BODY_LIMIT))
            .wrap(from_fn(api::api_layer))
            .configure(api)
            .default_service(web::to(api::not_found)),
    )
    .service(
        web::scope("")
            .wrap(from_fn(crate::net::check_forwarded))
            .wrap(from_fn(crate::session::verify_csrf))
            .wrap(from_fn(render_errors))
            .wrap(sessions)
            .wrap(dashboard_headers(cookies.secure))
            .wrap(from_fn(crate::telemetry::log_requests))
            .configure(dashboard)
            .default_service(web::to(not_found)),
    );
}

/// `/api/v1/...`: JSON only.
pub fn api(cfg: &mut web::ServiceConfig) {
    cfg.route("/ping", web::get().to(api::ping))
        .route("/openapi.json", web::get().to(api::openapi))
        .route("/keys/verify", web::post().to(api::verify_key))
        .route("/keys/export", web::get().to(api::export_keys))
        .route("/keys/import", web::post().to(api::import_keys))
        .route("/leak-reports", web::post().to(api::report_leaks))
        .route("/keys", web::get().to(api::list_keys))
        .route("/keys", web::post().to(api::create_key))
        .route("/keys/bulk", web::post().to(api::bulk_keys))
        .route("/keys/{key_id}", web::get().to(api::get_key))
        .route("/keys/{key_id}", web::patch().to(api::update_key))
        .route("/keys/{key_id}", web::delete().to(api::delete_key))
        .route("/keys/{key_id}/roll", web::post().to(api::roll_key))
        .route(
            "/keys/{key_id}/credits",
            web::post().to(api::change_credits),
        )
        .route(
            "/keys/{key_id}/postback/secret",
            web::post().to(api::roll_postback_secret),
        )
        .route(
            "/keys/{key_id}/postback/test",
            web::post().to(api::send_postback_test),
        )
        .route("/keys/{key_id}/{action}", web::post().to(api::set_active));
}

/// Everything else: the dashboard.
pub fn dashboard(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(auth::home))
        .route("/login", web::get().to(auth::login_page))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/login/code", web::get().to(auth::login_code_page))
        .route("/login/code", web::post().to(auth::login_code))
        .route(
            "/account/two-factor",
            web::get().to(two_factor::two_factor_page),
        )
        .route(
            "/account/two-factor",
            web::post().to(two_factor::confirm_two_factor),
        )
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
        .route(
            "/channels/{id}/keys/search",
            web::post().to(keys::search_channel_keys),
        )
        .route(
            "/channels/{id}/keys/export",
            web::get().to(keys::export_channel_keys),
        )
        .route(
            "/channels/{id}/keys/import",
            web::get().to(keys::import_form),
        )
        .route(
            "/channels/{id}/keys/import",
            web::post().to(keys::import_keys),
        )
        .route("/audit", web::get().to(audit::list_audit))
        .route("/users", web::get().to(users::list_users))
        .route("/users", web::post().to(users::create_user))
        .route(
            "/users/two-factor",
            web::post().to(users::set_two_factor_requirement),
        )
        .route("/users/{id}/role", web::post().to(users::change_role))
        .route(
            "/users/{id}/two-factor/reset",
            web::post().to(users::reset_two_factor),
        )
        .route(
            "/users/{id}/password",
            web::post().to(users::reset_password),
        )
        .route("/users/{id}/{action}", web::post().to(users::set_disabled))
        .route("/keys", web::get().to(keys::all_keys))
        .route("/keys/search", web::post().to(keys::search_all_keys))
        .route("/keys/export", web::get().to(keys::export_all_keys))
        .route("/keys/bulk", web::post().to(keys::run_bulk))
        .route("/keys/bulk/confirm", web::get().to(keys::confirm_bulk))
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
        .route(
            "/keys/{key_id}/postback/secret",
            web::post().to(keys::roll_postback_secret),
        )
        .route(
            "/keys/{key_id}/postback/test",
            web::post().to(keys::send_postback_test),
        )
        .route(
            "/keys/{key_id}/deliveries/{id}/resend",
            web::post().to(keys::resend_delivery),
        )
        .route("/keys/{key_id}/{action}", web::post().to(keys::act_on_key));
}

/// Unknown URLs get the same 404 as a missing item, through `AppError`.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}
