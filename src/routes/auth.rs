use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::app::{
    self,
    login::{CodeOutcome, LoginOutcome},
};
use crate::error::{AppError, render};
use crate::net::client_ip;
use crate::session::{self, CurrentUser, Step};
use crate::state::AppState;
use crate::views::Shell;
use crate::views::auth::{LoginCodePage, LoginPage};

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish()
}

pub async fn home(user: Option<CurrentUser>) -> HttpResponse {
    see_other(if user.is_some() {
        "/channels"
    } else {
        "/login"
    })
}

/// The login page's address: `?logged_out=1` after logging out, nothing otherwise.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    pub logged_out: Option<String>,
}

impl LoginQuery {
    /// The notice above the form: a fixed text, never anything from the address.
    pub fn notice(&self) -> Result<Option<&'static str>, String> {
        match self.logged_out.as_deref() {
            None => Ok(None),
            Some("1") => Ok(Some("You have been logged out.")),
            Some(_) => Err("The login page's logged_out parameter can only be 1.".to_owned()),
        }
    }
}

pub async fn login_page(
    session: Session,
    user: Option<CurrentUser>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = query.notice().map_err(AppError::BadRequest)?;
    if user.is_some() {
        return Ok(see_other("/channels"));
    }
    let page = LoginPage {
        shell: Shell::anonymous(session::csrf_token(&session)?),
        username: String::new(),
        error: None,
        notice: notice.map(str::to_owned),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

pub async fn login(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let LoginForm { username, password } = form.into_inner();
    let typed: String = username
        .trim()
        .to_ascii_lowercase()
        .chars()
        .take(64)
        .collect();
    let ip = client_ip(&req, &state.settings.trusted_proxies);
    match app::login::login(&state, typed.clone(), password, ip).await? {
        LoginOutcome::Success(user_id) => {
            session::start(&state, &session, &req, user_id).await?;
            Ok(see_other("/channels"))
        }
        LoginOutcome::SecondFactor(user_id) => {
            session::set_pending(&session, user_id, Step::Code)?;
            Ok(see_other("/login/code"))
        }
        LoginOutcome::Enrol(user_id) => {
            session::set_pending(&session, user_id, Step::Enrol)?;
            Ok(see_other("/account/two-factor"))
        }
        LoginOutcome::Failure => login_refused(
            &session,
            typed,
            StatusCode::UNAUTHORIZED,
            "Invalid username or password.".into(),
        ),
        LoginOutcome::Throttled(seconds) => login_refused(
            &session,
            typed,
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed attempts. Wait {seconds} seconds, then try again."),
        ),
        LoginOutcome::Busy => login_refused(
            &session,
            typed,
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many logins at once. Try again in a moment.".into(),
        ),
    }
}

fn login_refused(
    session: &Session,
    username: String,
    status: StatusCode,
    error: String,
) -> Result<HttpResponse, AppError> {
    let page = LoginPage {
        shell: Shell::anonymous(session::csrf_token(session)?),
        username,
        error: Some(error),
        notice: None,
    };
    render(status, &page)
}

fn code_page(
    session: &Session,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let page = LoginCodePage {
        shell: Shell::anonymous(session::csrf_token(session)?),
        error,
    };
    render(status, &page)
}

/// The second step: only for a browser whose password was right a moment ago.
pub async fn login_code_page(session: Session) -> Result<HttpResponse, AppError> {
    if session::pending(&session, Step::Code).is_none() {
        return Ok(see_other("/login"));
    }
    code_page(&session, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

pub async fn login_code(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let Some(user_id) = session::pending(&session, Step::Code) else {
        return Ok(see_other("/login"));
    };
    let code: String = form.into_inner().code.chars().take(64).collect();
    if code.trim().is_empty() {
        let msg = "Enter the six-digit code from your app, or a recovery code.";
        return code_page(&session, StatusCode::UNPROCESSABLE_ENTITY, Some(msg.into()));
    }
    let ip = client_ip(&req, &state.settings.trusted_proxies);
    match app::login::second_factor(&state, user_id, code, ip).await {
        Ok(CodeOutcome::Success) => {
            session::clear_pending(&session);
            session::start(&state, &session, &req, user_id).await?;
            Ok(see_other("/channels"))
        }
        Ok(CodeOutcome::Failure) => code_page(
            &session,
            StatusCode::UNAUTHORIZED,
            Some("That code is not right, or was already used. Try the next one.".into()),
        ),
        Ok(CodeOutcome::Throttled(seconds)) => code_page(
            &session,
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!(
                "Too many wrong codes. Wait {seconds} seconds, then try again."
            )),
        ),
        Err(app::Error::NotFound) => {
            session::clear_pending(&session);
            Ok(see_other("/login"))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    user: Option<CurrentUser>,
) -> Result<HttpResponse, AppError> {
    session::clear_pending(&session);
    session::end(&state, &session, user.as_ref()).await?;
    Ok(see_other("/login?logged_out=1"))
}
