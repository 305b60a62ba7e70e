//! The Users page (admins): create, change role, disable/enable, reset password.
//! Plain forms that post and redirect; every change is audited.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::app;
use crate::domain::names::Username;
use crate::domain::password;
use crate::domain::role::{Action, Role};
use crate::domain::totp::Requirement;
use crate::error::{AppError, render};
use crate::routes::auth::see_other;
use crate::session::{self as sess, CurrentUser};
use crate::state::AppState;
use crate::views::users::{NewUserValues, UserRow, UsersPage};

async fn page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    status: StatusCode,
    form: NewUserValues,
    alert: Option<String>,
) -> Result<HttpResponse, AppError> {
    let list = app::users::list(state, &user.actor()).await?;
    let requirement = app::two_factor::requirement(state).await?;
    let me = user.user.id;
    let view = UsersPage {
        shell: user.shell("/users").with_flash(sess::take_flash(session)),
        rows: list.iter().map(|u| UserRow::new(u, me)).collect(),
        form,
        roles: Role::ALL.to_vec(),
        requirement: requirement.as_str(),
        alert,
    };
    render(status, &view)
}

pub async fn list_users(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers)?;
    let form = NewUserValues {
        role: Role::Operator.as_str().into(),
        ..NewUserValues::default()
    };
    page(&state, &user, &session, StatusCode::OK, form, None).await
}

#[derive(Deserialize)]
pub struct NewUserInput {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

pub async fn create_user(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    input: web::Form<NewUserInput>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers)?;
    let name = Username::parse(&input.username);
    let role = Role::parse(&input.role).ok_or_else(|| "Choose a role.".to_owned());
    let pw = password::validate(&input.password);
    let (name, role) = match (name, role, pw) {
        (Ok(n), Ok(r), Ok(())) => (n, r),
        (n, r, p) => {
            let form = NewUserValues {
                username: input.username.clone(),
                role: input.role.clone(),
                username_error: n.err(),
                role_error: r.err(),
                password_error: p.err(),
            };
            return page(
                &state,
                &user,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                None,
            )
            .await;
        }
    };
    let created =
        app::users::create(&state, &user.actor(), name, role, input.password.clone()).await;
    match created {
        Ok(u) => {
            sess::set_flash(&session, &format!("User {} created.", u.username))?;
            Ok(see_other("/users"))
        }
        Err(app::Error::NameTaken) => {
            let form = NewUserValues {
                username: input.username.clone(),
                role: input.role.clone(),
                username_error: Some("This username is taken.".into()),
                ..NewUserValues::default()
            };
            page(
                &state,
                &user,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RoleInput {
    #[serde(default)]
    role: String,
}

async fn apply_change(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    id: i64,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<HttpResponse, AppError> {
    match app::users::change(state, &user.actor(), id, role, disabled).await {
        Ok(changed) => {
            let details = match (role, disabled) {
                (Some(r), _) => format!("{} is now {r}", changed.username),
                (_, Some(true)) => format!("disabled {}", changed.username),
                _ => format!("enabled {}", changed.username),
            };
            sess::set_flash(session, &format!("Saved: {details}."))?;
            Ok(see_other("/users"))
        }
        Err(app::Error::Conflict(r)) => {
            page(
                state,
                user,
                session,
                StatusCode::CONFLICT,
                NewUserValues::default(),
                Some(r.message),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn change_role(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<i64>,
    input: web::Form<RoleInput>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers)?;
    let role =
        Role::parse(&input.role).ok_or_else(|| AppError::BadRequest("Choose a role.".into()))?;
    apply_change(&state, &user, &session, path.into_inner(), Some(role), None).await
}

pub async fn set_disabled(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers)?;
    let (id, action) = path.into_inner();
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return Err(AppError::NotFound),
    };
    apply_change(&state, &user, &session, id, None, Some(disabled)).await
}

#[derive(Deserialize)]
pub struct PasswordInput {
    #[serde(default)]
    password: String,
}

pub async fn reset_password(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<i64>,
    input: web::Form<PasswordInput>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers)?;
    if let Err(e) = password::validate(&input.password) {
        return page(
            &state,
            &user,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            NewUserValues::default(),
            Some(format!("Password not changed: {e}")),
        )
        .await;
    }
    let changed = app::users::reset_password(
        &state,
        &user.actor(),
        path.into_inner(),
        input.password.clone(),
    )
    .await?;
    let name = changed.username;
    sess::set_flash(
        &session,
        &format!("Password of {name} changed; their sessions have ended."),
    )?;
    Ok(see_other("/users"))
}

/// An admin turns a user's two-factor authentication off (a lost phone); audited.
pub async fn reset_two_factor(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers)?;
    app::two_factor::reset(&state, &user.actor(), path.into_inner()).await?;
    sess::set_flash(
        &session,
        "Two-factor authentication reset; the user's sessions have ended.",
    )?;
    Ok(see_other("/users"))
}

#[derive(Deserialize)]
pub struct RequirementInput {
    #[serde(default)]
    rule: String,
}

/// Who must use two-factor authentication: nobody, every admin, or everyone.
pub async fn set_two_factor_requirement(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    input: web::Form<RequirementInput>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers)?;
    let Some(rule) = Requirement::parse(&input.rule) else {
        return page(
            &state,
            &user,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            NewUserValues::default(),
            Some("Choose who must use two-factor authentication.".into()),
        )
        .await;
    };
    app::two_factor::set_requirement(&state, &user.actor(), rule).await?;
    sess::set_flash(&session, "Saved the two-factor requirement.")?;
    Ok(see_other("/users"))
}
