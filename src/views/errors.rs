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
}

impl<'a> Toast<'a> {
    pub fn error(message: &'a str) -> Self {
        Toast {
            kind: "error",
            message,
        }
    }

    pub fn success(message: &'a str) -> Self {
        Toast {
            kind: "success",
            message,
        }
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
