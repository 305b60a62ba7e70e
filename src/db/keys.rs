//! API keys: the row, lookups, and the single-statement writes a use case combines in
//! its transaction (`app::keys`). Nothing here audits, records changes or queues
//! events: `app::events` does that for every write, in the same transaction.
//!
//! The channel's `key_count` counts keys that hold a slot under its limit. A key holds
//! its slot from creation until it is deleted, or until its rolling grace is over
//! ([`retire_ended_rolls`]); [`reserve_slot`] takes a slot with a conditional UPDATE,
//! which both enforces the limit under concurrency (the row lock / SQLite's write lock
//! serialises writers) and makes the transaction start with a write.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::{api_keys, channels};
use super::{DbConnection, DbResult, now};
use crate::domain::key::{KeyHash, KeyParts};
use crate::domain::key_settings::{CreditsChange, KeySettings};
use crate::domain::limits::{self, RateLimit, Refill};
use crate::domain::status::{KeyStatus, Lifecycle};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: i64,
    pub channel_id: i64,
    pub key_id: String,
    pub key_hash: String,
    pub last_four: String,
    pub prefix: String,
    pub name: String,
    pub name_lower: String,
    pub description: Option<String>,
    pub scopes: String,
    pub allowed_cidrs: String,
    pub postback_url: Option<String>,
    pub off_the_record: bool,
    pub enabled: bool,
    pub expires_at: Option<PrimitiveDateTime>,
    pub created_at: PrimitiveDateTime,
    pub created_by: String,
    pub updated_at: PrimitiveDateTime,
    pub last_used_at: Option<PrimitiveDateTime>,
    pub last_used_ip: Option<String>,
    pub last_used_order: i64,
    pub roll_ends_at: Option<PrimitiveDateTime>,
    pub rolled_to_key_id: Option<String>,
    pub expiry_notice_sent_at: Option<PrimitiveDateTime>,
    pub deactivated_by_person: bool,
    pub holds_slot: bool,
    pub postback_gone_at: Option<PrimitiveDateTime>,
    /// Requests in the last 24 hours / 30 days, from rollups (see `db::rollups`).
    pub uses_24h: i64,
    pub uses_30d: i64,
    /// `sha256` / `sha512`: imported from another system by that digest.
    pub imported_as: Option<String>,
    /// When a leak report last named this key.
    pub leaked_at: Option<PrimitiveDateTime>,
    /// Stored rate limits (`domain::limits::stored_limits`).
    pub rate_limits: String,
    /// A compact JSON object.
    pub metadata: Option<String>,
    /// Credits not reserved by any instance; `None`: no credit limit (`db::credits`).
    pub credits: Option<i64>,
    pub credit_epoch: i64,
    pub refill_period: Option<String>,
    pub refill_amount: Option<i64>,
    pub refilled_at: Option<PrimitiveDateTime>,
}

impl ApiKey {
    pub fn scope_list(&self) -> Vec<&str> {
        self.scopes.split_whitespace().collect()
    }

    pub fn cidr_list(&self) -> Vec<&str> {
        self.allowed_cidrs.split_whitespace().collect()
    }

    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            active: self.enabled,
            expires_at: self.expires_at,
            roll_ends_at: self.roll_ends_at,
        }
    }

    pub fn status(&self, at: PrimitiveDateTime) -> KeyStatus {
        self.lifecycle().status(at)
    }

    pub fn limits(&self) -> Vec<RateLimit> {
        limits::read_stored_limits(&self.rate_limits)
    }

    pub fn refill(&self) -> Option<Refill> {
        Some(Refill {
            period: limits::Period::parse(self.refill_period.as_deref()?)?,
            amount: self.refill_amount?,
        })
    }

    /// When credits are next refilled.
    pub fn next_refill(&self, now: PrimitiveDateTime) -> Option<PrimitiveDateTime> {
        self.refill().map(|r| r.period.next(now))
    }

    /// The key's current settings (its credit balance left as it is).
    pub fn settings(&self) -> KeySettings {
        KeySettings {
            name: self.name.clone(),
            description: self.description.clone(),
            expires_at: self.expires_at,
            scopes: self.scope_list().into_iter().map(str::to_owned).collect(),
            cidrs: self
                .cidr_list()
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            postback_url: self.postback_url.clone(),
            off_the_record: self.off_the_record,
            enabled: self.enabled,
            rate_limits: self.limits(),
            credits: CreditsChange::Keep,
            refill: self.refill(),
            metadata: self.metadata.clone(),
        }
    }

    /// The key's settings as form/API input, for editing.
    pub fn as_input(&self) -> crate::domain::key_settings::KeyInput {
        crate::domain::key_settings::KeyInput {
            name: self.name.clone(),
            description: self.description.clone().unwrap_or_default(),
            expires_at: self
                .expires_at
                .map(crate::domain::clock::input_time)
                .unwrap_or_default(),
            scopes: self.scope_list().into_iter().map(str::to_owned).collect(),
            cidrs: self.cidr_list().into_iter().map(str::to_owned).collect(),
            postback_url: self.postback_url.clone().unwrap_or_default(),
            off_the_record: self.off_the_record,
            enabled: self.enabled,
            rate_limits: limits::limits_text(&self.limits()),
            credits: self.credits.map(|c| c.to_string()).unwrap_or_default(),
            credits_was: Some(self.credits.map(|c| c.to_string()).unwrap_or_default()),
            refill: self
                .refill()
                .map(|r| r.period.as_str().to_owned())
                .unwrap_or_default(),
            refill_amount: self
                .refill_amount
                .map(|a| a.to_string())
                .unwrap_or_default(),
            metadata: limits::metadata_text(self.metadata.as_deref()),
        }
    }
}

pub fn find_by_key_id(conn: &mut DbConnection, key_id: &str) -> DbResult<Option<ApiKey>> {
    Ok(api_keys::table
        .filter(api_keys::key_id.eq(key_id))
        .select(ApiKey::as_select())
        .first(conn)
        .optional()?)
}

/// A key and its channel by key id, in one indexed query (the API's read path).
pub fn find_with_channel_by_key_id(
    conn: &mut DbConnection,
    key_id: &str,
) -> DbResult<Option<(ApiKey, super::channels::Channel)>> {
    Ok(api_keys::table
        .inner_join(channels::table)
        .filter(api_keys::key_id.eq(key_id))
        .select((ApiKey::as_select(), super::channels::Channel::as_select()))
        .first(conn)
        .optional()?)
}

/// A key and its channel, by the key's hash (what verification caches).
pub fn find_with_channel(
    conn: &mut DbConnection,
    hash: &KeyHash,
) -> DbResult<Option<(ApiKey, super::channels::Channel)>> {
    Ok(api_keys::table
        .inner_join(channels::table)
        .filter(api_keys::key_hash.eq(hash.as_str()))
        .select((ApiKey::as_select(), super::channels::Channel::as_select()))
        .first(conn)
        .optional()?)
}

/// Whether a name (compared case-insensitively) is taken in the channel.
pub fn name_taken(conn: &mut DbConnection, channel_id: i64, name: &str) -> DbResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        api_keys::table
            .filter(api_keys::channel_id.eq(channel_id))
            .filter(api_keys::name_lower.eq(name.to_lowercase())),
    ))
    .get_result(conn)?)
}

diesel::define_sql_function! {
    /// `COALESCE(nullable, fallback)` for the channel's own or the default limit.
    fn coalesce(x: diesel::sql_types::Nullable<diesel::sql_types::BigInt>, y: diesel::sql_types::BigInt) -> diesel::sql_types::BigInt;
}

/// Takes one slot under the channel's limit; false when the channel is full (after
/// freeing the slots of rolled keys whose grace is over).
pub fn reserve_slot(
    conn: &mut DbConnection,
    channel_id: i64,
    default_limit: i64,
) -> DbResult<bool> {
    let take = |conn: &mut DbConnection| -> DbResult<bool> {
        Ok(diesel::update(channels::table.find(channel_id))
            .filter(channels::key_count.lt(coalesce(channels::key_limit, default_limit)))
            .set(channels::key_count.eq(channels::key_count + 1))
            .execute(conn)?
            == 1)
    };
    if take(conn)? {
        return Ok(true);
    }
    if retire_ended_rolls(conn, Some(channel_id))? == 0 {
        return Ok(false);
    }
    take(conn)
}

/// Rolled keys whose grace is over stop holding a slot; returns how many did.
pub fn retire_ended_rolls(conn: &mut DbConnection, channel: Option<i64>) -> DbResult<usize> {
    let mut q = diesel::update(api_keys::table)
        .filter(api_keys::holds_slot.eq(true))
        .filter(api_keys::roll_ends_at.le(now()))
        .into_boxed();
    if let Some(c) = channel {
        q = q.filter(api_keys::channel_id.eq(c));
    }
    let retired: Vec<i64> = q
        .set(api_keys::holds_slot.eq(false))
        .returning(api_keys::channel_id)
        .get_results(conn)?;
    let mut per_channel: Vec<(i64, i64)> = Vec::new();
    for c in &retired {
        match per_channel.iter_mut().find(|(id, _)| id == c) {
            Some((_, n)) => *n += 1,
            None => per_channel.push((*c, 1)),
        }
    }
    for (c, n) in per_channel {
        diesel::update(channels::table.find(c))
            .set(channels::key_count.eq(channels::key_count - n))
            .execute(conn)?;
    }
    Ok(retired.len())
}

pub struct NewKey<'a> {
    pub channel_id: i64,
    pub settings: &'a KeySettings,
    pub parts: &'a KeyParts,
    pub hash: &'a KeyHash,
    pub created_by: &'a str,
    /// A successor inherits its predecessor's person-made deactivation.
    pub deactivated_by_person: bool,
}

/// The columns a key's settings fill, for both insert and update.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = api_keys, treat_none_as_null = true)]
struct SettingsColumns<'a> {
    name: &'a str,
    name_lower: String,
    description: Option<&'a str>,
    scopes: String,
    allowed_cidrs: String,
    postback_url: Option<&'a str>,
    off_the_record: bool,
    enabled: bool,
    expires_at: Option<PrimitiveDateTime>,
    rate_limits: String,
    metadata: Option<&'a str>,
    refill_period: Option<&'static str>,
    refill_amount: Option<i64>,
}

impl<'a> SettingsColumns<'a> {
    fn of(s: &'a KeySettings) -> Self {
        SettingsColumns {
            name: &s.name,
            name_lower: s.name.to_lowercase(),
            description: s.description.as_deref(),
            scopes: s.scopes_text(),
            allowed_cidrs: s.cidrs_text(),
            postback_url: s.postback_url.as_deref(),
            off_the_record: s.off_the_record,
            enabled: s.enabled,
            expires_at: s.expires_at,
            rate_limits: limits::stored_limits(&s.rate_limits),
            metadata: s.metadata.as_deref(),
            refill_period: s.refill.map(|r| r.period.as_str()),
            refill_amount: s.refill.map(|r| r.amount),
        }
    }
}

/// Inserts the row (the caller has reserved its slot). A name taken in the channel
/// surfaces as a unique violation.
pub fn insert(conn: &mut DbConnection, new: &NewKey<'_>) -> DbResult<ApiKey> {
    let t = now();
    Ok(diesel::insert_into(api_keys::table)
        .values((
            api_keys::channel_id.eq(new.channel_id),
            api_keys::key_id.eq(&new.parts.key_id),
            api_keys::key_hash.eq(new.hash.as_str()),
            api_keys::last_four.eq(&new.parts.last_four),
            api_keys::prefix.eq(&new.parts.prefix),
            SettingsColumns::of(new.settings),
            api_keys::created_at.eq(t),
            api_keys::created_by.eq(new.created_by),
            api_keys::updated_at.eq(t),
            api_keys::last_used_order.eq(0),
            api_keys::deactivated_by_person.eq(new.deactivated_by_person),
            api_keys::holds_slot.eq(true),
            api_keys::credits.eq(match new.settings.credits {
                CreditsChange::Set(n) => Some(n),
                CreditsChange::Keep | CreditsChange::Unlimited => None,
            }),
            api_keys::refilled_at.eq(Some(t)),
        ))
        .returning(api_keys::all_columns)
        .get_result(conn)?)
}

/// Reads a key inside a write transaction after taking its write lock: a no-op UPDATE
/// first (SQLite: the transaction starts with a write; PostgreSQL: the row is locked
/// until commit), so what is read cannot change before the transaction ends.
pub fn lock(conn: &mut DbConnection, key_id: &str) -> DbResult<Option<ApiKey>> {
    let locked = diesel::update(api_keys::table.filter(api_keys::key_id.eq(key_id)))
        .set(api_keys::key_id.eq(api_keys::key_id))
        .execute(conn)?;
    if locked == 0 {
        return Ok(None);
    }
    find_by_key_id(conn, key_id)
}

/// A key by its row id, locked for writing.
pub fn lock_by_id(conn: &mut DbConnection, id: i64) -> DbResult<Option<ApiKey>> {
    let locked = diesel::update(api_keys::table.find(id))
        .set(api_keys::id.eq(api_keys::id))
        .execute(conn)?;
    if locked == 0 {
        return Ok(None);
    }
    Ok(api_keys::table
        .find(id)
        .select(ApiKey::as_select())
        .first(conn)
        .optional()?)
}

/// A receiver answered 410 Gone: the POSTback is off until someone sets a URL again.
pub fn turn_off_postback(conn: &mut DbConnection, id: i64) -> DbResult<ApiKey> {
    Ok(diesel::update(api_keys::table.find(id))
        .set((
            api_keys::postback_url.eq(None::<String>),
            api_keys::postback_gone_at.eq(Some(now())),
            api_keys::updated_at.eq(now()),
        ))
        .returning(api_keys::all_columns)
        .get_result(conn)?)
}

/// Replaces every setting of a key (not the key itself). Setting a POSTback URL turns
/// POSTbacks back on after a 410.
pub fn update_settings(
    conn: &mut DbConnection,
    id: i64,
    s: &KeySettings,
    deactivated_by_person: bool,
) -> DbResult<ApiKey> {
    if s.postback_url.is_some() {
        diesel::update(api_keys::table.find(id))
            .set(api_keys::postback_gone_at.eq(None::<PrimitiveDateTime>))
            .execute(conn)?;
    }
    super::credits::apply(conn, id, s.credits, now())?;
    Ok(diesel::update(api_keys::table.find(id))
        .set((
            SettingsColumns::of(s),
            api_keys::deactivated_by_person.eq(deactivated_by_person),
            api_keys::updated_at.eq(now()),
        ))
        .returning(api_keys::all_columns)
        .get_result(conn)?)
}

pub fn rename(conn: &mut DbConnection, id: i64, name: &str) -> DbResult<ApiKey> {
    Ok(diesel::update(api_keys::table.find(id))
        .set((
            api_keys::name.eq(name),
            api_keys::name_lower.eq(name.to_lowercase()),
            api_keys::updated_at.eq(now()),
        ))
        .returning(api_keys::all_columns)
        .get_result(conn)?)
}

/// Activates or deactivates; `deactivated_by_person` marks a deactivation no API key
/// may undo.
pub fn set_active(
    conn: &mut DbConnection,
    id: i64,
    active: bool,
    deactivated_by_person: bool,
) -> DbResult<ApiKey> {
    Ok(diesel::update(api_keys::table.find(id))
        .set((
            api_keys::enabled.eq(active),
            api_keys::deactivated_by_person.eq(deactivated_by_person),
            api_keys::updated_at.eq(now()),
        ))
        .returning(api_keys::all_columns)
        .get_result(conn)?)
}

/// Deletes a key and gives back its slot.
pub fn delete(conn: &mut DbConnection, id: i64) -> DbResult<ApiKey> {
    let key: ApiKey = diesel::delete(api_keys::table.find(id))
        .returning(api_keys::all_columns)
        .get_result(conn)?;
    if key.holds_slot {
        diesel::update(channels::table.find(key.channel_id))
            .set(channels::key_count.eq(channels::key_count - 1))
            .execute(conn)?;
    }
    Ok(key)
}

/// Marks a key as rolled: renamed, working until `ends`, pointing to its successor.
/// A key whose grace ends at once gives its slot to the successor (`keeps_slot` false).
pub fn mark_rolled(
    conn: &mut DbConnection,
    id: i64,
    name: &str,
    ends: PrimitiveDateTime,
    successor: &str,
    keeps_slot: bool,
) -> DbResult<ApiKey> {
    Ok(diesel::update(api_keys::table.find(id))
        .set((
            api_keys::name.eq(name),
            api_keys::name_lower.eq(name.to_lowercase()),
            api_keys::roll_ends_at.eq(Some(ends)),
            api_keys::rolled_to_key_id.eq(Some(successor)),
            api_keys::holds_slot.eq(keeps_slot),
            api_keys::updated_at.eq(now()),
        ))
        .returning(api_keys::all_columns)
        .get_result(conn)?)
}

/// The highest key id (0 with no keys): where id-range walks stop.
pub fn max_id(conn: &mut DbConnection) -> DbResult<i64> {
    let id: Option<i64> = api_keys::table
        .select(diesel::dsl::max(api_keys::id))
        .first(conn)?;
    Ok(id.unwrap_or(0))
}
