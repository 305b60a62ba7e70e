use askama::Template;

#[derive(Template)]
#[template(path = "pages/error.html")]
pub struct ErrorPage<'a> {
    pub status: u16,
    pub title: &'a str,
    pub message: &'a str,
}

/// One toast. `kind` is `error` or `success` (a CSS modifier and the ARIA role).
#[derive(Template)]
#[template(path = "partials/toast.html")]
pub struct Toast<'a> {
    pub kind: &'a str,
    pub message: &'a str,
    /// The key it is about: a newer toast about the same key replaces it.
    pub about: Option<&'a str>,
}

impl<'a> Toast<'a> {
    pub fn error(message: &'a str) -> Self {
        Toast {
            kind: "error",
            message,
            about: None,
        }
    }

    pub fn success(message: &'a str) -> Self {
        Toast {
            kind: "success",
            message,
            about: None,
        }
    }

    /// Marks the toast as being about one key (`data-key`).
    pub fn about(mut self, key_id: &'a str) -> Self {
        self.about = Some(key_id);
        self
    }
}

/// A toast delivered out of band next to another fragment.
#[derive(Template)]
#[template(path = "partials/toast_oob.html")]
pub struct ToastOob<'a> {
    pub toast: Toast<'a>,
}

/// Empties a modal container (`modal` or `modal-stack`) out of band: how a
/// successful form closes its dialog.
#[derive(Template)]
#[template(path = "partials/modal_close_oob.html")]
pub struct ModalCloseOob {
    pub id: &'static str,
}
