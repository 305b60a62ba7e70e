//! `POST /api/v1/keys/verify`: the hot path. Answers from the in-memory cache.

use std::net::IpAddr;

use actix_web::HttpResponse;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::web::Data;
use serde::{Deserialize, Serialize};

use super::caller::ApiCaller;
use super::json_body::ApiJson;
use crate::app::credits::CreditCheck;
use crate::app::policy::SCOPE_VERIFY;
use crate::domain::clock::iso_time;
use crate::domain::key::PlainKey;
use crate::domain::limits::COST_MAX;
use crate::error::ApiError;
use crate::ratelimit::LimitState;
use crate::state::AppState;
use crate::usage::Outcome;
use crate::verification::{self, CachedKey, Code};
use serde_json::value::RawValue;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    key: String,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    /// Credits this verification spends (default 1; 0 checks without spending).
    #[serde(default)]
    cost: Option<i64>,
}

/// The part of an answer that depends only on the key, rendered once per cached key
/// (`CachedKey::answer_memo`): serialising it on every request (strings escaped, the
/// metadata copied, the expiry formatted) was a tenth of a verification's instructions.
#[derive(Serialize)]
struct KeyPart<'a> {
    key_id: &'a str,
    channel: &'a str,
    name: &'a str,
    scopes: &'a [String],
    expires_at: Option<String>,
    /// The key's metadata object, as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a RawValue>,
}

/// `{"key_id":…,"metadata":…}` without its braces.
fn key_part(key: &CachedKey) -> Box<str> {
    let part = KeyPart {
        key_id: &key.key_id,
        channel: &key.channel_name,
        name: &key.name,
        scopes: &key.scopes,
        expires_at: key.ends_at().map(iso_time),
        metadata: key.metadata.as_deref(),
    };
    let json = serde_json::to_string(&part).unwrap_or_else(|_| "{}".into());
    json[1..json.len() - 1].into()
}

/// The answer when no key was found: the same bytes every time.
fn refused(code: Code) -> HttpResponse {
    let body: &'static str = match code {
        Code::Malformed => {
            r#"{"valid":false,"code":"MALFORMED","key_id":null,"channel":null,"name":null,"scopes":null,"expires_at":null}"#
        }
        _ => {
            r#"{"valid":false,"code":"NOT_FOUND","key_id":null,"channel":null,"name":null,"scopes":null,"expires_at":null}"#
        }
    };
    json_response(body)
}

fn json_response(body: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .body(body)
}

/// `{"valid":…,"code":…, <the key's part>, "ratelimit":…, "credits":…}`, written
/// straight into one buffer sized for it.
fn answer(
    key: &CachedKey,
    code: Code,
    ratelimit: Option<&LimitState>,
    credits: Option<i64>,
) -> Vec<u8> {
    let fixed = key.answer_memo.get_or_init(|| key_part(key));
    let mut out = Vec::with_capacity(fixed.len() + 192);
    out.extend_from_slice(if code == Code::Valid {
        b"{\"valid\":true,\"code\":\""
    } else {
        b"{\"valid\":false,\"code\":\""
    });
    out.extend_from_slice(code.as_str().as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(fixed.as_bytes());
    if let Some(r) = ratelimit {
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b",\"ratelimit\":{\"limit\":");
        out.extend_from_slice(n.format(r.limit.limit).as_bytes());
        out.extend_from_slice(b",\"per\":\"");
        out.extend_from_slice(r.limit.window.as_str().as_bytes());
        out.extend_from_slice(b"\",\"remaining\":");
        out.extend_from_slice(n.format(r.remaining).as_bytes());
        out.extend_from_slice(b",\"reset\":");
        out.extend_from_slice(n.format(r.reset_secs).as_bytes());
        out.extend_from_slice(b",\"retry_after\":");
        out.extend_from_slice(n.format(r.retry_after_secs).as_bytes());
        out.push(b'}');
    }
    if let Some(remaining) = credits {
        out.extend_from_slice(b",\"credits\":{\"remaining\":");
        out.extend_from_slice(itoa::Buffer::new().format(remaining).as_bytes());
        out.push(b'}');
    }
    out.push(b'}');
    out
}

pub async fn verify_key(
    state: Data<AppState>,
    caller: ApiCaller,
    body: ApiJson<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.actor().require_scope(SCOPE_VERIFY)?;
    let VerifyRequest {
        key,
        ip,
        scopes,
        cost,
    } = body.into_inner();
    let cost = cost.unwrap_or(1);
    if !(0..=COST_MAX).contains(&cost) {
        let mut e = ApiError::bad_request(format!("`cost` must be from 0 to {COST_MAX}."));
        e.fields.push((
            "cost".into(),
            format!("Use a whole number from 0 to {COST_MAX}."),
        ));
        return Err(e);
    }
    let ip = match ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<IpAddr>()
                .map(|ip| ip.to_canonical())
                .map_err(|_| {
                    let mut e = ApiError::bad_request("`ip` is not an IPv4 or IPv6 address.");
                    e.fields.push(("ip".into(), "Not an IP address.".into()));
                    e
                })?,
        ),
        None => None,
    };
    // A malformed key is refused here, before any lookup (unless keys were imported:
    // then it may be one of them, found by its SHA-256 / SHA-512).
    let digest = match PlainKey::digest_of(key.trim()) {
        Ok(digest) => Some(digest),
        Err(_) => {
            crate::imported::digest_for(&state.imports, &state.cache, &state.pool, key.trim())
                .await?
        }
    };
    let Some(digest) = digest else {
        state.metrics.verification(Code::Malformed);
        state.usage.unknown(Outcome::Verify(Code::Malformed));
        return Ok(refused(Code::Malformed));
    };
    let target = state.cache.get(&state.pool, digest).await?;
    let Some(target) = target.filter(|t| caller.0.key.reaches(t)) else {
        state.metrics.verification(Code::NotFound);
        state.usage.unknown(Outcome::Verify(Code::NotFound));
        return Ok(refused(Code::NotFound));
    };
    let mut code = verification::check(&target, crate::db::now, ip, &scopes);
    let mut ratelimit = None;
    let mut credits = None;
    if code == Code::Valid && !target.rate_limits.is_empty() {
        let decision = state
            .limiter
            .check(target.id, &target.key_id, &target.rate_limits)
            .await;
        if !decision.allowed {
            code = Code::RateLimited;
        }
        ratelimit = decision.tightest().copied();
    }
    if code == Code::Valid && target.credit_limited {
        match crate::app::credits::spend(&state, &target, cost).await? {
            CreditCheck::NotCounted => {}
            CreditCheck::Spent { remaining } => credits = Some(remaining),
            CreditCheck::Exceeded => {
                code = Code::UsageExceeded;
                credits = Some(0);
            }
        }
    }
    state.metrics.verification(code);
    state.usage.verification(&target, code, ip);
    Ok(json_response(answer(
        &target,
        code,
        ratelimit.as_ref(),
        credits,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::limits::{RateLimit, Window};
    use serde_json::{Value, json};
    use time::macros::datetime;

    fn key() -> CachedKey {
        let mut key = CachedKey {
            key_id: "AbC\"d\\e".into(),
            name: "billing \u{e9}\n\"svc\"".into(),
            channel_name: "pay</script>".into(),
            scopes: vec!["verify".into(), "keys:read".into()],
            credit_limited: true,
            metadata: RawValue::from_string(r#"{"plan":"pro","n":[1,2]}"#.into()).ok(),
            ..CachedKey::sample(7)
        };
        key.lifecycle.expires_at = Some(datetime!(2027-01-02 03:04:05));
        key
    }

    /// The hand-written answer is the JSON the fields say, escapes included, and the
    /// memo does not leak one answer's dynamic part into the next.
    #[test]
    fn answers_are_the_fields_as_json() {
        let k = key();
        let limit = LimitState {
            limit: RateLimit {
                limit: 100,
                window: Window::Minute,
            },
            remaining: 42,
            reset_secs: 17,
            retry_after_secs: 0,
        };
        let first: Value = serde_json::from_slice(&answer(&k, Code::Valid, Some(&limit), Some(9)))
            .expect("valid JSON");
        assert_eq!(
            first,
            json!({
                "valid": true, "code": "VALID", "key_id": "AbC\"d\\e",
                "channel": "pay</script>", "name": "billing \u{e9}\n\"svc\"",
                "scopes": ["verify", "keys:read"], "expires_at": iso_time(datetime!(2027-01-02 03:04:05)),
                "metadata": {"plan": "pro", "n": [1, 2]},
                "ratelimit": serde_json::to_value(limit).unwrap(),
                "credits": {"remaining": 9},
            })
        );
        let second: Value =
            serde_json::from_slice(&answer(&k, Code::UsageExceeded, None, Some(0))).unwrap();
        assert_eq!(second["valid"], json!(false));
        assert_eq!(second["code"], json!("USAGE_EXCEEDED"));
        assert_eq!(second["credits"], json!({"remaining": 0}));
        assert!(second.get("ratelimit").is_none());
        let mut bare = key();
        bare.metadata = None;
        bare.lifecycle.expires_at = None;
        let third: Value =
            serde_json::from_slice(&answer(&bare, Code::Disabled, None, None)).unwrap();
        assert_eq!(third["expires_at"], Value::Null);
        assert!(third.get("metadata").is_none() && third.get("credits").is_none());
    }

    #[actix_web::test]
    async fn refusals_name_their_code() {
        for code in [Code::Malformed, Code::NotFound] {
            let bytes = actix_web::body::to_bytes(refused(code).into_body())
                .await
                .unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["code"], json!(code.as_str()));
            assert_eq!(v["valid"], json!(false));
            for field in ["key_id", "channel", "name", "scopes", "expires_at"] {
                assert_eq!(v[field], Value::Null, "{field}");
            }
        }
    }
}
