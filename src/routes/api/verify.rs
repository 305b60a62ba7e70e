//! `POST /api/v1/keys/verify`: the hot path. Answers from the in-memory cache.

use std::net::IpAddr;

use actix_web::HttpResponse;
use actix_web::web::{Data, Json};
use serde::{Deserialize, Serialize};

use super::caller::ApiCaller;
use crate::app::credits::CreditCheck;
use crate::app::policy::SCOPE_VERIFY;
use crate::domain::clock::iso_time;
use crate::domain::key::PlainKey;
use crate::domain::limits::COST_MAX;
use crate::error::ApiError;
use crate::ratelimit::LimitState;
use crate::state::AppState;
use crate::usage::Outcome;
use crate::verification::{self, Code};
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

/// Borrows from the cached key: no copies on the hot path.
#[derive(Serialize)]
pub struct VerifyResponse<'a> {
    valid: bool,
    code: Code,
    key_id: Option<&'a str>,
    channel: Option<&'a str>,
    name: Option<&'a str>,
    scopes: Option<&'a [String]>,
    expires_at: Option<String>,
    /// The key's metadata object, as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a RawValue>,
    /// The limit closest to refusing, when the key has rate limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    ratelimit: Option<LimitState>,
    /// Credits left, when the key has a credit limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    credits: Option<CreditsLeft>,
}

#[derive(Serialize)]
struct CreditsLeft {
    remaining: i64,
}

impl VerifyResponse<'_> {
    fn refused(code: Code) -> Self {
        VerifyResponse {
            valid: false,
            code,
            key_id: None,
            channel: None,
            name: None,
            scopes: None,
            expires_at: None,
            metadata: None,
            ratelimit: None,
            credits: None,
        }
    }
}

pub async fn verify_key(
    state: Data<AppState>,
    caller: ApiCaller,
    body: Json<VerifyRequest>,
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
        return Ok(HttpResponse::Ok().json(VerifyResponse::refused(Code::Malformed)));
    };
    let target = state.cache.get(&state.pool, digest).await?;
    let Some(target) = target.filter(|t| caller.0.key.reaches(t)) else {
        state.metrics.verification(Code::NotFound);
        state.usage.unknown(Outcome::Verify(Code::NotFound));
        return Ok(HttpResponse::Ok().json(VerifyResponse::refused(Code::NotFound)));
    };
    let mut code = verification::check(&target, crate::db::now(), ip, &scopes);
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
            CreditCheck::Spent { remaining } => credits = Some(CreditsLeft { remaining }),
            CreditCheck::Exceeded => {
                code = Code::UsageExceeded;
                credits = Some(CreditsLeft { remaining: 0 });
            }
        }
    }
    state.metrics.verification(code);
    state.usage.verification(&target, code, ip);
    Ok(HttpResponse::Ok().json(VerifyResponse {
        valid: code == Code::Valid,
        code,
        key_id: Some(&target.key_id),
        channel: Some(&target.channel_name),
        name: Some(&target.name),
        scopes: Some(&target.scopes),
        expires_at: target.ends_at().map(iso_time),
        metadata: target.metadata.as_deref(),
        ratelimit,
        credits,
    }))
}
