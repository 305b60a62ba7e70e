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
