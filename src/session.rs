//! Dashboard sessions, the login guard, the role guard and CSRF protection.
//!
//! The session cookie (actix-session, encrypted and signed, `HttpOnly`,
//! `SameSite=Strict`) holds two random tokens: `sid`, whose blake3 hash names a row of
//! the `sessions` table, and `csrf`, which every state-changing dashboard request must
//! echo (hidden form field `csrf_token`, or header `X-CSRF-Token` for htmx).
//! [`CurrentUser`] is the one guard: it loads the user behind `sid` on every request,
//! and `require` asks the role table in `domain::role`.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use actix_web::{FromRequest, HttpRequest};

use crate::app::{Actor, Person};
use crate::db::users::User;
use crate::db::{self, sessions};
use crate::domain::role::{Action, Role};
use crate::domain::secret::{constant_time_eq, hash_hex, random_token};
use crate::error::AppError;
use crate::net::client_ip;
use crate::state::AppState;
use crate::views::Shell;

pub const SESSION_ID: &str = "sid";
pub const CSRF_TOKEN: &str = "csrf";
pub const FLASH: &str = "flash";
pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The logged-in dashboard user of this request. `Debug` leaves out the CSRF token.
#[derive(Clone)]
pub struct CurrentUser {
    pub user: User,
    pub csrf: String,
    pub source_ip: Option<String>,
}

impl std::fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentUser")
            .field("user", &self.user)
            .field("csrf", &"[redacted]")
            .field("source_ip", &self.source_ip)
            .finish()
    }
}

impl CurrentUser {
    pub fn role(&self) -> Role {
        self.user.role()
    }

    pub fn may(&self, action: Action) -> bool {
        self.role().may(action)
    }

    /// The role guard: every handler that changes or shows something calls this.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
        if self.may(action) {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }

    /// This person as the actor of a use case.
    pub fn actor(&self) -> Actor {
        Actor::Person(Person {
            id: self.user.id,
            username: self.user.username.clone(),
            role: self.role(),
            ip: self.source_ip.clone(),
        })
    }

    /// The page layout for this person; `active` is the section's href.
    pub fn shell(&self, active: &str) -> Shell {
        Shell::for_user(&self.user.username, self.role(), &self.csrf, active)
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let state = req.app_data::<Data<AppState>>().cloned();
        let source_ip = state
            .as_ref()
            .and_then(|s| client_ip(req, &s.settings.trusted_proxies))
            .map(|ip| ip.to_string());
        Box::pin(async move {
            let state =
                state.ok_or_else(|| AppError::Internal("application state missing".into()))?;
            let sid: String = session.get(SESSION_ID)?.ok_or(AppError::Unauthenticated)?;
            let csrf: String = session.get(CSRF_TOKEN)?.ok_or(AppError::Unauthenticated)?;
            let token_hash = hash_hex(&sid);
            let user = db::run(&state.pool, move |c| sessions::find_user(c, &token_hash))
                .await?
                .ok_or(AppError::Unauthenticated)?;
            Ok(CurrentUser {
                user,
                csrf,
                source_ip,
            })
        })
    }
}

/// The CSRF token of this browser session, created on first use (the login page needs
/// one before anybody is logged in).
pub fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(t) = session.get::<String>(CSRF_TOKEN)? {
        return Ok(t);
    }
    let t = random_token(32);
    session.insert(CSRF_TOKEN, &t)?;
    Ok(t)
}

/// Starts a logged-in session: a fresh cookie (no fixation), a new CSRF token, and the
/// session row. Returns nothing secret; the token only lives in the cookie.
pub async fn start(
    state: &AppState,
    session: &Session,
    req: &HttpRequest,
    user_id: i64,
) -> Result<(), AppError> {
    let sid = random_token(40);
    let token_hash = hash_hex(&sid);
    let expires_at = db::now() + time::Duration::hours(state.settings.session_hours.max(1));
    let source_ip = client_ip(req, &state.settings.trusted_proxies).map(|ip| ip.to_string());
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(300).collect::<String>());
    db::run(&state.pool, move |c| {
        sessions::insert(
            c,
            &sessions::NewSession {
                token_hash: &token_hash,
                user_id,
                expires_at,
                source_ip: source_ip.as_deref(),
                user_agent: user_agent.as_deref(),
            },
        )
    })
    .await?;
    session.renew();
    session.insert(SESSION_ID, &sid)?;
    session.insert(CSRF_TOKEN, random_token(32))?;
    Ok(())
}

/// Ends the session: the row is deleted with the logout's audit line (the cookie is
/// useless from now on, even if somebody kept a copy) and the cookie is removed.
pub async fn end(
    state: &AppState,
    session: &Session,
    user: Option<&CurrentUser>,
) -> Result<(), AppError> {
    if let Some(sid) = session.get::<String>(SESSION_ID)? {
        let actor = user.map(CurrentUser::actor);
        crate::app::users::logout(state, actor.as_ref(), hash_hex(&sid)).await?;
    }
    session.purge();
    Ok(())
}

const CSRF_FAILED: &str =
    "This form has expired or was sent from another site. Reload the page and try again.";

/// Middleware: every state-changing dashboard request must carry this session's CSRF
/// token. The JSON API (`/api/`) is exempt: it uses bearer keys, never cookies.
pub async fn verify_csrf(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || req.path().starts_with("/api/") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let expected = req.get_session().get::<String>(CSRF_TOKEN).ok().flatten();
    let header = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let mut field = None;
    if is_form {
        // Read the small form body, check it is text, take the token, and put the body
        // back for the handler's own extractor.
        let body = match req.extract::<Bytes>().await {
            Ok(body) => body,
            Err(e) => {
                let too_large = e.as_response_error().status_code()
                    == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE;
                return Ok(req.error_response(if too_large {
                    AppError::TooLarge
                } else {
                    AppError::BadRequest("The form could not be read.".into())
                }));
            }
        };
        if !form_is_utf8(&body) {
            return Ok(req.error_response(AppError::BadRequest(
                "The form contains text that is not valid UTF-8.".into(),
            )));
        }
        field = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .ok()
            .and_then(|pairs| {
                pairs
                    .into_iter()
                    .find(|(k, _)| k == CSRF_FIELD)
                    .map(|(_, v)| v)
            });
        req.set_payload(Payload::from(body));
    }
    let presented = header.or(field);
    let ok = !cross_site
        && matches!((expected, presented), (Some(e), Some(p)) if constant_time_eq(&e, &p));
    if !ok {
        tracing::warn!(
            path = req.path(),
            "request refused: CSRF token missing or wrong"
        );
        return Ok(req.error_response(AppError::Forbidden(CSRF_FAILED.into())));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Half logged in: the password was right, the second step is still to come. The
/// user's id sits in the (encrypted, signed) cookie only, under its own name: no
/// session row exists yet, so [`CurrentUser`] refuses every page until the step is done.
pub const PENDING: &str = "pending";
/// How long the second step may take, in seconds.
const PENDING_SECONDS: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Step {
    /// Enter a TOTP or recovery code.
    Code,
    /// Two-factor is required of this user: enrol first.
    Enrol,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    user_id: i64,
    step: Step,
    since: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn set_pending(session: &Session, user_id: i64, step: Step) -> Result<(), AppError> {
    session.renew();
    session.remove(SESSION_ID);
    session.insert(
        PENDING,
        Pending {
            user_id,
            step,
            since: unix_now(),
        },
    )?;
    Ok(())
}

/// The half-logged-in user of this browser at `step`, if it has not expired.
pub fn pending(session: &Session, step: Step) -> Option<i64> {
    let p = session.get::<Pending>(PENDING).ok().flatten()?;
    (p.step == step && unix_now().saturating_sub(p.since) <= PENDING_SECONDS).then_some(p.user_id)
}

pub fn clear_pending(session: &Session) {
    session.remove(PENDING);
}

/// A one-time message for the next page (after a no-JavaScript form redirects).
pub fn set_flash(session: &Session, message: &str) -> Result<(), AppError> {
    session.insert(FLASH, message)?;
    Ok(())
}

pub fn take_flash(session: &Session) -> Option<String> {
    session.remove_as::<String>(FLASH).and_then(Result::ok)
}

/// A urlencoded body is ASCII, and every value percent-decodes to valid UTF-8 (the
/// standard decoder would silently replace bad bytes).
fn form_is_utf8(body: &[u8]) -> bool {
    if !body.is_ascii() {
        return false;
    }
    body.split(|b| *b == b'&')
        .flat_map(|pair| pair.split(|b| *b == b'='))
        .all(|part| {
            let mut out = Vec::with_capacity(part.len());
            let mut i = 0;
            while i < part.len() {
                match part[i] {
                    b'%' => {
                        let hex = part
                            .get(i + 1..i + 3)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u8::from_str_radix(h, 16).ok());
                        match hex {
                            Some(b) => out.push(b),
                            None => return false,
                        }
                        i += 3;
                    }
                    b'+' => {
                        out.push(b' ');
                        i += 1;
                    }
                    b => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            std::str::from_utf8(&out).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::form_is_utf8;

    #[test]
    fn debug_never_prints_the_csrf_token() {
        let t = time::macros::datetime!(2026-11-29 12:00);
        let user = super::CurrentUser {
            user: crate::db::users::User {
                id: 1,
                username: "alice".into(),
                password_hash: "hash".into(),
                role: "admin".into(),
                disabled: false,
                created_at: t,
                updated_at: t,
                last_login_at: None,
                totp_secret: Some("sealed-totp-secret".into()),
                totp_enabled: true,
                totp_last_step: None,
            },
            csrf: "csrf-token-value".into(),
            source_ip: None,
        };
        let printed = format!("{user:?}");
        assert!(!printed.contains("csrf-token-value"), "{printed}");
    }

    #[test]
    fn forms_must_decode_to_utf8() {
        assert!(form_is_utf8(b"name=caf%C3%A9&x=a+b"));
        assert!(form_is_utf8(b""));
        assert!(!form_is_utf8(b"name=%FF%FE"));
        assert!(!form_is_utf8(b"name=\xff"));
        assert!(!form_is_utf8(&[b'n', b'=', 0xff]));
        assert!(!form_is_utf8(b"name=%F"));
        assert!(!form_is_utf8(b"name=%zz"));
    }
}
