//! The generate / edit form of a key.

use askama::Template;

use crate::domain::key_settings::{KeyErrors, KeyInput};

/// The generate / edit form.
#[derive(Template)]
#[template(path = "partials/key_form.html")]
pub struct KeyForm {
    pub action: String,
    /// `None` when generating a new key.
    pub key_id: Option<String>,
    pub input: KeyInput,
    pub errors: KeyErrors,
    pub all_scopes: Vec<String>,
    pub csrf: String,
    pub cancel_href: String,
    pub in_modal: bool,
    /// A general message (limit reached, race lost) shown above the fields.
    pub alert: Option<String>,
}

impl KeyForm {
    pub fn has_scope(&self, s: &str) -> bool {
        self.input.scopes.iter().any(|x| x == s)
    }

    pub fn cidr_rows(&self) -> Vec<(usize, &str, Option<&str>)> {
        self.input
            .cidrs
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.as_str(), self.errors.cidr(i)))
            .collect()
    }

    /// The field that takes focus: the first with an error (so a person sees what to
    /// fix, even below the fold of the modal), else the name.
    pub fn focus(&self) -> &'static str {
        let e = &self.errors;
        [
            ("name", e.name.is_some()),
            ("description", e.description.is_some()),
            ("expires_at", e.expires_at.is_some()),
            ("postback_url", e.postback_url.is_some()),
            ("rate_limits", e.rate_limits.is_some()),
            ("credits", e.credits.is_some()),
            ("refill", e.refill.is_some()),
            ("refill_amount", e.refill_amount.is_some()),
            ("metadata", e.metadata.is_some()),
        ]
        .into_iter()
        .find(|(_, bad)| *bad)
        .map_or("name", |(f, _)| f)
    }

    /// The limits section starts open when it holds something or an error.
    pub fn limits_open(&self) -> bool {
        let i = &self.input;
        let e = &self.errors;
        !(i.rate_limits.is_empty()
            && i.credits.is_empty()
            && i.refill.is_empty()
            && i.metadata.is_empty())
            || e.rate_limits.is_some()
            || e.credits.is_some()
            || e.refill.is_some()
            || e.refill_amount.is_some()
            || e.metadata.is_some()
    }

    pub fn title(&self) -> &'static str {
        if self.key_id.is_some() {
            "Edit API key"
        } else {
            "Generate API key"
        }
    }
}
