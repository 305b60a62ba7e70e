//! askama structs, one per template file, named like the file. Views never touch the
//! database: handlers hand them loaded rows, views turn rows into display strings.

pub mod audit;
pub mod auth;
pub mod channels;
pub mod errors;
pub mod export;
pub mod key_detail;
pub mod key_form;
pub mod keys;
pub mod two_factor;
pub mod users;

use crate::domain::role::{Action, Role};

/// What the layout needs on every page: who is logged in, the navigation for their
/// role, and the CSRF token that htmx sends as a header.
#[derive(Debug, Clone)]
pub struct Shell {
    pub csrf: String,
    pub user: Option<ShellUser>,
    pub nav: Vec<NavItem>,
    /// A one-time success message carried across a redirect (no-JavaScript forms).
    pub flash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ShellUser {
    pub username: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

impl Shell {
    pub fn anonymous(csrf: String) -> Self {
        Shell {
            csrf,
            user: None,
            nav: Vec::new(),
            flash: None,
        }
    }

    /// `active` is the href of the section this page belongs to.
    pub fn for_user(username: &str, role: Role, csrf: &str, active: &str) -> Self {
        let items: [(&'static str, &'static str, Action); 5] = [
            ("/channels", "Channels", Action::ViewChannels),
            ("/keys", "All keys", Action::SearchAllKeys),
            ("/risks", "Risks", Action::SearchAllKeys),
            ("/audit", "Audit log", Action::ViewAudit),
            ("/users", "Users", Action::ManageUsers),
        ];
        let nav = items
            .into_iter()
            .filter(|(_, _, action)| role.may(*action))
            .map(|(href, label, _)| NavItem {
                href,
                label,
                current: href == active,
            })
            .collect();
        Shell {
            csrf: csrf.to_owned(),
            user: Some(ShellUser {
                username: username.to_owned(),
                role,
            }),
            nav,
            flash: None,
        }
    }

    pub fn with_flash(mut self, flash: Option<String>) -> Self {
        self.flash = flash;
        self
    }
}

pub use crate::domain::clock::{format_time, input_time, iso_time};
