//! Bulk actions from the keys table: the confirmation that states the count, and the
//! action itself (`app::bulk`), answered with a summary toast (htmx) or a flash message
//! after a redirect back to the list (no JavaScript).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::actions::done;
use super::common::{keys_url, respond};
use crate::app;
use crate::domain::bulk::{BulkAction, BulkForm, Selection, parse_new_expiry};
use crate::error::AppError;
use crate::htmx::{HxRequest, HxResponse, KEYS_CHANGED};
use crate::routes::auth::see_other;
use crate::session::{self as sess, CurrentUser};
use crate::state::AppState;
use crate::views::errors::{ModalCloseOob, Toast, ToastOob};
use crate::views::keys::BulkConfirm;

fn parse(pairs: &[(String, String)]) -> Result<BulkForm, AppError> {
    BulkForm::parse(pairs).map_err(|e| AppError::BadRequest(e.message))
}

/// The list the selection came from: the channel's page or All keys, with its filter.
fn list_href(form: &BulkForm) -> String {
    let base = match form.channel {
        Some(c) => keys_url(c),
        None => "/keys".to_owned(),
    };
    format!("{base}{}", form.list.href(None, 0))
}

fn keys_text(n: i64) -> String {
    if n == 1 {
        "1 key".into()
    } else {
        format!("{n} keys")
    }
}

fn confirmation(
    user: &CurrentUser,
    hx: &HxRequest,
    form: &BulkForm,
    count: i64,
    error: Option<String>,
) -> BulkConfirm {
    let what = keys_text(count);
    let everyone = match &form.selection {
        Selection::Matching { .. } => format!("All {what} matching the filter"),
        Selection::Ids(_) => format!("The {what} you selected"),
    };
    let (message, button_class) = match form.action {
        BulkAction::Deactivate => (
            format!(
                "{everyone} will be refused by verification and the API at once, until activated again. Each change is audited and sent to the key's POSTback URL."
            ),
            "btn-danger",
        ),
        BulkAction::Activate => (
            format!("{everyone} will be accepted again by verification and the API."),
            "btn-success",
        ),
        BulkAction::Delete => (
            format!("{everyone} will stop working at once and be removed. This cannot be undone."),
            "btn-danger",
        ),
        BulkAction::SetExpiry => (
            format!("{everyone} will get this expiry; reminders start over for the new date."),
            "btn-primary",
        ),
    };
    let verb = match form.action {
        BulkAction::SetExpiry => "Set expiry of".to_owned(),
        a => a.label().to_owned(),
    };
    BulkConfirm {
        pairs: form.pairs(),
        message,
        button: format!("{verb} {what}"),
        button_class,
        expiry: form.action == BulkAction::SetExpiry,
        expires_text: form.expires_text.clone().unwrap_or_default(),
        error,
        csrf: user.csrf.clone(),
        cancel_href: list_href(form),
        in_modal: hx.is_htmx,
    }
}

/// "Deactivate 137 keys?"
pub async fn confirm_bulk(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let form = parse(&query)?;
    user.require(form.action.permission())?;
    let count = app::bulk::count(&state, &user.actor(), form.action, &form.selection).await?;
    if count == 0 {
        return Err(AppError::BadRequest(
            "No keys match this filter any more.".into(),
        ));
    }
    let title = match form.action {
        BulkAction::SetExpiry => format!("Set the expiry of {}?", keys_text(count)),
        a => format!("{} {}?", a.label(), keys_text(count)),
    };
    let confirm = confirmation(&user, &hx, &form, count, None);
    respond(&user, &hx, StatusCode::OK, &title, confirm.render()?)
}

pub async fn run_bulk(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    pairs: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let form = parse(&pairs)?;
    user.require(form.action.permission())?;
    let actor = user.actor();
    let expires_at = if form.action == BulkAction::SetExpiry {
        let text = form.expires_text.as_deref().unwrap_or("");
        match parse_new_expiry(text, crate::db::now()) {
            Ok(t) => t,
            Err(e) => {
                // The form again, with what was typed and why it is wrong.
                let count = app::bulk::count(&state, &actor, form.action, &form.selection).await?;
                let confirm = confirmation(&user, &hx, &form, count, Some(e.message));
                return respond(
                    &user,
                    &hx,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Set expiry",
                    confirm.render()?,
                );
            }
        }
    } else {
        None
    };
    let back = list_href(&form);
    let outcome = app::bulk::run(&state, &actor, form.action, form.selection, expires_at).await?;
    let summary = outcome.summary();
    if !hx.is_htmx {
        sess::set_flash(&session, &summary)?;
        return Ok(see_other(&back));
    }
    // The modal closes, the summary is announced (the toasts are a live region), and
    // the table, its header and the Channels page refresh themselves. When every key
    // was refused, the summary is an error.
    let mut body = done(&summary, None)?;
    if outcome.changed.is_empty() && !outcome.refused.is_empty() {
        body = ToastOob {
            toast: Toast::error(&summary),
        }
        .render()?
            + &ModalCloseOob { id: "modal-stack" }.render()?;
    }
    Ok(HxResponse::ok()
        .html(&body)
        .reswap("none")
        .trigger(KEYS_CHANGED)
        .finish())
}
