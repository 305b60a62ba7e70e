//! Helpers every keys page shares: URLs, what the person may do, and how a form or
//! message is answered (stacked modal, fragment, or page of its own).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use crate::domain::role::Action;
use crate::error::{AppError, render};
use crate::htmx::{HxRequest, HxResponse};
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
