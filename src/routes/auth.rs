use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::app::{self, users::LoginOutcome};
use crate::error::{AppError, render};
use crate::net::client_ip;
use crate::session::{self, CurrentUser};
use crate::state::AppState;
use crate::views::Shell;
use crate::views::auth::LoginPage;

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

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    logged_out: Option<String>,
}

pub async fn login_page(
    session: Session,
    user: Option<CurrentUser>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    if user.is_some() {
        return Ok(see_other("/channels"));
    }
    let page = LoginPage {
        shell: Shell::anonymous(session::csrf_token(&session)?),
        username: String::new(),
        error: None,
        notice: query
            .logged_out
            .as_ref()
            .map(|_| "You have been logged out.".to_owned()),
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
    let ip = client_ip(&req, &state.settings.trusted_proxies).map(|ip| ip.to_string());
    match app::users::login(&state, typed.clone(), password, ip).await? {
        LoginOutcome::Success(user_id) => {
            session::start(&state, &session, &req, user_id).await?;
            Ok(see_other("/channels"))
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

pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    user: Option<CurrentUser>,
) -> Result<HttpResponse, AppError> {
    session::end(&state, &session, user.as_ref()).await?;
    Ok(see_other("/login?logged_out=1"))
}
