//! What a key did: its usage from rollups (charts, totals per outcome), its raw request
//! log and its POSTback deliveries.

use crate::db::channels::Channel;
use crate::db::keys::ApiKey;
use crate::db::outbox::{self, OutboxRow};
use crate::db::rollups::{self, Period};
use crate::db::usage::{self, RequestRow, StatusFilter};
use crate::domain::role::Action;
use crate::state::AppState;

use super::actor::Actor;
use super::error::AppResult;
use super::policy::SCOPE_READ;
use super::run::read;

pub struct Activity {
    /// Newest first, at most one page.
    pub log: Vec<RequestRow>,
    /// Whether older rows exist.
    pub more: bool,
    /// Uses per hour (bucket start, count) over the last 48 hours, from rollups.
    pub hours: Vec<(time::PrimitiveDateTime, i64)>,
    /// Uses per day over the last 30 days, from rollups.
    pub days: Vec<(time::PrimitiveDateTime, i64)>,
    /// Totals per outcome over the last 30 days (`VALID`, `API_2XX`, …), largest first.
    pub outcomes: Vec<(String, i64)>,
    pub deliveries: Vec<OutboxRow>,
    /// During a signing-secret roll: until when the previous secret also signs.
    pub secret_overlap_ends: Option<time::PrimitiveDateTime>,
}

pub async fn key_activity(
    state: &AppState,
    actor: &Actor,
    key_id: String,
    status: Option<StatusFilter>,
    before: Option<i64>,
    page: i64,
) -> AppResult<(ApiKey, Channel, Activity)> {
    actor.require(Action::ViewKeys)?;
    actor.require_scope(SCOPE_READ)?;
    let (key, channel) = super::keys::find(state, actor, key_id).await?;
    let (id, otr) = (key.id, key.off_the_record);
    let now = crate::db::now();
    let hours_from = Period::Hour.bucket_of(now) - time::Duration::hours(47);
    let days_from = Period::Day.bucket_of(now) - time::Duration::days(29);
    let activity = read(state, move |c| {
        let mut log = if otr {
            Vec::new()
        } else {
            usage::log_page(c, id, status, before, page + 1)?
        };
        let more = log.len() as i64 > page;
        log.truncate(usize::try_from(page).unwrap_or(0));
        Ok(Activity {
            log,
            more,
            hours: rollups::series(c, id, Period::Hour, hours_from)?,
            days: rollups::series(c, id, Period::Day, days_from)?,
            outcomes: rollups::outcomes(c, id, days_from)?,
            deliveries: outbox::recent_for_key(c, id, 20)?,
            secret_overlap_ends: crate::db::postback_secrets::overlap_ends(c, id)?,
        })
    })
    .await?;
    Ok((key, channel, activity))
}
