//! Helpers every keys page shares: URLs, what the person may do, and how a form or
//! message is answered (stacked modal, fragment, or page of its own).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use askama::Template;

use crate::domain::role::Action;
use crate::error::{AppError, render};
use crate::htmx::{HxRequest, HxResponse, KEYS_CHANGED};
use crate::session::CurrentUser;
use crate::views::keys::{FormPage, KeyPermissions, StackModal};

pub fn keys_url(channel_id: i64) -> String {
    format!("/channels/{channel_id}/keys")
}

pub fn permissions(user: &CurrentUser) -> KeyPermissions {
    KeyPermissions {
        create: user.may(Action::CreateKey),
        edit: user.may(Action::EditKey),
        activate: user.may(Action::ActivateKey),
        revoke: user.may(Action::RevokeKey),
    }
}

/// A form or message as a stacked modal (htmx opening it), the bare fragment (htmx
/// re-rendering it in place), or a page of its own (no JavaScript).
pub fn respond(
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
        return Ok(HxResponse::new(status).html(&body).finish());
    }
    render(
        status,
        &FormPage {
            shell: user.shell("/channels"),
            title,
            body,
        },
    )
}

/// The one response that carries a secret (a new key, a signing secret): a stacked
/// modal that stays until the person ticks "I have saved it" (htmx; the keys list
/// behind it refreshes itself on `keys-changed`), or a page of its own; never cached.
/// `extra` is out-of-band HTML sent along (a toast).
pub fn one_time_reveal(
    user: &CurrentUser,
    hx: &HxRequest,
    title: &str,
    body: String,
    extra: &str,
) -> Result<HttpResponse, AppError> {
    let mut res = if hx.is_htmx {
        let modal = StackModal {
            title,
            body,
            require_ack: true,
        };
        HxResponse::ok()
            .html(&(modal.render()? + extra))
            .retarget("#modal-stack")
            .reswap("innerHTML")
            .trigger(KEYS_CHANGED)
            .finish()
    } else {
        let page = FormPage {
            shell: user.shell("/channels"),
            title,
            body,
        };
        render(StatusCode::OK, &page)?
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(res)
}
