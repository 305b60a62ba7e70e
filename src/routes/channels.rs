use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::app;
use crate::domain::names::{ChannelName, parse_key_limit};
use crate::domain::role::Action;
use crate::error::{AppError, render};
use crate::htmx::{HxRequest, HxResponse};
use crate::routes::auth::see_other;
use crate::session::CurrentUser;
use crate::state::AppState;
use crate::views::channels::{
    ChannelForm, ChannelFormPage, ChannelFormValues, ChannelModal, ChannelsPage, ChannelsTable,
    ExpiryBanner,
};
use crate::views::errors::{ModalCloseOob, Toast, ToastOob};

async fn load_table(state: &AppState, user: &CurrentUser) -> Result<ChannelsTable, AppError> {
    let list = app::channels::list(state, &user.actor()).await?;
    Ok(ChannelsTable::new(
        list,
        user.may(Action::ManageChannels),
        state.settings.max_keys_per_channel,
    ))
}

pub async fn list_channels(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
) -> Result<HttpResponse, AppError> {
    let table = load_table(&state, &user).await?;
    if hx.targets("channels-table") {
        return render(StatusCode::OK, &table);
    }
    let soon = app::keys::expiring_soon(&state, &user.actor(), 7).await?;
    let expiring = (!soon.is_empty()).then(|| ExpiryBanner {
        total: soon.iter().map(|(_, n)| n).sum(),
        all_href: user
            .may(Action::SearchAllKeys)
            .then(|| "/keys?risk=expiring&sort=expires".to_owned()),
        channels: soon
            .into_iter()
            .map(|(c, n)| {
                let href = format!("/channels/{}/keys?risk=expiring&sort=expires", c.id);
                (c.name, href, n)
            })
            .collect(),
    });
    render(
        StatusCode::OK,
        &ChannelsPage {
            shell: user.shell("/channels"),
            table,
            expiring,
        },
    )
}

/// The form, as a modal for htmx or as a page without JavaScript.
fn form_response(
    user: &CurrentUser,
    hx: &HxRequest,
    status: StatusCode,
    mut form: ChannelForm,
) -> Result<HttpResponse, AppError> {
    if hx.is_htmx {
        if hx.targets("modal") {
            form.in_modal = true;
            return render(status, &ChannelModal { form });
        }
        // A re-rendered form replacing itself inside the open dialog.
        form.in_modal = true;
        return render(status, &form);
    }
    render(
        status,
        &ChannelFormPage {
            shell: user.shell("/channels"),
            form,
        },
    )
}

pub async fn new_channel(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageChannels)?;
    let form = ChannelForm {
        channel_id: None,
        is_system: false,
        values: ChannelFormValues::default(),
        default_limit: state.settings.max_keys_per_channel,
        csrf: user.csrf.clone(),
        in_modal: false,
    };
    form_response(&user, &hx, StatusCode::OK, form)
}

pub async fn edit_channel(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let channel = app::channels::find(&state, &user.actor(), path.into_inner()).await?;
    let form = ChannelForm {
        channel_id: Some(channel.id),
        is_system: channel.is_system,
        values: ChannelFormValues {
            name: channel.name,
            key_limit: channel.key_limit.map(|n| n.to_string()).unwrap_or_default(),
            ..ChannelFormValues::default()
        },
        default_limit: state.settings.max_keys_per_channel,
        csrf: user.csrf.clone(),
        in_modal: false,
    };
    form_response(&user, &hx, StatusCode::OK, form)
}

#[derive(Deserialize)]
pub struct ChannelFormInput {
    #[serde(default)]
    name: String,
    #[serde(default)]
    key_limit: String,
}

/// Parses the form; on failure returns the values with messages for re-rendering.
fn parse_form(input: &ChannelFormInput) -> Result<(ChannelName, Option<i64>), ChannelFormValues> {
    let name = ChannelName::parse(&input.name);
    let limit = parse_key_limit(&input.key_limit);
    match (name, limit) {
        (Ok(n), Ok(l)) => Ok((n, l)),
        (n, l) => Err(ChannelFormValues {
            name: input.name.clone(),
            key_limit: input.key_limit.clone(),
            name_error: n.err(),
            key_limit_error: l.err(),
        }),
    }
}

const NAME_TAKEN: &str = "A channel with this name already exists.";

pub async fn create_channel(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    input: web::Form<ChannelFormInput>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageChannels)?;
    let form = |values| ChannelForm {
        channel_id: None,
        is_system: false,
        values,
        default_limit: state.settings.max_keys_per_channel,
        csrf: user.csrf.clone(),
        in_modal: false,
    };
    let (name, limit) = match parse_form(&input) {
        Ok(parsed) => parsed,
        Err(values) => {
            return form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, form(values));
        }
    };
    match app::channels::create(&state, &user.actor(), name, limit).await {
        Ok(channel) => {
            saved(
                &state,
                &user,
                &hx,
                &format!("Channel \"{}\" created.", channel.name),
            )
            .await
        }
        Err(app::Error::NameTaken) => {
            let values = name_taken(&input);
            form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, form(values))
        }
        Err(e) => Err(e.into()),
    }
}

fn name_taken(input: &ChannelFormInput) -> ChannelFormValues {
    ChannelFormValues {
        name: input.name.clone(),
        key_limit: input.key_limit.clone(),
        name_error: Some(NAME_TAKEN.into()),
        key_limit_error: None,
    }
}

pub async fn update_channel(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    path: web::Path<i64>,
    input: web::Form<ChannelFormInput>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let existing = app::channels::find(&state, &user.actor(), id).await?;
    let form = |values| ChannelForm {
        channel_id: Some(id),
        is_system: existing.is_system,
        values,
        default_limit: state.settings.max_keys_per_channel,
        csrf: user.csrf.clone(),
        in_modal: false,
    };
    let (name, limit) = match parse_form(&input) {
        Ok(parsed) => parsed,
        Err(values) => {
            return form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, form(values));
        }
    };
    match app::channels::update(&state, &user.actor(), id, name, limit).await {
        Ok(channel) => {
            saved(
                &state,
                &user,
                &hx,
                &format!("Channel \"{}\" saved.", channel.name),
            )
            .await
        }
        Err(app::Error::NameTaken) => {
            let values = name_taken(&input);
            form_response(&user, &hx, StatusCode::UNPROCESSABLE_ENTITY, form(values))
        }
        Err(e) => Err(e.into()),
    }
}

/// After a successful save: htmx gets the fresh table (retargeted), a toast and the
/// dialog closed; a plain form post is redirected back to the list.
async fn saved(
    state: &AppState,
    user: &CurrentUser,
    hx: &HxRequest,
    message: &str,
) -> Result<HttpResponse, AppError> {
    if !hx.is_htmx {
        return Ok(see_other("/channels"));
    }
    let table = load_table(state, user).await?;
    let body = table.render()?
        + &ToastOob {
            toast: Toast::success(message),
        }
        .render()?
        + &ModalCloseOob { id: "modal" }.render()?;
    Ok(HxResponse::ok()
        .html(&body)
        .retarget("#channels-table")
        .reswap("outerHTML")
        .finish())
}
