//! Key management over the API: list, create, get, update, activate / deactivate,
//! delete, roll. Each handler calls the same use case as the dashboard; the caller's
//! key is the actor, so `app::policy` bounds what it may do.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Bytes, Data, Path, Query};
use serde::{Deserialize, Serialize};

use super::caller::ApiCaller;
use super::json_body::ApiJson;
use crate::app;
use crate::db::keys::ApiKey;
use crate::domain::clock::iso_time;
use crate::domain::grace::Grace;
use crate::domain::key::obfuscate;
use crate::domain::key_settings::{KeyInput, KeySettings};
use crate::domain::limits::{RateLimit, Refill};
use crate::domain::list::{ListParams, ListQuery, Within};
use crate::error::ApiError;
use crate::key_reads::Shown;
use crate::state::AppState;
use serde_json::value::RawValue;
use time::PrimitiveDateTime;

/// A key as the API shows it (never the key itself).
#[derive(Serialize)]
pub struct KeyJson {
    key_id: String,
    obfuscated: String,
    name: String,
    description: Option<String>,
    channel_id: i64,
    scopes: Vec<String>,
    allowed_cidrs: Vec<String>,
    postback_url: Option<String>,
    off_the_record: bool,
    enabled: bool,
    /// `active`, `inactive`, `expired` or `rolling`: the same status the dashboard shows.
    status: &'static str,
    expires_at: Option<String>,
    created_at: String,
    created_by: String,
    last_used_at: Option<String>,
    last_used_ip: Option<String>,
    /// Requests in the last 24 hours and 30 days, from usage rollups.
    requests_24h: i64,
    requests_30d: i64,
    /// Set on a rolled key: when it stops working, and its successor.
    roll_ends_at: Option<String>,
    rolled_to_key_id: Option<String>,
    /// Set when a receiver answered 410 Gone and the POSTback was turned off.
    postback_off_at: Option<String>,
    /// `sha256` / `sha512` for a key imported from another system by that digest.
    imported_as: Option<String>,
    /// When a leak report last named this key.
    leaked_at: Option<String>,
    /// `[{"limit": 100, "per": "second"}]`; empty: no rate limit.
    rate_limits: Vec<RateLimit>,
    /// `null`: no credit limit.
    credits: Option<CreditsJson>,
    /// The key's metadata object.
    metadata: Option<Box<RawValue>>,
}

#[derive(Serialize)]
struct CreditsJson {
    /// Credits not yet spent nor reserved by an instance (an instance gives back what
    /// it reserved and did not spend within seconds).
    remaining: i64,
    refill: Option<Refill>,
    next_refill_at: Option<String>,
}

impl KeyJson {
    pub(super) fn of(k: &ApiKey) -> Self {
        KeyJson {
            key_id: k.key_id.clone(),
            obfuscated: obfuscate(&k.prefix, &k.key_id, &k.last_four),
            name: k.name.clone(),
            description: k.description.clone(),
            channel_id: k.channel_id,
            scopes: k.scope_list().into_iter().map(str::to_owned).collect(),
            allowed_cidrs: k.cidr_list().into_iter().map(str::to_owned).collect(),
            postback_url: k.postback_url.clone(),
            off_the_record: k.off_the_record,
            enabled: k.enabled,
            status: k.status(crate::db::now()).as_str(),
            expires_at: k.expires_at.map(iso_time),
            created_at: iso_time(k.created_at),
            created_by: k.created_by.clone(),
            last_used_at: k.last_used_at.map(iso_time),
            requests_24h: k.uses_24h,
            requests_30d: k.uses_30d,
            last_used_ip: k.last_used_ip.clone(),
            roll_ends_at: k.roll_ends_at.map(iso_time),
            rolled_to_key_id: k.rolled_to_key_id.clone(),
            postback_off_at: k.postback_gone_at.map(iso_time),
            imported_as: k.imported_as.clone(),
            leaked_at: k.leaked_at.map(iso_time),
            rate_limits: k.limits(),
            credits: k.credits.map(|remaining| CreditsJson {
                remaining,
                refill: k.refill(),
                next_refill_at: k.next_refill(crate::db::now()).map(iso_time),
            }),
            metadata: k
                .metadata
                .as_deref()
                .and_then(|m| RawValue::from_string(m.to_owned()).ok()),
        }
    }
}

impl KeyJson {
    /// The first moment after `now` at which [`KeyJson::of`] may answer otherwise for an
    /// unchanged row: its status (expiry, end of a rolling grace) or next refill moves.
    fn holds_until(k: &ApiKey, now: PrimitiveDateTime) -> Option<PrimitiveDateTime> {
        [k.expires_at, k.roll_ends_at, k.next_refill(now)]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min()
    }
}

#[derive(Deserialize)]
pub struct ListApiParams {
    channel_id: Option<i64>,
    #[serde(flatten)]
    list: ListParams,
}

pub async fn list_keys(
    state: Data<AppState>,
    caller: ApiCaller,
    params: Query<ListApiParams>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let id = params.channel_id.unwrap_or(caller.0.key.channel_id);
    let channel = app::keys::channel(&state, &actor, id).await?;
    // API callers page by cursor and read `total` as the exact number of matches.
    let mut query = ListQuery::parse(&params.list);
    query.count_all = true;
    let page = app::keys::list_page(
        &state,
        &actor,
        Within::Channel(channel.id),
        &query,
        channel.key_count,
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "data": page.rows.iter().map(KeyJson::of).collect::<Vec<_>>(),
        "total": page.total,
        "next_after": if page.has_next { page.rows.last().map(|k| k.id) } else { None },
        "prev_before": if page.has_prev { page.rows.first().map(|k| k.id) } else { None },
    })))
}

pub async fn get_key(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let read = app::keys::find_recent(&state, &caller.actor(), path.into_inner()).await?;
    let now = crate::db::now();
    let body = match read.shown_at(now) {
        Some(body) => body,
        None => {
            let body = Bytes::from(serde_json::to_vec(&KeyJson::of(&read.key)).map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
            })?);
            let until = KeyJson::holds_until(&read.key, now);
            // Another request may have rendered it first: either answer is the same.
            let _ = read.shown.set(Shown {
                body: body.clone(),
                until,
            });
            body
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(body))
}

/// Create and update bodies: every field optional (update merges with the key).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    channel_id: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    expires_at: Option<String>,
    scopes: Option<Vec<String>>,
    allowed_cidrs: Option<Vec<String>>,
    postback_url: Option<String>,
    off_the_record: Option<bool>,
    enabled: Option<bool>,
    /// `[{"limit": 100, "per": "second"}]`.
    rate_limits: Option<serde_json::Value>,
    /// Remaining credits; `null`: no credit limit.
    #[serde(default, deserialize_with = "super::body::present")]
    credits: Option<serde_json::Value>,
    /// `{"interval": "daily" | "monthly", "amount": 1000}`; `null`: no refill.
    #[serde(default, deserialize_with = "super::body::present")]
    refill: Option<serde_json::Value>,
    /// A JSON object (at most 4 KB); `null` clears it.
    #[serde(default, deserialize_with = "super::body::present")]
    metadata: Option<serde_json::Value>,
}

impl KeyBody {
    fn merge(self, mut input: KeyInput) -> KeyInput {
        if let Some(v) = self.name {
            input.name = v;
        }
        if let Some(v) = self.description {
            input.description = v;
        }
        if let Some(v) = self.expires_at {
            input.expires_at = v;
        }
        if let Some(v) = self.scopes {
            input.scopes = v;
        }
        if let Some(v) = self.allowed_cidrs {
            input.cidrs = v;
        }
        if let Some(v) = self.postback_url {
            input.postback_url = v;
        }
        if let Some(v) = self.off_the_record {
            input.off_the_record = v;
        }
        if let Some(v) = self.enabled {
            input.enabled = v;
        }
        if let Some(v) = self.rate_limits {
            input.rate_limits = super::body::limits_text_of(&v);
        }
        if let Some(v) = self.credits {
            input.credits = super::body::text_of(&v);
            // Sent: applied even when equal to the balance read a moment ago.
            input.credits_was = None;
        }
        if let Some(v) = self.refill {
            match &v {
                serde_json::Value::Null => {
                    input.refill.clear();
                    input.refill_amount.clear();
                }
                serde_json::Value::Object(o) => {
                    input.refill = o
                        .get("interval")
                        .and_then(|i| i.as_str())
                        .unwrap_or("?")
                        .to_owned();
                    input.refill_amount = o
                        .get("amount")
                        .map(super::body::text_of)
                        .unwrap_or_default();
                }
                _ => input.refill = "?".into(),
            }
        }
        if let Some(v) = self.metadata {
            input.metadata = super::body::text_of(&v);
        }
        input
    }
}

fn parse_settings(
    state: &AppState,
    input: &KeyInput,
    existing: Option<time::PrimitiveDateTime>,
) -> Result<KeySettings, ApiError> {
    input
        .parse(
            &state.settings.scopes,
            crate::db::now(),
            existing,
            &state.settings.receiver_policy(),
        )
        .map_err(|errors| ApiError::fields(errors.fields()))
}

pub async fn create_key(
    state: Data<AppState>,
    caller: ApiCaller,
    body: ApiJson<KeyBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let channel_id = body.channel_id.unwrap_or(caller.0.key.channel_id);
    let input = body.merge(KeyInput {
        enabled: true,
        ..KeyInput::default()
    });
    let settings = parse_settings(&state, &input, None)?;
    let created = app::keys::create(&state, &caller.actor(), channel_id, settings).await?;
    // The one response that carries the plaintext (and the POSTback signing secret).
    let mut body = serde_json::json!({
        "key": created.plain.reveal(),
        "data": KeyJson::of(&created.key),
    });
    if let Some(secret) = &created.postback_secret {
        body["postback_secret"] = secret.reveal().into();
    }
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body))
}

pub async fn update_key(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<String>,
    body: ApiJson<KeyBody>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let (key, _) = app::keys::find_for_edit(&state, &actor, path.into_inner()).await?;
    let body = body.into_inner();
    if body.channel_id.is_some_and(|c| c != key.channel_id) {
        return Err(ApiError::bad_request(
            "A key cannot move to another channel.",
        ));
    }
    let settings = parse_settings(&state, &body.merge(key.as_input()), key.expires_at)?;
    let (updated, secret) = app::keys::update(&state, &actor, key.key_id, settings).await?;
    match secret {
        // The key's first POSTback URL: its signing secret, shown this once.
        Some(secret) => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(serde_json::json!({
                "data": KeyJson::of(&updated),
                "postback_secret": secret.reveal(),
            }))),
        None => Ok(HttpResponse::Ok().json(KeyJson::of(&updated))),
    }
}

/// `activate` / `deactivate` (and their old names `enable` / `disable`).
pub async fn set_active(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (key_id, action) = path.into_inner();
    let active = match action.as_str() {
        "activate" | "enable" => true,
        "deactivate" | "disable" => false,
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "Unknown action.",
            ));
        }
    };
    let changed = app::keys::set_active(&state, &caller.actor(), key_id, active).await?;
    Ok(HttpResponse::Ok().json(KeyJson::of(&changed)))
}

pub async fn delete_key(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    app::keys::delete(&state, &caller.actor(), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RollBody {
    /// `now`, `1h`, `24h` or `7d` (default `24h`).
    grace: Option<String>,
}

/// Rolls a key: the new key (shown once) copies every setting; the old one keeps
/// working for the grace period, never past its own expiry.
pub async fn roll_key(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    // The body is optional, but a body that is there must be right.
    let body: RollBody = if body.iter().all(u8::is_ascii_whitespace) {
        RollBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid JSON body: {}",
                super::errors::redact_quoted(&e.to_string())
            ))
        })?
    };
    let grace_text = body.grace.unwrap_or_else(|| "24h".into());
    let grace = Grace::parse(&grace_text)
        .ok_or_else(|| ApiError::invalid("grace", "Use now, 1h, 24h or 7d."))?;
    let rolled = app::roll::roll(&state, &caller.actor(), path.into_inner(), grace).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(serde_json::json!({
            "key": rolled.plain.reveal(),
            "data": KeyJson::of(&rolled.new),
            "old": KeyJson::of(&rolled.old),
        })))
}

/// Rolls the key's POSTback signing secret: the new one is shown once; the old one
/// keeps signing beside it for 24 hours.
pub async fn roll_postback_secret(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (key, secret, overlap_ends) =
        app::postback::roll_secret(&state, &caller.actor(), path.into_inner()).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(serde_json::json!({
            "postback_secret": secret.reveal(),
            "previous_secret_signs_until": iso_time(overlap_ends),
            "data": KeyJson::of(&key),
        })))
}

/// Queues a `key.test` event to the key's receiver.
pub async fn send_postback_test(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = app::postback::send_test(&state, &caller.actor(), path.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(KeyJson::of(&key)))
}

/// `POST /keys/bulk`: one action over explicit key ids or every key a filter matches,
/// with the single-key rules applied to each key; refused keys are listed, not fatal.
pub async fn bulk_keys(
    state: Data<AppState>,
    caller: ApiCaller,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    // The scope first: a key that may not write learns nothing from its body's errors.
    caller.actor().require_scope(app::policy::SCOPE_WRITE)?;
    let body: crate::domain::bulk::BulkBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "Invalid JSON body: {}",
            super::errors::redact_quoted(&e.to_string())
        ))
    })?;
    let request = body
        .parse(crate::db::now())
        .map_err(|e| ApiError::invalid(e.field, &e.message))?;
    let outcome = app::bulk::run(
        &state,
        &caller.actor(),
        request.action,
        request.selection,
        request.expires_at,
    )
    .await?;
    let ids =
        |items: &[app::bulk::Item]| items.iter().map(|i| i.key_id.clone()).collect::<Vec<_>>();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "action": request.action.as_str(),
        "changed": ids(&outcome.changed),
        "unchanged": ids(&outcome.unchanged),
        "refused": outcome.refused.iter().map(|r| serde_json::json!({
            "key_id": r.key_id,
            "code": r.code,
            "message": r.reason,
        })).collect::<Vec<_>>(),
        "summary": outcome.summary(),
    })))
}
