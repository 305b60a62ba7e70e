//! htmx awareness: one URL serves the full page or only the fragment.
//!
//! A request is "htmx" when it carries `HX-Request: true` and is not a history-restore
//! request (those need the full page, since the browser lost the DOM). Responses carry
//! `Vary: HX-Request` (set in `startup`) so caches keep the two shapes apart.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, HeaderName};
use actix_web::{FromRequest, HttpRequest};

pub const HX_REQUEST: HeaderName = HeaderName::from_static("hx-request");
pub const HX_HISTORY_RESTORE: HeaderName = HeaderName::from_static("hx-history-restore-request");
pub const HX_TARGET: HeaderName = HeaderName::from_static("hx-target");
pub const HX_RETARGET: HeaderName = HeaderName::from_static("hx-retarget");
pub const HX_RESWAP: HeaderName = HeaderName::from_static("hx-reswap");
pub const HX_TRIGGER: HeaderName = HeaderName::from_static("hx-trigger");
pub const HX_PUSH_URL: HeaderName = HeaderName::from_static("hx-push-url");
pub const HX_REDIRECT: HeaderName = HeaderName::from_static("hx-redirect");

pub fn is_htmx(headers: &HeaderMap) -> bool {
    let flag = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok()) == Some("true");
    flag(&HX_REQUEST) && !flag(&HX_HISTORY_RESTORE)
}

/// Extractor: what kind of request this is, and which element it targets.
#[derive(Debug, Clone, Default)]
pub struct HxRequest {
    pub is_htmx: bool,
    pub target: Option<String>,
    /// The path of the page that sent the request (`HX-Current-URL`).
    pub current_path: Option<String>,
    /// The query string of that page, without the `?`.
    pub current_query: Option<String>,
}

impl HxRequest {
    pub fn targets(&self, id: &str) -> bool {
        self.is_htmx && self.target.as_deref() == Some(id)
    }
}

impl FromRequest for HxRequest {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let headers = req.headers();
        ready(Ok(HxRequest {
            is_htmx: is_htmx(headers),
            target: headers
                .get(&HX_TARGET)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            current_path: headers
                .get("hx-current-url")
                .and_then(|v| v.to_str().ok())
                .and_then(|u| u.split_once("://").map(|(_, rest)| rest))
                .map(|rest| rest.find('/').map_or("/", |i| &rest[i..]))
                .map(|p| p.split(['?', '#']).next().unwrap_or(p).to_owned()),
            current_query: headers
                .get("hx-current-url")
                .and_then(|v| v.to_str().ok())
                .and_then(|u| {
                    u.split_once('?')
                        .map(|(_, q)| q.split('#').next().unwrap_or(q).to_owned())
                }),
        }))
    }
}
