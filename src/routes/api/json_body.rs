//! `ApiJson<T>`: the API's JSON body extractor.
//!
//! It accepts what actix-web's `Json<T>` accepts under the API's `JsonConfig` (a JSON
//! media type, at most `BODY_LIMIT` bytes) and answers its errors the same way
//! (`errors::json_error`), but reads a body that arrives in one chunk — every small
//! request — without copying it: `Json<T>` allocates an 8 KiB buffer per request and
//! copies the body into it, which callgrind showed as the verify path's most expensive
//! allocation (a fresh allocator page per request when the heap was quiet).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::mime;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_core::Stream;
use serde::de::DeserializeOwned;

use super::errors::json_error;

/// The one limit of every request body, form or JSON, dashboard or API.
pub const BODY_LIMIT: usize = 64 * 1024;

pub struct ApiJson<T>(pub T);

impl<T> ApiJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for ApiJson<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for ApiJson<T> {
    type Error = actix_web::Error;
    type Future = ApiJsonBody<T>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if let Err(e) = check_head(req) {
            return ApiJsonBody::Failed(Some(e));
        }
        ApiJsonBody::Reading {
            payload: payload.take(),
            first: None,
            more: None,
            _t: PhantomData,
        }
    }
}

/// The media type must be JSON (`application/json`, `…+json`), and a declared length
/// within the limit.
fn check_head(req: &HttpRequest) -> Result<(), JsonPayloadError> {
    // What nearly every client sends, without parsing a media type.
    let plain = req
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"application/json"));
    let json = plain
        || matches!(
            req.mime_type(),
            Ok(Some(m)) if m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON)
        );
    if !json {
        return Err(JsonPayloadError::ContentType);
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(length) if length > BODY_LIMIT => Err(JsonPayloadError::OverflowKnownLength {
            length,
            limit: BODY_LIMIT,
        }),
        _ => Ok(()),
    }
}

pub enum ApiJsonBody<T> {
    Failed(Option<JsonPayloadError>),
    Reading {
        payload: Payload,
        /// The first chunk, kept as it came.
        first: Option<Bytes>,
        /// The body so far, once a second chunk arrived.
        more: Option<BytesMut>,
        _t: PhantomData<T>,
    },
}

impl<T> Unpin for ApiJsonBody<T> {}

impl<T: DeserializeOwned> Future for ApiJsonBody<T> {
    type Output = Result<ApiJson<T>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match this {
            ApiJsonBody::Failed(e) => Err(e.take().unwrap_or(JsonPayloadError::ContentType)),
            ApiJsonBody::Reading {
                payload,
                first,
                more,
                ..
            } => loop {
                match ready!(Pin::new(&mut *payload).poll_next(cx)) {
                    Some(Err(e)) => break Err(JsonPayloadError::Payload(e)),
                    Some(Ok(chunk)) => {
                        let have = first.as_ref().map_or(0, Bytes::len)
                            + more.as_ref().map_or(0, BytesMut::len);
                        if have + chunk.len() > BODY_LIMIT {
                            break Err(JsonPayloadError::Overflow { limit: BODY_LIMIT });
                        }
                        match (first.take(), more.as_mut()) {
                            (None, None) => *first = Some(chunk),
                            (Some(head), _) => {
                                let mut buf = BytesMut::with_capacity(head.len() + chunk.len());
                                buf.extend_from_slice(&head);
                                buf.extend_from_slice(&chunk);
                                *more = Some(buf);
                            }
                            (None, Some(buf)) => buf.extend_from_slice(&chunk),
                        }
                    }
                    None => {
                        let body: &[u8] = match (first.as_ref(), more.as_ref()) {
                            (Some(b), _) => b,
                            (None, Some(b)) => b,
                            (None, None) => &[],
                        };
                        break serde_json::from_slice(body)
                            .map(ApiJson)
                            .map_err(JsonPayloadError::Deserialize);
                    }
                }
            },
        };
        Poll::Ready(result.map_err(|e| json_error(e).into()))
    }
}
