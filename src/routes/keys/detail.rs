//! The key detail view: settings, last use, usage charts, request log, deliveries.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::common::permissions;
use crate::app;
use crate::db::usage::StatusFilter;
use crate::error::{AppError, render};
use crate::htmx::HxRequest;
use crate::session::{self as sess, CurrentUser};
use crate::state::AppState;
use crate::views::key_detail::{DeliveryRow, KeyDetailPage, LogRow, RequestLog, charts};

/// The request log's address: `?status=2xx|4xx|5xx` and `?before=<request id>`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LogParams {
    pub status: Option<String>,
    pub before: Option<i64>,
}

impl LogParams {
    /// The status filter and the page (requests older than `before`); anything else
    /// is refused with a message (the page's own links only ever send these).
    pub fn parse(&self) -> Result<(Option<StatusFilter>, Option<i64>), String> {
        let status =
            match self.status.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(s) => Some(StatusFilter::parse(s).ok_or_else(|| {
                    "The request log's status filter is 2xx, 4xx or 5xx.".to_owned()
                })?),
            };
        match self.before {
            Some(b) if b <= 0 => {
                Err("The request log's page starts before a positive request id.".to_owned())
            }
            before => Ok((status, before)),
        }
    }
}

const LOG_PAGE: i64 = 50;

pub async fn show_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    path: web::Path<String>,
    params: web::Query<LogParams>,
) -> Result<HttpResponse, AppError> {
    let (status, before) = params.parse().map_err(AppError::BadRequest)?;
    let now = crate::db::now();
    let (key, channel, activity) = app::usage::key_activity(
        &state,
        &user.actor(),
        path.into_inner(),
        status,
        before,
        LOG_PAGE,
    )
    .await?;
    let base = format!("/keys/{}", key.key_id);
    let with_status = |extra: &str| match (status, extra.is_empty()) {
        (Some(s), true) => format!("{base}?status={}", s.as_str()),
        (Some(s), false) => format!("{base}?status={}&{extra}", s.as_str()),
        (None, true) => base.clone(),
        (None, false) => format!("{base}?{extra}"),
    };
    let log = RequestLog {
        key_id: key.key_id.clone(),
        older_href: if activity.more {
            activity
                .log
                .last()
                .map(|r| with_status(&format!("before={}", r.id)))
        } else {
            None
        },
        newest_href: before.map(|_| with_status("")),
        rows: activity.log.iter().map(LogRow::new).collect(),
        status,
        off_the_record: key.off_the_record,
    };
    if hx.targets("request-log") {
        return render(StatusCode::OK, &log);
    }
    let shell = user
        .shell("/channels")
        .with_flash(sess::take_flash(&session));
    let mut page = KeyDetailPage::new(
        shell,
        &key,
        &channel,
        now,
        charts(&activity.days, &activity.hours, now),
        log,
        permissions(&user),
    );
    page.deliveries = activity
        .deliveries
        .iter()
        .map(|d| DeliveryRow::new(d, now))
        .collect();
    page.outcomes = activity.outcomes.clone();
    page.rate_limits = window_use(&state, &key);
    page.credits = key.credits.map(|c| c + state.credits.held(key.id));
    page.secret_overlap_ends = activity.secret_overlap_ends.map(crate::views::format_time);
    render(StatusCode::OK, &page)
}

/// Each rate limit with its use in the current window, as this instance counts it
/// (with Redis the count is shared there).
fn window_use(state: &AppState, key: &crate::db::keys::ApiKey) -> Vec<(String, String)> {
    let limits = key.limits();
    match state.limiter.peek(key.id, &limits) {
        Some(states) => states
            .iter()
            .map(|s| {
                let used = s.limit.limit - s.remaining;
                let full = if used == 0 {
                    String::new()
                } else {
                    format!(" · all available again in {} s", s.reset_secs)
                };
                (
                    s.limit.text(),
                    format!("{used} of {} used now{full}", s.limit.limit),
                )
            })
            .collect(),
        None => limits
            .iter()
            .map(|l| {
                (
                    l.text(),
                    "counted in Redis, shared by every instance".to_owned(),
                )
            })
            .collect(),
    }
}
