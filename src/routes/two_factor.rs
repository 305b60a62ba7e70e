//! Two-factor enrolment for the person logged in, or for a person half logged in whom
//! the requirement sent here after the password (their session starts once enrolled).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::app;
use crate::error::{AppError, render};
use crate::net::client_ip;
use crate::routes::auth::see_other;
use crate::session::{self, CurrentUser, Step};
use crate::state::AppState;
use crate::views::Shell;
use crate::views::two_factor::{TwoFactorPage, TwoFactorState, grouped, qr_svg};

/// Who is enrolling: the logged-in user, or the half-logged-in one.
fn enrollee(session: &Session, user: &Option<CurrentUser>) -> Option<(i64, bool)> {
    match user {
        Some(u) => Some((u.user.id, false)),
        None => session::pending(session, Step::Enrol).map(|id| (id, true)),
    }
}

fn shell(session: &Session, user: &Option<CurrentUser>) -> Result<Shell, AppError> {
    Ok(match user {
        Some(u) => u.shell("/account/two-factor"),
        None => Shell::anonymous(session::csrf_token(session)?),
    })
}

/// Who is enrolling, as [`enrollee`] found them.
struct Enrollee<'a> {
    session: &'a Session,
    user: &'a Option<CurrentUser>,
    user_id: i64,
    /// Half logged in: the requirement sent them here.
    required: bool,
}

async fn enrol_page(
    state: &AppState,
    who: Enrollee<'_>,
    fresh: bool,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let Enrollee {
        session,
        user,
        user_id,
        required,
    } = who;
    let enrolment = app::two_factor::enrolment(state, user_id, fresh).await?;
    let view_state = match &enrolment.secret {
        Some(secret) => TwoFactorState::Enrol {
            qr_svg: qr_svg(secret, &enrolment.username),
            secret: grouped(&secret.base32()),
            error,
        },
        None => TwoFactorState::On {
            codes_left: enrolment.recovery_codes_left,
        },
    };
    let page = TwoFactorPage {
        shell: shell(session, user)?,
        username: enrolment.username,
        state: view_state,
        required,
    };
    render(status, &page)
}

pub async fn two_factor_page(
    state: web::Data<AppState>,
    session: Session,
    user: Option<CurrentUser>,
) -> Result<HttpResponse, AppError> {
    let Some((user_id, required)) = enrollee(&session, &user) else {
        return Ok(see_other("/login"));
    };
    let who = Enrollee {
        session: &session,
        user: &user,
        user_id,
        required,
    };
    enrol_page(&state, who, true, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
}

pub async fn confirm_two_factor(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    user: Option<CurrentUser>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    let Some((user_id, required)) = enrollee(&session, &user) else {
        return Ok(see_other("/login"));
    };
    let code: String = form.into_inner().code.chars().take(64).collect();
    let ip = client_ip(&req, &state.settings.trusted_proxies).map(|i| i.to_string());
    let Some(codes) = app::two_factor::confirm(&state, user_id, ip, code).await? else {
        let msg = "That code is not right. Enter the current six-digit code from your app.";
        let who = Enrollee {
            session: &session,
            user: &user,
            user_id,
            required,
        };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return enrol_page(&state, who, false, status, Some(msg.into())).await;
    };
    if required {
        session::clear_pending(&session);
        session::start(&state, &session, &req, user_id).await?;
    }
    let username = match &user {
        Some(u) => u.user.username.clone(),
        None => {
            app::two_factor::enrolment(&state, user_id, false)
                .await?
                .username
        }
    };
    let page = TwoFactorPage {
        shell: shell(&session, &user)?,
        username,
        state: TwoFactorState::Codes {
            codes,
            continue_to: "/channels",
        },
        required: false,
    };
    let mut res = render(StatusCode::OK, &page)?;
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}
