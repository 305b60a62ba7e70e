//! The two-factor enrolment page: QR code (an inline SVG drawn here, so no script, CDN
//! or image request is needed under the strict CSP), the secret to type by hand, the
//! confirmation form, and the recovery codes shown once.

use askama::Template;
use qrcode::QrCode;
use qrcode::render::svg;

use super::Shell;
use crate::domain::totp::TotpSecret;

pub enum TwoFactorState {
    /// Not enrolled: scan or type the secret, confirm with a code.
    Enrol {
        qr_svg: String,
        secret: String,
        error: Option<String>,
    },
    /// Just confirmed: the recovery codes, shown this once.
    Codes {
        codes: Vec<String>,
        continue_to: &'static str,
    },
    /// Enrolled earlier: nothing secret is shown again.
    On { codes_left: i64 },
}

#[derive(Template)]
#[template(path = "pages/two_factor.html")]
pub struct TwoFactorPage {
    pub shell: Shell,
    pub username: String,
    pub state: TwoFactorState,
    /// Half logged in (the requirement sent this person here after the password).
    pub required: bool,
}

/// An inline SVG QR code of the secret's `otpauth://` URI.
pub fn qr_svg(secret: &TotpSecret, username: &str) -> String {
    let uri = secret.otpauth_uri("Latchkey", username);
    let Ok(code) = QrCode::new(uri.as_bytes()) else {
        return String::new();
    };
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Drop the XML declaration (this is HTML) and name the picture for screen readers.
    let start = image.find("<svg").unwrap_or(0);
    image[start..].replacen(
        "<svg",
        "<svg role=\"img\" aria-label=\"QR code for your authenticator app\" id=\"totp-qr\"",
        1,
    )
}

/// The secret in groups of four, easier to type.
pub fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
