//! Who is calling the API: the `Authorization: Bearer <key>` extractor, and the
//! middleware that records each authenticated request against its key.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use crate::app::{Actor, KeyCaller};
use crate::domain::key::PlainKey;
use crate::error::ApiError;
use crate::net::client_ip;
use crate::ratelimit::Decision;
use crate::state::AppState;
use crate::usage::{Outcome, VERIFY_ROUTE};
use crate::verification::{self, Code};

/// The key that authenticated this request, already checked: well-formed, known,
/// active, not expired, and used from an allowed address.
pub struct ApiCaller(pub KeyCaller);

impl ApiCaller {
    pub fn actor(&self) -> Actor {
        Actor::Key(self.0.clone())
    }
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<Data<AppState>>().cloned();
        let ip = state
            .as_ref()
            .and_then(|s| client_ip(req, &s.settings.trusted_proxies));
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|v| PlainKey::digest_of(v.trim()));
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "state missing",
                )
            })?;
            // Refused before any key is known: counted under key 0, never logged.
            let refuse = |message: &str| {
                state.usage.unknown(Outcome::Unauthenticated);
                unauthenticated(message)
            };
            let digest = match bearer {
                None => return Err(refuse("Send `Authorization: Bearer <key>`.")),
                Some(Err(_)) => return Err(refuse("The key is malformed.")),
                Some(Ok(digest)) => digest,
            };
            let key = state
                .cache
                .get(&state.pool, digest)
                .await?
                .ok_or_else(|| refuse("Unknown key."))?;
            let refused = match verification::check(&key, crate::db::now, ip, &[]) {
                Code::Valid => None,
                Code::Disabled => Some(unauthenticated("This key is inactive.")),
                Code::Expired => Some(unauthenticated("This key has expired.")),
                Code::IpNotAllowed => Some(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "IP_NOT_ALLOWED",
                    "This key may not be used from your address.",
                )),
                other => Some(unauthenticated(other.as_str())),
            };
            // The calling key's own rate limits bound its use of the API.
            let mut refused = refused;
            if refused.is_none() && !key.rate_limits.is_empty() {
                let decision = state
                    .limiter
                    .check(key.id, &key.key_id, &key.rate_limits)
                    .await;
                if !decision.allowed {
                    refused = Some(ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "RATE_LIMITED",
                        format!(
                            "This key's rate limit is reached; try again in {} s.",
                            decision.retry_after()
                        ),
                    ));
                }
                req.extensions_mut().insert(RateDecision(decision));
            }
            // Refused requests are still recorded against the key that tried.
            let caller = KeyCaller { key, ip };
            req.extensions_mut().insert(caller.clone());
            match refused {
                Some(e) => Err(e),
                None => Ok(ApiCaller(caller)),
            }
        })
    }
}

/// The calling key's rate-limit check, for the response's headers.
struct RateDecision(Decision);

/// Counts a request made with a known key by its final status, and logs one raw row
/// for it — except a verification, whose row is the verified key's (one row per
/// verification). Requests of a key with rate limits carry `RateLimit-Policy` and
/// `RateLimit`, and `Retry-After` when refused. (Run by `layer::api_layer`.)
pub fn record_usage<B>(res: &mut ServiceResponse<B>, state: &AppState) {
    let limited = res
        .request()
        .extensions()
        .get::<RateDecision>()
        .map(|d| (d.0.headers(), d.0.allowed, d.0.retry_after()));
    if let Some((headers, allowed, retry)) = limited {
        let h = res.headers_mut();
        if let Some((policy, now)) = headers {
            for (name, value) in [("ratelimit-policy", policy), ("ratelimit", now)] {
                if let Ok(v) = header::HeaderValue::from_str(&value) {
                    h.insert(header::HeaderName::from_static(name), v);
                }
            }
        }
        if !allowed {
            h.insert(header::RETRY_AFTER, header::HeaderValue::from(retry));
        }
    }
    let caller = res.request().extensions().get::<KeyCaller>().cloned();
    if let Some(caller) = caller {
        let req = res.request();
        let verification =
            req.method() == actix_web::http::Method::POST && req.path() == VERIFY_ROUTE;
        let route = if verification || caller.key.off_the_record {
            None
        } else {
            Some(crate::telemetry::route_of(req))
        };
        state.usage.request(
            &caller.key,
            req.method().as_str(),
            route,
            res.status().as_u16(),
            caller.ip,
            !verification,
        );
    }
}
