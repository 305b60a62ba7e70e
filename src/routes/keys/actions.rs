//! Row actions: activate, deactivate and delete (confirmed), roll, and the one-time
//! reveal of a new key.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::common::{keys_url, one_time_reveal, permissions, respond};
use crate::app;
use crate::db::channels::Channel;
use crate::db::keys::ApiKey;
use crate::domain::grace::Grace;
use crate::domain::key::PlainKey;
use crate::domain::role::Action;
use crate::domain::webhook::SigningSecret;
use crate::error::AppError;
use crate::htmx::{HxRequest, HxResponse, KEYS_CHANGED};
use crate::routes::auth::see_other;
use crate::session::{self as sess, CurrentUser};
use crate::state::AppState;
use crate::views::errors::{ModalCloseOob, Toast, ToastOob};
use crate::views::keys::{Confirm, KeyRow, Reveal, RollForm};

/// The toast (about `key_id`) and the closed modal that end every row action.
pub(super) fn done(message: &str, key_id: Option<&str>) -> Result<String, AppError> {
    let toast = Toast::success(message);
    Ok(ToastOob {
        toast: match key_id {
            Some(k) => toast.about(k),
            None => toast,
        },
    }
    .render()?
        + &ModalCloseOob { id: "modal-stack" }.render()?)
}

/// After a row action: htmx gets the new row, a toast, and the modal closed; a plain
/// form gets a redirect to the keys page with the message.
pub(super) fn row_changed(
    user: &CurrentUser,
    hx: &HxRequest,
    session: &Session,
    key: &ApiKey,
    channel: &Channel,
    message: &str,
) -> Result<HttpResponse, AppError> {
    if !hx.is_htmx {
        sess::set_flash(session, message)?;
        return Ok(see_other(&keys_url(channel.id)));
    }
    // From the key's own page there is no row to swap: load the page again, with the
    // message as its toast.
    let own_page = format!("/keys/{}", key.key_id);
    if hx.current_path.as_deref() == Some(own_page.as_str()) {
        sess::set_flash(session, message)?;
        return Ok(HxResponse::ok().redirect(&own_page).finish());
    }
    let mut row = KeyRow::new(key, crate::db::now(), permissions(user));
    // The All keys table has a Channel column; its rows say so when they ask.
    if hx.current_path.as_deref() == Some("/keys") {
        row = row.with_channel(channel.id, &channel.name);
    }
    Ok(HxResponse::ok()
        .html(&row.render()?)
        .html(&done(message, Some(&key.key_id))?)
        .retarget(&format!("#key-{}", key.key_id))
        .reswap("outerHTML")
        .finish())
}

/// The three confirmed actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowAction {
    Activate,
    Deactivate,
    Delete,
}

impl RowAction {
    /// `enable` and `disable` are the old names of the first two.
    fn parse(s: &str) -> Result<Self, AppError> {
        match s {
            "activate" | "enable" => Ok(RowAction::Activate),
            "deactivate" | "disable" => Ok(RowAction::Deactivate),
            "delete" => Ok(RowAction::Delete),
            _ => Err(AppError::NotFound),
        }
    }

    fn permission(self) -> Action {
        match self {
            RowAction::Activate => Action::ActivateKey,
            RowAction::Deactivate | RowAction::Delete => Action::RevokeKey,
        }
    }
}

pub async fn confirm_action(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (key_id, action) = path.into_inner();
    let action = RowAction::parse(&action)?;
    user.require(action.permission())?;
    let (key, channel) = app::keys::find(&state, &user.actor(), key_id).await?;
    let (name, title, message, button, button_class) = match action {
        RowAction::Activate => (
            "activate",
            "Activate this key?",
            format!(
                "“{}” will be accepted again by verification and the API.",
                key.name
            ),
            "Activate",
            "btn-success",
        ),
        RowAction::Deactivate => (
            "deactivate",
            "Deactivate this key?",
            format!(
                "“{}” will be refused by verification and the API at once, until it is activated again.",
                key.name
            ),
            "Deactivate",
            "btn-danger",
        ),
        RowAction::Delete => (
            "delete",
            "Delete this key?",
            format!(
                "“{}” will stop working at once and be removed. This cannot be undone.",
                key.name
            ),
            "Delete key",
            "btn-danger",
        ),
    };
    let confirm = Confirm {
        key_id: key.key_id.clone(),
        key_name: key.name.clone(),
        action: name,
        title,
        message,
        button,
        button_class,
        csrf: user.csrf.clone(),
        cancel_href: keys_url(channel.id),
        in_modal: hx.is_htmx,
    };
    respond(&user, &hx, StatusCode::OK, title, confirm.render()?)
}

pub async fn act_on_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (key_id, action) = path.into_inner();
    let action = RowAction::parse(&action)?;
    let actor = user.actor();
    let (key, channel) = app::keys::find(&state, &actor, key_id).await?;
    let changed = match action {
        RowAction::Activate => app::keys::set_active(&state, &actor, key.key_id, true).await?,
        RowAction::Deactivate => app::keys::set_active(&state, &actor, key.key_id, false).await?,
        RowAction::Delete => app::keys::delete(&state, &actor, key.key_id).await?,
    };
    let message = match action {
        RowAction::Activate => format!("“{}” activated.", changed.name),
        RowAction::Deactivate => format!("“{}” deactivated.", changed.name),
        RowAction::Delete => format!("“{}” deleted.", changed.name),
    };
    if action != RowAction::Delete {
        return row_changed(&user, &hx, &session, &changed, &channel, &message);
    }
    if !hx.is_htmx {
        sess::set_flash(&session, &message)?;
        return Ok(see_other(&keys_url(channel.id)));
    }
    // The row goes; the results, the channel's header and the Channels table refresh
    // themselves on `keys-changed`, each with its own filter and position.
    Ok(HxResponse::ok()
        .html(&done(&message, Some(&changed.key_id))?)
        .retarget(&format!("#key-{}", changed.key_id))
        .reswap("outerHTML")
        .trigger(KEYS_CHANGED)
        .finish())
}

/// The one response that carries a new key's plaintext (after generate or roll): the
/// reveal modal (the table behind it refreshes itself on `keys-changed`), or a page of
/// its own.
pub(super) fn reveal_response(
    user: &CurrentUser,
    hx: &HxRequest,
    plain: &PlainKey,
    secret: Option<&SigningSecret>,
    name: &str,
    channel_id: i64,
) -> Result<HttpResponse, AppError> {
    let reveal = Reveal {
        key: plain,
        secret,
        name: name.to_owned(),
        done_href: keys_url(channel_id),
        in_modal: hx.is_htmx,
    };
    one_time_reveal(user, hx, "Your new API key", reveal.render()?, "")
}

pub async fn roll_form(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::CreateKey)?;
    let (key, channel) = app::keys::find(&state, &user.actor(), path.into_inner()).await?;
    let form = RollForm {
        key_id: key.key_id.clone(),
        key_name: key.name.clone(),
        expires: key.expires_at.map(crate::views::format_time),
        choices: Grace::ALL.iter().map(|g| (g.as_str(), g.label())).collect(),
        csrf: user.csrf.clone(),
        cancel_href: keys_url(channel.id),
        in_modal: hx.is_htmx,
    };
    respond(&user, &hx, StatusCode::OK, "Roll API key", form.render()?)
}

#[derive(serde::Deserialize)]
pub struct RollInput {
    #[serde(default)]
    grace: String,
}

pub async fn roll_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<String>,
    input: web::Form<RollInput>,
) -> Result<HttpResponse, AppError> {
    // The role first: a person who may not roll learns nothing about the form.
    user.require(Action::CreateKey)?;
    let grace = Grace::parse(&input.grace)
        .ok_or_else(|| AppError::BadRequest("Choose how long the old key keeps working.".into()))?;
    let rolled = app::roll::roll(&state, &user.actor(), path.into_inner(), grace).await?;
    reveal_response(
        &user,
        &hx,
        &rolled.plain,
        None,
        &rolled.new.name,
        rolled.new.channel_id,
    )
}
