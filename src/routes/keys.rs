//! The API Keys page and every row action. Each handler: extract, parse into domain
//! types, one repository call, render. htmx gets fragments (rows, modals, toasts out
//! of band); a browser without JavaScript gets full pages and redirects.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::counts::FilterCounts;
use crate::db::channels::{self, Channel};
use crate::db::keys::{self, ApiKey, NewKey, WriteError};
use crate::db::usage::{self, StatusFilter};
use crate::db::{self};
use crate::domain::grace::Grace;
use crate::domain::key::PlainKey;
use crate::domain::key_settings::{KeyErrors, KeyInput, parse_name};
use crate::domain::list::{Filter, ListParams, ListQuery, Risk};
use crate::domain::role::Action;
use crate::error::{AppError, render};
use crate::htmx::{self, HxRequest};
use crate::routes::auth::see_other;
use crate::session::{self as sess, CurrentUser};
use crate::startup::AppState;
use crate::views::Shell;
use crate::views::errors::{ModalCloseOob, Toast, ToastOob};
use crate::views::key_detail::{DeliveryRow, KeyDetailPage, LogRow, RequestLog, charts};
use crate::views::keys::{
    AllKeysPage, Confirm, FormPage, KeyForm, KeyPermissions, KeyRow, KeysDialog, KeysPage,
    KeysResults, KeysStats, KeysView, RenameForm, Reveal, RiskItem, RisksPage, RollForm,
    StackModal,
};

const NAME_TAKEN: &str = "A key with this name already exists in this channel.";

fn keys_url(channel_id: i64) -> String {
    format!("/channels/{channel_id}/keys")
}

fn permissions(user: &CurrentUser) -> KeyPermissions {
    KeyPermissions {
        create: user.may(Action::CreateKey),
        edit: user.may(Action::EditKey),
        activate: user.may(Action::ActivateKey),
        revoke: user.may(Action::RevokeKey),
    }
}

/// The system channel's keys reach every channel: only admins see or touch them.
fn check_channel(user: &CurrentUser, channel: &Channel) -> Result<(), AppError> {
    if channel.is_system {
        user.require(Action::UseSystemChannel)?;
    }
    Ok(())
}

async fn load_channel(state: &AppState, user: &CurrentUser, id: i64) -> Result<Channel, AppError> {
    let channel = db::run(&state.pool, move |c| channels::find(c, id))
        .await?
        .ok_or(AppError::NotFound)?;
    check_channel(user, &channel)?;
    Ok(channel)
}

async fn load_key(
    state: &AppState,
    user: &CurrentUser,
    key_id: String,
) -> Result<(ApiKey, Channel), AppError> {
    let (key, channel) = db::run(&state.pool, move |c| {
        let Some(key) = keys::find_by_key_id(c, &key_id)? else {
            return Ok(None);
        };
        Ok(channels::find(c, key.channel_id)?.map(|ch| (key, ch)))
    })
    .await?
    .ok_or(AppError::NotFound)?;
    check_channel(user, &channel)?;
    Ok((key, channel))
}

/// One page of keys. `unfiltered_total` is the list's size without a filter (the
/// channel's `key_count`); a filtered total comes from `state.counts` when remembered,
/// else it is counted and remembered.
pub(super) async fn key_page(
    state: &AppState,
    within: keys::Within,
    query: &ListQuery,
    unfiltered_total: i64,
) -> Result<keys::KeyPage, AppError> {
    let remember = FilterCounts::key(within, query);
    let unfiltered = matches!(query.filter, Filter::None) && query.risk.is_none();
    let known = if unfiltered {
        Some(unfiltered_total)
    } else {
        remember.as_deref().and_then(|k| state.counts.get(k))
    };
    let generation = state.counts.generation();
    let q = query.clone();
    let page = db::run(&state.pool, move |c| keys::list_page(c, within, &q, known)).await?;
    if let (None, Some(k)) = (known, remember) {
        state.counts.put(k, generation, page.total);
    }
    Ok(page)
}

async fn load_results(
    state: &AppState,
    user: &CurrentUser,
    channel: &Channel,
    query: ListQuery,
    oob: bool,
) -> Result<KeysResults, AppError> {
    let page = key_page(
        state,
        keys::Within::Channel(channel.id),
        &query,
        channel.key_count,
    )
    .await?;
    let at_limit =
        channel.key_count >= channel.effective_limit(state.settings.max_keys_per_channel);
    Ok(KeysResults::new(
        channel.id,
        &page,
        &query,
        db::now(),
        permissions(user),
        at_limit,
        keys_url(channel.id),
        oob,
    ))
}

fn stats(state: &AppState, user: &CurrentUser, channel: &Channel, oob: bool) -> KeysStats {
    let mut s = KeysStats::new(
        channel,
        state.settings.max_keys_per_channel,
        user.may(Action::CreateKey),
    );
    s.oob = oob;
    s
}

pub async fn list_keys(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    path: web::Path<i64>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ViewKeys)?;
    let channel = load_channel(&state, &user, path.into_inner()).await?;
    let query = ListQuery::parse(&params);
    let canonical = format!(
        "{}{}",
        keys_url(channel.id),
        query.href(query.cursor, query.pos)
    );
    let results = load_results(&state, &user, &channel, query.clone(), false).await?;
    if hx.targets("keys-results") {
        // The canonical URL goes into the history, never what was typed: a pasted full
        // key becomes its key id.
        let mut res = render(StatusCode::OK, &results)?;
        if let Ok(v) = HeaderValue::from_str(&canonical) {
            res.headers_mut().insert(htmx::HX_PUSH_URL, v);
        }
        return Ok(res);
    }
    let view = KeysView {
        channel_id: channel.id,
        channel_name: channel.name.clone(),
        is_system: channel.is_system,
        stats: stats(&state, &user, &channel, false),
        results,
        query,
        in_dialog: hx.targets("modal"),
    };
    if hx.targets("modal") {
        return render(StatusCode::OK, &KeysDialog { view });
    }
    let shell = Shell::for_user(&user, "/channels").with_flash(sess::take_flash(&session));
    render(StatusCode::OK, &KeysPage { shell, view })
}

/// A form or message as a stacked modal (htmx opening it), the bare fragment (htmx
/// re-rendering it in place), or a page of its own (no JavaScript).
fn respond(
    user: &CurrentUser,
    hx: &HxRequest,
    status: StatusCode,
    title: &str,
    body: String,
) -> Result<HttpResponse, AppError> {
    if hx.targets("modal-stack") {
        return render(
            status,
            &StackModal {
                title,
                body,
                require_ack: false,
            },
        );
    }
    if hx.is_htmx {
        return Ok(HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body));
    }
    render(
        status,
        &FormPage {
            shell: Shell::for_user(user, "/channels"),
            title,
            body,
        },
    )
}

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
    action: String,
    key_id: Option<String>,
    input: KeyInput,
    cancel: String,
) -> KeyForm {
    KeyForm {
        action,
        key_id,
        input,
        errors: KeyErrors::default(),
        all_scopes: state.settings.scopes.clone(),
        csrf: user.csrf.clone(),
        cancel_href: cancel,
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
    let channel = load_channel(&state, &user, path.into_inner()).await?;
    if channel.key_count >= channel.effective_limit(state.settings.max_keys_per_channel) {
        return Err(AppError::Conflict(limit_message(&state, &channel)));
    }
    let input = KeyInput {
        enabled: true,
        ..KeyInput::default()
    };
    let form = blank_form(
        &state,
        &user,
        format!("/channels/{}/keys", channel.id),
        None,
        input,
        keys_url(channel.id),
    );
    form_response(&user, &hx, StatusCode::OK, form)
}

fn limit_message(state: &AppState, channel: &Channel) -> String {
    format!(
        "This channel has reached its limit of {} keys. Delete a key, or ask an admin to raise the limit.",
        channel.effective_limit(state.settings.max_keys_per_channel)
    )
}

pub async fn create_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::CreateKey)?;
    let channel = load_channel(&state, &user, path.into_inner()).await?;
    let mut post = read_key_form(&form);
    let mut view = blank_form(
        &state,
        &user,
        format!("/channels/{}/keys", channel.id),
        None,
        post.input.clone(),
        keys_url(channel.id),
    );
    if post.apply_list_buttons() {
        view.input = post.input;
        return form_response(&user, &hx, StatusCode::OK, view);
    }
    let settings = match post.input.parse(&state.settings.scopes, db::now(), None) {
        Ok(s) => s,
        Err(errors) => {
            view.errors = errors;
            return form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, view);
        }
    };
    let (plain, parts) = PlainKey::generate(&state.settings.key_prefix);
    let hash = plain.hash();
    let actor = user.actor();
    let (cid, cname, default_limit) = (
        channel.id,
        channel.name.clone(),
        state.settings.max_keys_per_channel,
    );
    let created = state
        .change_keys(move |c| {
            keys::insert(
                c,
                &actor,
                &NewKey {
                    channel_id: cid,
                    channel_name: &cname,
                    default_limit,
                    settings: &settings,
                    parts: &parts,
                    hash: &hash,
                },
            )
        })
        .await?;
    let key = match created {
        Ok(key) => key,
        Err(WriteError::NameTaken) => {
            view.errors.name = Some(NAME_TAKEN.into());
            return form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, view);
        }
        Err(WriteError::LimitReached) => {
            view.alert = Some(limit_message(&state, &channel));
            return form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, view);
        }
        Err(WriteError::NotFound) => return Err(AppError::NotFound),
        Err(WriteError::Db(e)) => return Err(e.into()),
    };
    reveal_response(&state, &user, &hx, &plain, &key.name, &channel).await
}

pub async fn edit_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::EditKey)?;
    let (key, channel) = load_key(&state, &user, path.into_inner()).await?;
    let form = blank_form(
        &state,
        &user,
        format!("/keys/{}", key.key_id),
        Some(key.key_id.clone()),
        key.as_input(),
        keys_url(channel.id),
    );
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
    user.require(Action::EditKey)?;
    let (key, channel) = load_key(&state, &user, path.into_inner()).await?;
    let mut post = read_key_form(&form);
    let mut view = blank_form(
        &state,
        &user,
        format!("/keys/{}", key.key_id),
        Some(key.key_id.clone()),
        post.input.clone(),
        keys_url(channel.id),
    );
    if post.apply_list_buttons() {
        view.input = post.input;
        return form_response(&user, &hx, StatusCode::OK, view);
    }
    let settings = match post
        .input
        .parse(&state.settings.scopes, db::now(), key.expires_at)
    {
        Ok(s) => s,
        Err(errors) => {
            view.errors = errors;
            return form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, view);
        }
    };
    let actor = user.actor();
    let (kid, cname) = (key.key_id.clone(), channel.name.clone());
    let result = state
        .change_keys(move |c| keys::update(c, &actor, &kid, &cname, &settings))
        .await?;
    match result {
        Ok(updated) => row_changed(
            &user,
            &hx,
            &session,
            &updated,
            &channel,
            &format!("Saved “{}”.", updated.name),
        ),
        Err(WriteError::NameTaken) => {
            view.errors.name = Some(NAME_TAKEN.into());
            form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, view)
        }
        Err(WriteError::NotFound | WriteError::LimitReached) => Err(AppError::NotFound),
        Err(WriteError::Db(e)) => Err(e.into()),
    }
}

/// After a row action: htmx gets the new row, a toast, and the modal closed; a plain
/// form gets a redirect to the keys page with the message.
fn row_changed(
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
    let mut row = KeyRow::new(key, db::now(), permissions(user));
    if hx.current_path.as_deref() == Some("/keys") {
        row = row.with_channel(channel.id, &channel.name);
    }
    let body = row.render()?
        + &ToastOob {
            toast: Toast::success(message),
        }
        .render()?
        + &ModalCloseOob { id: "modal-stack" }.render()?;
    let mut res = HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body);
    let target = format!("#key-{}", key.key_id);
    if let Ok(v) = HeaderValue::from_str(&target) {
        res.headers_mut().insert(htmx::HX_RETARGET, v);
    }
    res.headers_mut()
        .insert(htmx::HX_RESWAP, HeaderValue::from_static("outerHTML"));
    Ok(res)
}

pub async fn rename_form(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::EditKey)?;
    let (key, channel) = load_key(&state, &user, path.into_inner()).await?;
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
    let (key, channel) = load_key(&state, &user, path.into_inner()).await?;
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
    let actor = user.actor();
    let (kid, cname) = (key.key_id.clone(), channel.name.clone());
    let result = state
        .change_keys(move |c| keys::rename(c, &actor, &kid, &cname, &name))
        .await?;
    match result {
        Ok(renamed) => row_changed(
            &user,
            &hx,
            &session,
            &renamed,
            &channel,
            &format!("Renamed to “{}”.", renamed.name),
        ),
        Err(WriteError::NameTaken) => refuse(NAME_TAKEN.into()),
        Err(WriteError::NotFound | WriteError::LimitReached) => Err(AppError::NotFound),
        Err(WriteError::Db(e)) => Err(e.into()),
    }
}

/// The three confirmed actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowAction {
    Activate,
    Deactivate,
    Delete,
}

impl RowAction {
    fn parse(s: &str) -> Result<Self, AppError> {
        match s {
            "activate" => Ok(RowAction::Activate),
            "deactivate" => Ok(RowAction::Deactivate),
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
    let (key, channel) = load_key(&state, &user, key_id).await?;
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
    user.require(action.permission())?;
    let (key, channel) = load_key(&state, &user, key_id).await?;
    let actor = user.actor();
    let (kid, cname) = (key.key_id.clone(), channel.name.clone());
    let result = state
        .change_keys(move |c| match action {
            RowAction::Activate => keys::set_enabled(c, &actor, &kid, &cname, true),
            RowAction::Deactivate => keys::set_enabled(c, &actor, &kid, &cname, false),
            RowAction::Delete => keys::delete(c, &actor, &kid, &cname),
        })
        .await?;
    let changed = match result {
        Ok(k) => k,
        Err(WriteError::NotFound) => return Err(AppError::NotFound),
        Err(WriteError::Db(e)) => return Err(e.into()),
        Err(WriteError::NameTaken | WriteError::LimitReached) => {
            return Err(AppError::Internal("unexpected write refusal".into()));
        }
    };
    // Revocation takes effect on the very next verification.
    match action {
        RowAction::Activate => row_changed(
            &user,
            &hx,
            &session,
            &changed,
            &channel,
            &format!("“{}” activated.", changed.name),
        ),
        RowAction::Deactivate => row_changed(
            &user,
            &hx,
            &session,
            &changed,
            &channel,
            &format!("“{}” deactivated.", changed.name),
        ),
        RowAction::Delete => {
            let message = format!("“{}” deleted.", changed.name);
            if !hx.is_htmx {
                sess::set_flash(&session, &message)?;
                return Ok(see_other(&keys_url(channel.id)));
            }
            // Re-render the page the person is on (its filter, sort and position come
            // from HX-Current-URL) so the range and the rows below move up: a channel's
            // keys (page or dialog) with its header, or All keys (no channel header).
            let current = hx.current_path.as_deref();
            let on_all_keys = current == Some("/keys");
            let on_keys_page = on_all_keys
                || current == Some(keys_url(channel.id).as_str())
                || current == Some("/channels");
            let query = ListQuery::parse(
                &hx.current_query
                    .as_deref()
                    .and_then(|q| serde_urlencoded::from_str::<ListParams>(q).ok())
                    .unwrap_or_default(),
            );
            let refreshed = if on_all_keys {
                all_keys_results(&state, &user, &query, true)
                    .await?
                    .render()?
            } else {
                let fresh = load_channel(&state, &user, channel.id).await?;
                let header = stats(&state, &user, &fresh, true).render()?;
                if on_keys_page {
                    header
                        + &load_results(&state, &user, &fresh, query, true)
                            .await?
                            .render()?
                } else {
                    header
                }
            };
            // The row is swapped with nothing; the toast, the closed modal and the new
            // count arrive out of band.
            let body = ToastOob {
                toast: Toast::success(&message),
            }
            .render()?
                + &ModalCloseOob { id: "modal-stack" }.render()?
                + &refreshed;
            let mut res = HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .body(body);
            if let Ok(v) = HeaderValue::from_str(&format!("#key-{}", changed.key_id)) {
                res.headers_mut().insert(htmx::HX_RETARGET, v);
            }
            // With the whole results re-rendered out of band, the row is already gone.
            let swap = if on_keys_page { "none" } else { "outerHTML" };
            res.headers_mut()
                .insert(htmx::HX_RESWAP, HeaderValue::from_static(swap));
            res.headers_mut()
                .insert(htmx::HX_TRIGGER, HeaderValue::from_static("keys-changed"));
            Ok(res)
        }
    }
}

#[derive(serde::Deserialize)]
pub struct LogParams {
    status: Option<String>,
    before: Option<i64>,
}

const LOG_PAGE: i64 = 50;

/// The key detail view: settings, last use, usage charts and the request log.
pub async fn show_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    path: web::Path<String>,
    params: web::Query<LogParams>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ViewKeys)?;
    let (key, channel) = load_key(&state, &user, path.into_inner()).await?;
    let status = params.status.as_deref().and_then(StatusFilter::parse);
    let before = params.before.filter(|b| *b > 0);
    let now = db::now();
    let (id, otr) = (key.id, key.off_the_record);
    let (mut rows, hourly, deliveries) = db::run(&state.pool, move |c| {
        let rows = if otr {
            Vec::new()
        } else {
            usage::log_page(c, id, status, before, LOG_PAGE + 1)?
        };
        let hourly = usage::hourly_counts(c, id, now - time::Duration::days(30))?;
        Ok((rows, hourly, crate::db::outbox::recent_for_key(c, id, 20)?))
    })
    .await?;
    let more = rows.len() as i64 > LOG_PAGE;
    rows.truncate(LOG_PAGE as usize);
    let base = format!("/keys/{}", key.key_id);
    let with_status = |extra: &str| match (status, extra.is_empty()) {
        (Some(s), true) => format!("{base}?status={}", s.as_str()),
        (Some(s), false) => format!("{base}?status={}&{extra}", s.as_str()),
        (None, true) => base.clone(),
        (None, false) => format!("{base}?{extra}"),
    };
    let log = RequestLog {
        key_id: key.key_id.clone(),
        older_href: if more {
            rows.last()
                .map(|r| with_status(&format!("before={}", r.id)))
        } else {
            None
        },
        newest_href: before.map(|_| with_status("")),
        rows: rows.iter().map(LogRow::new).collect(),
        status,
        off_the_record: key.off_the_record,
    };
    if hx.targets("request-log") {
        return render(StatusCode::OK, &log);
    }
    let shell = Shell::for_user(&user, "/channels").with_flash(sess::take_flash(&session));
    let mut page = KeyDetailPage::new(
        shell,
        &key,
        &channel,
        now,
        charts(&hourly, now),
        log,
        permissions(&user),
    );
    page.deliveries = deliveries.iter().map(DeliveryRow::new).collect();
    render(StatusCode::OK, &page)
}

/// The results of the All keys page: every channel the person may see.
async fn all_keys_results(
    state: &AppState,
    user: &CurrentUser,
    query: &ListQuery,
    oob: bool,
) -> Result<KeysResults, AppError> {
    let all = db::run(&state.pool, channels::list).await?;
    // People who may not see the system channel do not find its keys here either.
    let hidden = if user.may(Action::UseSystemChannel) {
        None
    } else {
        all.iter().find(|c| c.is_system).map(|c| c.id)
    };
    let known: i64 = all
        .iter()
        .filter(|c| Some(c.id) != hidden)
        .map(|c| c.key_count)
        .sum();
    let page = key_page(state, keys::Within::AllExcept(hidden), query, known).await?;
    let mut perms = permissions(user);
    perms.create = false;
    let mut results = KeysResults::new(
        0,
        &page,
        query,
        db::now(),
        perms,
        false,
        "/keys".into(),
        oob,
    );
    results.show_channel = true;
    for (row, key) in results.rows.iter_mut().zip(&page.rows) {
        if let Some(c) = all.iter().find(|c| c.id == key.channel_id) {
            row.channel = Some((c.id, c.name.clone()));
        }
    }
    Ok(results)
}

/// All keys: one search across channels, for admins and support.
pub async fn all_keys(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::SearchAllKeys)?;
    let query = ListQuery::parse(&params);
    let results = all_keys_results(&state, &user, &query, false).await?;
    if hx.targets("keys-results") {
        let canonical = format!("/keys{}", query.href(query.cursor, query.pos));
        let mut res = render(StatusCode::OK, &results)?;
        if let Ok(v) = HeaderValue::from_str(&canonical) {
            res.headers_mut().insert(htmx::HX_PUSH_URL, v);
        }
        return Ok(res);
    }
    let shell = Shell::for_user(&user, "/keys").with_flash(sess::take_flash(&session));
    render(
        StatusCode::OK,
        &AllKeysPage {
            shell,
            results,
            query,
        },
    )
}

/// The one response that carries a new key's plaintext (after generate or roll):
/// the reveal modal with a fresh table behind it (htmx), or a page of its own.
async fn reveal_response(
    state: &AppState,
    user: &CurrentUser,
    hx: &HxRequest,
    plain: &PlainKey,
    name: &str,
    channel: &Channel,
) -> Result<HttpResponse, AppError> {
    let reveal = Reveal {
        key: plain,
        name: name.to_owned(),
        done_href: keys_url(channel.id),
        in_modal: hx.is_htmx,
    };
    let mut res = if hx.is_htmx {
        let fresh = load_channel(state, user, channel.id).await?;
        let body = StackModal {
            title: "Your new API key",
            body: reveal.render()?,
            require_ack: true,
        }
        .render()?
            + &stats(state, user, &fresh, true).render()?
            + &load_results(state, user, &fresh, ListQuery::default(), true)
                .await?
                .render()?;
        let mut r = HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(body);
        r.headers_mut()
            .insert(htmx::HX_RETARGET, HeaderValue::from_static("#modal-stack"));
        r.headers_mut()
            .insert(htmx::HX_RESWAP, HeaderValue::from_static("innerHTML"));
        r.headers_mut()
            .insert(htmx::HX_TRIGGER, HeaderValue::from_static("keys-changed"));
        r
    } else {
        let page = FormPage {
            shell: Shell::for_user(user, "/channels"),
            title: "Your new API key",
            body: reveal.render()?,
        };
        render(StatusCode::OK, &page)?
    };
    // No cache may keep it.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(res)
}

pub async fn roll_form(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::CreateKey)?;
    let (key, channel) = load_key(&state, &user, path.into_inner()).await?;
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
    user.require(Action::CreateKey)?;
    let grace = Grace::parse(&input.grace)
        .ok_or_else(|| AppError::BadRequest("Choose how long the old key keeps working.".into()))?;
    let (key, channel) = load_key(&state, &user, path.into_inner()).await?;
    if key.rolled_to_key_id.is_some() {
        return Err(AppError::Conflict(
            "This key was already rolled; roll its successor instead.".into(),
        ));
    }
    let (plain, parts) = PlainKey::generate(&state.settings.key_prefix);
    let hash = plain.hash();
    let actor = user.actor();
    let ends = db::now() + grace.duration();
    let (kid, cname) = (key.key_id.clone(), channel.name.clone());
    let (_old, new) = state
        .change_keys(move |c| keys::roll(c, &actor, &kid, &cname, ends, &parts, &hash))
        .await?
        .map_err(|e| match e {
            WriteError::NotFound => AppError::NotFound,
            WriteError::Db(e) => e.into(),
            other => AppError::Conflict(other.to_string()),
        })?;
    reveal_response(&state, &user, &hx, &plain, &new.name, &channel).await
}

/// The risk overview: counts of keys that never expire, are idle, have no network
/// limit, or expire within a week, each linking to the matching keys.
pub async fn risks(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    user.require(Action::SearchAllKeys)?;
    let show_system = user.may(Action::UseSystemChannel);
    let counts = db::run(&state.pool, move |c| {
        let hidden = if show_system {
            None
        } else {
            channels::list(c)?
                .into_iter()
                .find(|ch| ch.is_system)
                .map(|ch| ch.id)
        };
        Risk::ALL
            .into_iter()
            .map(|r| Ok((r, keys::count_risk(c, keys::Within::AllExcept(hidden), r)?)))
            .collect::<Result<Vec<_>, crate::db::DbError>>()
    })
    .await?;
    let items = counts
        .into_iter()
        .map(|(risk, count)| RiskItem {
            label: risk.label(),
            hint: match risk {
                Risk::NeverExpires => "Give long-lived keys an expiry, or roll them regularly.",
                Risk::Idle => "Unused keys are pure risk: deactivate or delete them.",
                Risk::NoNetworkLimit => "Limit keys to the networks their callers use.",
                Risk::ExpiringSoon => "Roll these before they stop working.",
            },
            count,
            href: format!("/keys?risk={}", risk.as_str()),
        })
        .collect();
    render(
        StatusCode::OK,
        &RisksPage {
            shell: Shell::for_user(&user, "/risks"),
            items,
        },
    )
}
