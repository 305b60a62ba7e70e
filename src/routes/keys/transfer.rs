//! Export (the filter the table shows, as CSV or JSON) and import (keys of another
//! system, by digest) in the dashboard.

use actix_session::Session;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use askama::Template;
use serde::Deserialize;

use super::common::{keys_url, respond};
use crate::app::export::{Target, begin};
use crate::app::import::{Outcome, authorize, import};
use crate::app::{self, Error};
use crate::domain::list::{ListParams, ListQuery};
use crate::error::AppError;
use crate::htmx::{HxRequest, HxResponse, KEYS_CHANGED};
use crate::routes::auth::see_other;
use crate::session::{self as sess, CurrentUser};
use crate::state::AppState;
use crate::views::errors::{ModalCloseOob, Toast, ToastOob};
use crate::views::export::{Format, ImportForm};

/// `import_rows::MAX_ROWS`, as people read it.
const MAX_ROWS_TEXT: &str = "10,000";

/// An export's address: the list's own parameters and `format`.
#[derive(Debug, Deserialize, Default)]
pub struct ExportParams {
    pub format: Option<String>,
    #[serde(flatten)]
    pub list: ListParams,
}

impl ExportParams {
    /// The format (refused with a message when unknown) and the list's query.
    pub fn parse(&self) -> Result<(Format, ListQuery), String> {
        Ok((
            Format::parse(self.format.as_deref())?,
            ListQuery::parse(&self.list),
        ))
    }
}

/// `GET /channels/{id}/keys/export`: every key of the channel's filtered list.
pub async fn export_channel_keys(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<i64>,
    params: web::Query<ExportParams>,
) -> Result<HttpResponse, AppError> {
    let (format, query) = params.parse().map_err(AppError::BadRequest)?;
    let export = begin(
        &state,
        &user.actor(),
        Target::Channel(path.into_inner()),
        query,
        format.as_str(),
    )
    .await?;
    let label = export
        .channel_names
        .values()
        .next()
        .cloned()
        .unwrap_or_default();
    Ok(crate::routes::export::stream(
        state.clone(),
        export,
        format,
        &label,
    ))
}

/// `GET /keys/export`: every key of the All keys search.
pub async fn export_all_keys(
    state: web::Data<AppState>,
    user: CurrentUser,
    params: web::Query<ExportParams>,
) -> Result<HttpResponse, AppError> {
    let (format, query) = params.parse().map_err(AppError::BadRequest)?;
    let export = begin(
        &state,
        &user.actor(),
        Target::AllKeys,
        query,
        format.as_str(),
    )
    .await?;
    Ok(crate::routes::export::stream(
        state.clone(),
        export,
        format,
        "all",
    ))
}

fn form_response(
    user: &CurrentUser,
    hx: &HxRequest,
    status: StatusCode,
    mut form: ImportForm,
) -> Result<HttpResponse, AppError> {
    form.in_modal = hx.is_htmx;
    respond(user, hx, status, "Import keys", form.render()?)
}

fn blank(user: &CurrentUser, channel: &crate::db::channels::Channel) -> ImportForm {
    ImportForm {
        channel_id: channel.id,
        channel_name: channel.name.clone(),
        text: String::new(),
        errors: Vec::new(),
        alert: None,
        csrf: user.csrf.clone(),
        in_modal: false,
        max_rows: MAX_ROWS_TEXT,
    }
}

/// `GET /channels/{id}/keys/import`: the import form.
pub async fn import_form(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let actor = user.actor();
    authorize(&actor)?;
    let channel = app::keys::channel(&state, &actor, path.into_inner()).await?;
    form_response(&user, &hx, StatusCode::OK, blank(&user, &channel))
}

#[derive(Deserialize)]
struct ImportInput {
    #[serde(default)]
    text: String,
}

/// `POST /channels/{id}/keys/import`: the pasted (or file-picked) CSV or JSON. Read as
/// raw bytes, so the dashboard's raw-body limit (256 KiB) applies, not the 64 KiB of
/// the other forms.
pub async fn import_keys(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    path: web::Path<i64>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let actor = user.actor();
    authorize(&actor)?;
    let channel = app::keys::channel(&state, &actor, path.into_inner()).await?;
    let input: ImportInput = serde_urlencoded::from_bytes(&body)
        .map_err(|_| AppError::BadRequest("The form could not be read.".into()))?;
    let mut form = blank(&user, &channel);
    form.text = input.text.clone();
    match import(&state, &actor, channel.id, input.text).await {
        Ok(Outcome::Imported { channel, keys }) => {
            let n = keys.len();
            let message = format!(
                "Imported {n} {} into “{}”.",
                if n == 1 { "key" } else { "keys" },
                channel.name
            );
            if !hx.is_htmx {
                sess::set_flash(&session, &message)?;
                return Ok(see_other(&keys_url(channel.id)));
            }
            let done = ToastOob {
                toast: Toast::success(&message),
            }
            .render()?
                + &ModalCloseOob { id: "modal-stack" }.render()?;
            Ok(HxResponse::ok()
                .html(&done)
                .reswap("none")
                .trigger(KEYS_CHANGED)
                .finish())
        }
        Ok(Outcome::Invalid(errors)) => {
            form.errors = errors;
            form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, form)
        }
        Err(Error::Conflict(r)) => {
            form.alert = Some(r.message);
            form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, form)
        }
        Err(e) => Err(e.into()),
    }
}
