//! The generate / edit form and the rename form.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::common::{keys_url, respond};
use crate::app::{self, Error};
use crate::db::channels::Channel;
use crate::db::keys::ApiKey;
use crate::domain::key_settings::{KeyErrors, KeyInput, parse_name};
use crate::domain::role::Action;
use crate::error::AppError;
use crate::htmx::HxRequest;
use crate::session::CurrentUser;
use crate::state::AppState;
use crate::views::keys::{KeyForm, RenameForm};

const NAME_TAKEN: &str = "A key with this name already exists in this channel.";

fn form_response(
    user: &CurrentUser,
    hx: &HxRequest,
    status: StatusCode,
    mut form: KeyForm,
) -> Result<HttpResponse, AppError> {
    form.in_modal = hx.is_htmx;
    let title = form.title();
    respond(user, hx, status, title, form.render()?)
}

/// What the generate/edit form posted, and which button was pressed.
struct KeyFormPost {
    input: KeyInput,
    add_cidr: bool,
    remove_cidr: Option<usize>,
}

fn read_key_form(pairs: &[(String, String)]) -> KeyFormPost {
    let mut input = KeyInput::default();
    let mut add_cidr = false;
    let mut remove_cidr = None;
    for (k, v) in pairs {
        match k.as_str() {
            "name" => input.name = v.clone(),
            "description" => input.description = v.clone(),
            "expires_at" => input.expires_at = v.clone(),
            "scopes" => input.scopes.push(v.clone()),
            "cidr" => input.cidrs.push(v.clone()),
            "postback_url" => input.postback_url = v.clone(),
            "off_the_record" => input.off_the_record = true,
            "enabled" => input.enabled = true,
            "rate_limits" => input.rate_limits = v.clone(),
            "credits" => input.credits = v.clone(),
            "credits_was" => input.credits_was = Some(v.clone()),
            "refill" => input.refill = v.clone(),
            "refill_amount" => input.refill_amount = v.clone(),
            "metadata" => input.metadata = v.clone(),
            "add_cidr" => add_cidr = true,
            "remove_cidr" => remove_cidr = v.parse().ok(),
            _ => {}
        }
    }
    KeyFormPost {
        input,
        add_cidr,
        remove_cidr,
    }
}

impl KeyFormPost {
    /// Applies the + / × buttons. Returns true when one was pressed (re-render, do not
    /// save).
    fn apply_list_buttons(&mut self) -> bool {
        if let Some(i) = self.remove_cidr {
            if i < self.input.cidrs.len() {
                self.input.cidrs.remove(i);
            }
            return true;
        }
        if self.add_cidr {
            self.input.cidrs.retain(|c| !c.trim().is_empty());
            self.input.cidrs.push(String::new());
            return true;
        }
        false
    }
}

fn blank_form(
    state: &AppState,
    user: &CurrentUser,
    key: Option<&ApiKey>,
    channel_id: i64,
    input: KeyInput,
) -> KeyForm {
    KeyForm {
        action: key.map_or_else(|| keys_url(channel_id), |k| format!("/keys/{}", k.key_id)),
        key_id: key.map(|k| k.key_id.clone()),
        input,
        errors: KeyErrors::default(),
        all_scopes: state.settings.scopes.clone(),
        csrf: user.csrf.clone(),
        cancel_href: keys_url(channel_id),
        in_modal: false,
        alert: None,
    }
}

pub async fn new_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::CreateKey)?;
    let channel = app::keys::channel(&state, &user.actor(), path.into_inner()).await?;
    let default_limit = state.settings.max_keys_per_channel;
    if channel.key_count >= channel.effective_limit(default_limit) {
        return Err(app::keys::limit_reached(&channel, default_limit).into());
    }
    let input = KeyInput {
        name: app::keys::suggest_name(&state, &user.actor(), &channel).await?,
        enabled: true,
        ..KeyInput::default()
    };
    let form = blank_form(&state, &user, None, channel.id, input);
    form_response(&user, &hx, StatusCode::OK, form)
}

/// Saves the generate / edit form: field errors and refusals beside the fields, with
/// everything typed kept.
async fn save_form(
    state: &AppState,
    user: &CurrentUser,
    hx: &HxRequest,
    session: &Session,
    key: Option<ApiKey>,
    channel: &Channel,
    form: &[(String, String)],
) -> Result<HttpResponse, AppError> {
    let channel_id = channel.id;
    let mut post = read_key_form(form);
    let mut view = blank_form(state, user, key.as_ref(), channel_id, post.input.clone());
    if post.apply_list_buttons() {
        view.input = post.input;
        return form_response(user, hx, StatusCode::OK, view);
    }
    let existing_expiry = key.as_ref().and_then(|k| k.expires_at);
    let settings = match post.input.parse(
        &state.settings.scopes,
        crate::db::now(),
        existing_expiry,
        &state.settings.receiver_policy(),
    ) {
        Ok(s) => s,
        Err(errors) => {
            view.errors = errors;
            return form_response(user, hx, StatusCode::UNPROCESSABLE_ENTITY, view);
        }
    };
    let actor = user.actor();
    let result = match &key {
        None => app::keys::create(state, &actor, channel_id, settings)
            .await
            .map(|c| (c.key, Some(c.plain), c.postback_secret)),
        Some(k) => app::keys::update(state, &actor, k.key_id.clone(), settings)
            .await
            .map(|(key, secret)| (key, None, secret)),
    };
    match result {
        Ok((key, Some(plain), secret)) => super::actions::reveal_response(
            user,
            hx,
            &plain,
            secret.as_ref(),
            &key.name,
            channel_id,
        ),
        // The key's first POSTback URL: its signing secret, shown this once.
        Ok((key, None, Some(secret))) => super::postback::secret_response(
            user,
            hx,
            &secret,
            &key,
            None,
            Some(&format!("Saved “{}”.", key.name)),
        ),
        Ok((key, None, None)) => super::actions::row_changed(
            user,
            hx,
            session,
            &key,
            channel,
            &format!("Saved “{}”.", key.name),
        ),
        Err(Error::NameTaken) => {
            view.errors.name = Some(NAME_TAKEN.into());
            form_response(user, hx, StatusCode::UNPROCESSABLE_ENTITY, view)
        }
        Err(Error::Conflict(r)) => {
            view.alert = Some(r.message);
            form_response(user, hx, StatusCode::UNPROCESSABLE_ENTITY, view)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn create_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    path: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::CreateKey)?;
    let channel = app::keys::channel(&state, &user.actor(), path.into_inner()).await?;
    save_form(&state, &user, &hx, &session, None, &channel, &form).await
}

pub async fn edit_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (key, channel) = app::keys::find_for_edit(&state, &user.actor(), path.into_inner()).await?;
    let form = blank_form(&state, &user, Some(&key), channel.id, key.as_input());
    form_response(&user, &hx, StatusCode::OK, form)
}

pub async fn update_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let (key, channel) = app::keys::find_for_edit(&state, &user.actor(), path.into_inner()).await?;
    save_form(&state, &user, &hx, &session, Some(key), &channel, &form).await
}

pub async fn rename_form(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::EditKey)?;
    let (key, channel) = app::keys::find(&state, &user.actor(), path.into_inner()).await?;
    let form = RenameForm {
        key_id: key.key_id,
        name: key.name,
        error: None,
        csrf: user.csrf.clone(),
        cancel_href: keys_url(channel.id),
        in_modal: hx.is_htmx,
    };
    respond(&user, &hx, StatusCode::OK, "Rename API key", form.render()?)
}

#[derive(serde::Deserialize)]
pub struct RenameInput {
    #[serde(default)]
    name: String,
}

pub async fn rename_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    path: web::Path<String>,
    input: web::Form<RenameInput>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::EditKey)?;
    let (key, channel) = app::keys::find(&state, &user.actor(), path.into_inner()).await?;
    let refuse = |error: String| -> Result<HttpResponse, AppError> {
        let form = RenameForm {
            key_id: key.key_id.clone(),
            name: input.name.clone(),
            error: Some(error),
            csrf: user.csrf.clone(),
            cancel_href: keys_url(channel.id),
            in_modal: hx.is_htmx,
        };
        respond(
            &user,
            &hx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Rename API key",
            form.render()?,
        )
    };
    let name = match parse_name(&input.name) {
        Ok(n) => n,
        Err(e) => return refuse(e),
    };
    match app::keys::rename(&state, &user.actor(), key.key_id.clone(), name).await {
        Ok(renamed) => super::actions::row_changed(
            &user,
            &hx,
            &session,
            &renamed,
            &channel,
            &format!("Renamed to “{}”.", renamed.name),
        ),
        Err(Error::NameTaken) => refuse(NAME_TAKEN.into()),
        Err(e) => Err(e.into()),
    }
}
