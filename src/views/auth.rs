use askama::Template;

use super::Shell;

#[derive(Template)]
#[template(path = "pages/login.html")]
pub struct LoginPage {
    pub shell: Shell,
    pub username: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

/// The second step of a login: a TOTP code or a recovery code.
#[derive(Template)]
#[template(path = "pages/login_code.html")]
pub struct LoginCodePage {
    pub shell: Shell,
    pub error: Option<String>,
}
