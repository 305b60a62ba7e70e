//! POSTback actions on the key page: roll the signing secret (shown once), send a test
//! event, resend one delivery.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::common::one_time_reveal;
use crate::app;
use crate::db::keys::ApiKey;
use crate::domain::webhook::SigningSecret;
use crate::error::AppError;
use crate::htmx::HxRequest;
use crate::routes::auth::see_other;
use crate::session::{self as sess, CurrentUser};
use crate::state::AppState;
use crate::views::errors::{Toast, ToastOob};
use crate::views::format_time;
use crate::views::keys::SecretReveal;

/// Shows a signing secret once: a modal for htmx, a page otherwise; never cached.
pub(super) fn secret_response(
    user: &CurrentUser,
    hx: &HxRequest,
    secret: &SigningSecret,
    key: &ApiKey,
    overlap_ends: Option<time::PrimitiveDateTime>,
    saved: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let reveal = SecretReveal {
        s: secret,
        name: key.name.clone(),
        done_href: format!("/keys/{}", key.key_id),
        in_modal: hx.is_htmx,
        overlap_ends: overlap_ends.map(format_time),
    };
    // After an edit: the saved toast too.
    let toast = match saved {
        Some(message) => ToastOob {
            toast: Toast::success(message),
        }
        .render()?,
        None => String::new(),
    };
    one_time_reveal(
        user,
        hx,
        "Your POSTback signing secret",
        reveal.render()?,
        &toast,
    )
}

pub async fn roll_postback_secret(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (key, secret, overlap_ends) =
        app::postback::roll_secret(&state, &user.actor(), path.into_inner()).await?;
    secret_response(&user, &hx, &secret, &key, Some(overlap_ends), None)
}

pub async fn send_postback_test(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let key = app::postback::send_test(&state, &user.actor(), path.into_inner()).await?;
    sess::set_flash(&session, "Test event queued.")?;
    Ok(see_other(&format!("/keys/{}", key.key_id)))
}

pub async fn resend_delivery(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, AppError> {
    let (key_id, delivery) = path.into_inner();
    let key = app::postback::resend(&state, &user.actor(), key_id, delivery).await?;
    sess::set_flash(&session, "Event queued again.")?;
    Ok(see_other(&format!("/keys/{}", key.key_id)))
}
