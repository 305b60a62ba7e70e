use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::db::audit::{self, Actor, Event};
use crate::db::{self, login_attempts, users};
use crate::domain::{password, throttle};
use crate::error::{AppError, render};
use crate::net::client_ip;
use crate::session::{self, CurrentUser};
use crate::startup::AppState;
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

enum Outcome {
    Success(i64),
    Failure,
    Throttled(i64),
}

pub async fn login(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let LoginForm { username, password } = form.into_inner();
    let username = username.trim().to_ascii_lowercase();
    let typed: String = username.chars().take(64).collect();
    let actor = Actor {
        name: typed.clone(),
        user_id: None,
        source_ip: client_ip(&req, &state.settings.trusted_proxies).map(|ip| ip.to_string()),
    };
    let lookup = typed.clone();
    // Argon2 runs on the blocking pool with the lookup; an unknown user is checked
    // against a dummy hash so both failures take the same time.
    let ip_text = actor.source_ip.clone().unwrap_or_default();
    let outcome = db::run(&state.pool, move |c| {
        // Throttle before any password work: per account (also for names that do not
        // exist, so the answer never reveals which do) and per source address.
        let now = db::now();
        let since = now - throttle::WINDOW;
        let by_user = login_attempts::failures_for_user(c, &lookup, since)?;
        let by_ip = login_attempts::failures_for_ip(c, &ip_text, since)?;
        let wait =
            throttle::wait(by_user.count, throttle::FREE_PER_ACCOUNT, by_user.last, now).max(
                throttle::wait(by_ip.count, throttle::FREE_PER_ADDRESS, by_ip.last, now),
            );
        if let Some(seconds) = wait {
            audit::record(
                c,
                &actor,
                Event {
                    action: "login.throttled",
                    details: format!("refused for {seconds} s after repeated failures"),
                    ..Event::default()
                },
            )?;
            return Ok(Outcome::Throttled(seconds));
        }
        let user = users::find_by_username(c, &lookup)?;
        let stored = user
            .as_ref()
            .map_or(password::dummy_hash(), |u| u.password_hash.as_str());
        let matches = password::verify(&password, stored);
        let outcome = match user {
            Some(u) if matches && !u.disabled => Outcome::Success(u.id),
            _ => Outcome::Failure,
        };
        login_attempts::record(c, &lookup, &ip_text, matches!(outcome, Outcome::Success(_)))?;
        let (action, details, actor) = match &outcome {
            Outcome::Success(id) => (
                "login",
                "logged in".to_owned(),
                Actor {
                    user_id: Some(*id),
                    ..actor
                },
            ),
            _ => ("login.failed", "failed login".to_owned(), actor),
        };
        audit::record(
            c,
            &actor,
            Event {
                action,
                details,
                ..Event::default()
            },
        )?;
        Ok(outcome)
    })
    .await?;
    match outcome {
        Outcome::Success(user_id) => {
            session::start(&state, &session, &req, user_id).await?;
            Ok(see_other("/channels"))
        }
        Outcome::Failure => login_refused(
            &session,
            typed,
            StatusCode::UNAUTHORIZED,
            "Invalid username or password.".into(),
        ),
        Outcome::Throttled(seconds) => login_refused(
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
    if let Some(user) = &user {
        let actor = user.actor();
        db::run(&state.pool, move |c| {
            audit::record(
                c,
                &actor,
                Event {
                    action: "logout",
                    details: "logged out".into(),
                    ..Event::default()
                },
            )
        })
        .await?;
    }
    session::end(&state, &session).await?;
    Ok(see_other("/login?logged_out=1"))
}
