use askama::Template;

use super::{Shell, format_time};
use crate::db::users::User;
use crate::domain::role::Role;

pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created: String,
    pub last_login: Option<String>,
    pub is_me: bool,
    pub two_factor: bool,
}

impl UserRow {
    pub fn new(u: &User, me: i64) -> Self {
        UserRow {
            id: u.id,
            username: u.username.clone(),
            role: u.role(),
            disabled: u.disabled,
            created: format_time(u.created_at),
            last_login: u.last_login_at.map(format_time),
            is_me: u.id == me,
            two_factor: u.totp_enabled,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct NewUserValues {
    pub username: String,
    pub role: String,
    pub username_error: Option<String>,
    pub password_error: Option<String>,
    pub role_error: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/users.html")]
pub struct UsersPage {
    pub shell: Shell,
    pub rows: Vec<UserRow>,
    pub form: NewUserValues,
    pub roles: Vec<Role>,
    /// Who must use two-factor authentication: optional, admins or everyone.
    pub requirement: &'static str,
    pub alert: Option<String>,
}
