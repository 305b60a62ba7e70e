//! htmx awareness: one URL serves the full page or only the fragment.
//!
//! A request is "htmx" when it carries `HX-Request: true` and is not a history-restore
//! request (those need the full page, since the browser lost the DOM). Responses carry
//! `Vary: HX-Request` (set in `startup`) so caches keep the two shapes apart.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse};

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

/// The event every key write triggers: the results table, the channel header and the
/// Channels table listen for it and refresh themselves (with their own filter, sort and
/// position), so a handler never guesses which page the person is on.
pub const KEYS_CHANGED: &str = "keys-changed";

/// Extractor: what kind of request this is, and which element it targets.
#[derive(Debug, Clone, Default)]
pub struct HxRequest {
    pub is_htmx: bool,
    pub target: Option<String>,
    /// The id of the element that triggered the request (`HX-Trigger`).
    pub trigger: Option<String>,
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
            trigger: headers
                .get(&HX_TRIGGER)
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

/// The one builder of htmx answers: HTML parts (the main swap first, out-of-band parts
/// after it), and the response headers that steer the swap.
pub struct HxResponse {
    status: StatusCode,
    body: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl HxResponse {
    pub fn new(status: StatusCode) -> Self {
        HxResponse {
            status,
            body: String::new(),
            headers: Vec::new(),
        }
    }

    pub fn ok() -> Self {
        Self::new(StatusCode::OK)
    }

    /// Appends HTML (a fragment, or an out-of-band part).
    pub fn html(mut self, part: &str) -> Self {
        self.body.push_str(part);
        self
    }

    fn header(mut self, name: HeaderName, value: &str) -> Self {
        // Values come from our own ids and URLs; one that is not a valid header is
        // dropped rather than failing the response.
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// Swap into `selector` instead of the element that asked.
    pub fn retarget(self, selector: &str) -> Self {
        self.header(HX_RETARGET, selector)
    }

    pub fn reswap(self, how: &str) -> Self {
        self.header(HX_RESWAP, how)
    }

    /// Fires `event` on the page once swapped (listeners refresh themselves).
    pub fn trigger(self, event: &str) -> Self {
        self.header(HX_TRIGGER, event)
    }

    pub fn push_url(self, url: &str) -> Self {
        self.header(HX_PUSH_URL, url)
    }

    /// Loads `url` as a full page instead of swapping anything.
    pub fn redirect(self, url: &str) -> Self {
        self.header(HX_REDIRECT, url)
    }

    pub fn finish(self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status)
            .content_type("text/html; charset=utf-8")
            .body(self.body);
        for (name, value) in self.headers {
            res.headers_mut().insert(name, value);
        }
        res
    }
}
