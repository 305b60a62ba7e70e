//! The JSON API under `/api/v1`: key verification and key management, authenticated
//! with `Authorization: Bearer <key>` and the key's scopes. Errors are always JSON
//! (`error::ApiError`), never HTML.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Data, Json, Path, Query};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::db::audit::Actor;
use crate::db::channels::{self, Channel};
use crate::db::keys::{self, ApiKey, NewKey, WriteError};
use crate::db::{self};
use crate::domain::clock::iso_time;
use crate::domain::key::{PlainKey, obfuscate};
use crate::domain::key_settings::{KeyInput, KeySettings};
use crate::domain::list::{ListParams, ListQuery};
use crate::error::ApiError;
use crate::net::client_ip;
use crate::startup::AppState;
use crate::usage::Authenticated;
use crate::verification::{self, CachedKey, Code};

pub const SCOPE_READ: &str = "keys:read";
pub const SCOPE_WRITE: &str = "keys:write";
pub const SCOPE_VERIFY: &str = "verify";

/// The key that authenticated this request, already checked: well-formed, known,
/// enabled, not expired, and used from an allowed address.
pub struct ApiCaller {
    pub key: Arc<CachedKey>,
    pub ip: Option<IpAddr>,
}

impl ApiCaller {
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.key.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "INSUFFICIENT_SCOPE",
                format!("This key lacks the `{scope}` scope."),
            ))
        }
    }

    fn actor(&self) -> Actor {
        Actor {
            name: format!("api:{}", self.key.key_id),
            user_id: None,
            source_ip: self.ip.map(|i| i.to_string()),
        }
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
            .map(|v| PlainKey::parse(v.trim()));
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "state missing",
                )
            })?;
            let plain = match bearer {
                None => return Err(unauthenticated("Send `Authorization: Bearer <key>`.")),
                Some(Err(_)) => return Err(unauthenticated("The key is malformed.")),
                Some(Ok((plain, _))) => plain,
            };
            let key = state
                .cache
                .get(&state.pool, plain.digest())
                .await?
                .ok_or_else(|| unauthenticated("Unknown key."))?;
            let refused = match verification::check(&key, db::now(), ip, &[]) {
                Code::Valid => None,
                Code::Disabled => Some(unauthenticated("This key is disabled.")),
                Code::Expired => Some(unauthenticated("This key has expired.")),
                Code::IpNotAllowed => Some(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "IP_NOT_ALLOWED",
                    "This key may not be used from your address.",
                )),
                other => Some(unauthenticated(other.as_str())),
            };
            // Refused requests are still recorded against the key that tried.
            req.extensions_mut().insert(Authenticated {
                key: key.clone(),
                ip,
            });
            match refused {
                Some(e) => Err(e),
                None => Ok(ApiCaller { key, ip }),
            }
        })
    }
}

/// The plain handler the benchmark compares verification with.
pub async fn ping() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "ok": true }))
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(include_str!("../../static/openapi.json"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    key: String,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
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
        }
    }
}

pub async fn verify_key(
    state: Data<AppState>,
    caller: ApiCaller,
    body: Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(SCOPE_VERIFY)?;
    let VerifyRequest { key, ip, scopes } = body.into_inner();
    let ip = match ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<IpAddr>().map_err(|_| {
            let mut e = ApiError::bad_request("`ip` is not an IPv4 or IPv6 address.");
            e.fields.push(("ip".into(), "Not an IP address.".into()));
            e
        })?),
        None => None,
    };
    // A malformed key is refused here, before any lookup.
    let Ok((plain, _)) = PlainKey::parse(key.trim()) else {
        state.metrics.verification(Code::Malformed);
        return Ok(HttpResponse::Ok().json(VerifyResponse::refused(Code::Malformed)));
    };
    let target = state.cache.get(&state.pool, plain.digest()).await?;
    let Some(target) = target.filter(|t| caller.key.reaches(t)) else {
        state.metrics.verification(Code::NotFound);
        return Ok(HttpResponse::Ok().json(VerifyResponse::refused(Code::NotFound)));
    };
    let code = verification::check(&target, db::now(), ip, &scopes);
    state.metrics.verification(code);
    let status = if code == Code::Valid { 200 } else { 403 };
    state
        .usage
        .record(&target, "POST", "/api/v1/keys/verify", status, ip);
    Ok(HttpResponse::Ok().json(VerifyResponse {
        valid: code == Code::Valid,
        code,
        key_id: Some(&target.key_id),
        channel: Some(&target.channel_name),
        name: Some(&target.name),
        scopes: Some(&target.scopes),
        expires_at: target.ends_at().map(iso_time),
    }))
}

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
    status: &'static str,
    expires_at: Option<String>,
    created_at: String,
    created_by: String,
    last_used_at: Option<String>,
    last_used_ip: Option<String>,
    /// Set on a rolled key: when it stops working, and its successor.
    roll_ends_at: Option<String>,
    rolled_to_key_id: Option<String>,
}

impl KeyJson {
    fn of(k: &ApiKey) -> Self {
        let now = db::now();
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
            status: if k.is_expired(now) || k.roll_ends_at.is_some_and(|t| t <= now) {
                "expired"
            } else if k.enabled {
                "active"
            } else {
                "disabled"
            },
            expires_at: k.expires_at.map(iso_time),
            created_at: iso_time(k.created_at),
            created_by: k.created_by.clone(),
            last_used_at: k.last_used_at.map(iso_time),
            last_used_ip: k.last_used_ip.clone(),
            roll_ends_at: k.roll_ends_at.map(iso_time),
            rolled_to_key_id: k.rolled_to_key_id.clone(),
        }
    }
}

#[derive(Deserialize)]
pub struct ListApiParams {
    channel_id: Option<i64>,
    #[serde(flatten)]
    list: ListParams,
}

/// The channel a request names (or the caller's own), if within reach.
async fn reachable_channel(
    state: &AppState,
    caller: &ApiCaller,
    id: Option<i64>,
) -> Result<Channel, ApiError> {
    let id = id.unwrap_or(caller.key.channel_id);
    if !caller.key.reaches_channel(id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No such channel in your reach.",
        ));
    }
    db::run(&state.pool, move |c| channels::find(c, id))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "No such channel in your reach.",
            )
        })
}

pub async fn list_keys(
    state: Data<AppState>,
    caller: ApiCaller,
    params: Query<ListApiParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(SCOPE_READ)?;
    let channel = reachable_channel(&state, &caller, params.channel_id).await?;
    let query = ListQuery::parse(&params.list);
    let page = super::keys::key_page(
        &state,
        keys::Within::Channel(channel.id),
        &query,
        channel.key_count,
    )
    .await
    .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "data": page.rows.iter().map(KeyJson::of).collect::<Vec<_>>(),
        "total": page.total,
        "next_after": if page.has_next { page.rows.last().map(|k| k.id) } else { None },
        "prev_before": if page.has_prev { page.rows.first().map(|k| k.id) } else { None },
    })))
}

async fn reachable_key(
    state: &AppState,
    caller: &ApiCaller,
    key_id: String,
) -> Result<(ApiKey, Channel), ApiError> {
    let found = db::run(&state.pool, move |c| {
        let Some(k) = keys::find_by_key_id(c, &key_id)? else {
            return Ok(None);
        };
        Ok(channels::find(c, k.channel_id)?.map(|ch| (k, ch)))
    })
    .await?;
    match found {
        Some((k, ch)) if caller.key.reaches_channel(ch.id) => Ok((k, ch)),
        _ => Err(ApiError::not_found()),
    }
}

pub async fn get_key(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(SCOPE_READ)?;
    let (key, _) = reachable_key(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(KeyJson::of(&key)))
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
        input
    }
}

fn parse_settings(
    state: &AppState,
    input: &KeyInput,
    existing: Option<time::PrimitiveDateTime>,
) -> Result<KeySettings, ApiError> {
    input
        .parse(&state.settings.scopes, db::now(), existing)
        .map_err(|errors| {
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION",
                "Some fields are invalid.",
            );
            e.fields = errors.fields();
            e
        })
}

fn name_taken() -> ApiError {
    let mut e = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION",
        "Some fields are invalid.",
    );
    e.fields.push((
        "name".into(),
        "A key with this name already exists in this channel.".into(),
    ));
    e
}

fn write_error(e: WriteError) -> ApiError {
    match e {
        WriteError::LimitReached => ApiError::new(
            StatusCode::CONFLICT,
            "LIMIT_REACHED",
            "The channel has reached its key limit.",
        ),
        WriteError::NameTaken => name_taken(),
        WriteError::NotFound => ApiError::not_found(),
        WriteError::Db(e) => e.into(),
    }
}

pub async fn create_key(
    state: Data<AppState>,
    caller: ApiCaller,
    body: Json<KeyBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(SCOPE_WRITE)?;
    let body = body.into_inner();
    let channel = reachable_channel(&state, &caller, body.channel_id).await?;
    let input = body.merge(KeyInput {
        enabled: true,
        ..KeyInput::default()
    });
    let settings = parse_settings(&state, &input, None)?;
    let (plain, parts) = PlainKey::generate(&state.settings.key_prefix);
    let hash = plain.hash();
    let actor = caller.actor();
    let default_limit = state.settings.max_keys_per_channel;
    let key = state
        .change_keys(move |c| {
            keys::insert(
                c,
                &actor,
                &NewKey {
                    channel_id: channel.id,
                    channel_name: &channel.name,
                    default_limit,
                    settings: &settings,
                    parts: &parts,
                    hash: &hash,
                },
            )
        })
        .await?
        .map_err(write_error)?;
    // The one response that carries the plaintext.
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(serde_json::json!({ "key": plain.reveal(), "data": KeyJson::of(&key) })))
}

pub async fn update_key(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<String>,
    body: Json<KeyBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(SCOPE_WRITE)?;
    let (key, channel) = reachable_key(&state, &caller, path.into_inner()).await?;
    let body = body.into_inner();
    if body.channel_id.is_some_and(|c| c != key.channel_id) {
        return Err(ApiError::bad_request(
            "A key cannot move to another channel.",
        ));
    }
    let settings = parse_settings(&state, &body.merge(key.as_input()), key.expires_at)?;
    let actor = caller.actor();
    let kid = key.key_id.clone();
    let updated = state
        .change_keys(move |c| keys::update(c, &actor, &kid, &channel.name, &settings))
        .await?
        .map_err(write_error)?;
    Ok(HttpResponse::Ok().json(KeyJson::of(&updated)))
}

pub async fn set_enabled(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(SCOPE_WRITE)?;
    let (key_id, action) = path.into_inner();
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "Unknown action.",
            ));
        }
    };
    let (key, channel) = reachable_key(&state, &caller, key_id).await?;
    let actor = caller.actor();
    let changed = state
        .change_keys(move |c| keys::set_enabled(c, &actor, &key.key_id, &channel.name, enabled))
        .await?
        .map_err(write_error)?;
    Ok(HttpResponse::Ok().json(KeyJson::of(&changed)))
}

pub async fn delete_key(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(SCOPE_WRITE)?;
    let (key, channel) = reachable_key(&state, &caller, path.into_inner()).await?;
    let actor = caller.actor();
    state
        .change_keys(move |c| keys::delete(c, &actor, &key.key_id, &channel.name))
        .await?
        .map_err(write_error)?;
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
    body: actix_web::web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(SCOPE_WRITE)?;
    // The body is optional, but a body that is there must be right.
    let body: RollBody = if body.iter().all(u8::is_ascii_whitespace) {
        RollBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid JSON body: {}",
                crate::routes::redact_quoted(&e.to_string())
            ))
        })?
    };
    let grace_text = body.grace.unwrap_or_else(|| "24h".into());
    let grace = crate::domain::grace::Grace::parse(&grace_text).ok_or_else(|| {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            "Some fields are invalid.",
        );
        e.fields
            .push(("grace".into(), "Use now, 1h, 24h or 7d.".into()));
        e
    })?;
    let (key, channel) = reachable_key(&state, &caller, path.into_inner()).await?;
    if key.rolled_to_key_id.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_ROLLED",
            "This key was already rolled; roll its successor.",
        ));
    }
    let (plain, parts) = PlainKey::generate(&state.settings.key_prefix);
    let hash = plain.hash();
    let actor = caller.actor();
    let ends = db::now() + grace.duration();
    let (old, new) = state
        .change_keys(move |c| {
            keys::roll(c, &actor, &key.key_id, &channel.name, ends, &parts, &hash)
        })
        .await?
        .map_err(write_error)?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(serde_json::json!({ "key": plain.reveal(), "data": KeyJson::of(&new), "old": KeyJson::of(&old) })))
}
