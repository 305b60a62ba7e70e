//! The audit log page: admins see everything, support staff see key events.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use time::macros::format_description;

use crate::app::{self, events::ACTIONS};
use crate::db::audit::AuditFilter;
use crate::domain::role::Action;
use crate::error::{AppError, render};
use crate::session::CurrentUser;
use crate::state::AppState;
use crate::views::audit::{AuditFilterValues, AuditPage, AuditRow};

const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    channel: Option<String>,
    key: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
}

fn date(s: &Option<String>) -> Option<time::PrimitiveDateTime> {
    let s = s.as_deref()?.trim();
    time::Date::parse(s, &format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight())
}

fn text(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(100).collect())
}

pub async fn list_audit(
    state: web::Data<AppState>,
    user: CurrentUser,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ViewAudit)?;
    let keys_only = !user.may(Action::ManageUsers);
    let filter = AuditFilter {
        actor: text(&params.actor),
        action: text(&params.action).filter(|a| ACTIONS.contains(&a.as_str())),
        channel_id: params.channel.as_deref().and_then(|c| c.parse().ok()),
        key_id: text(&params.key),
        from: date(&params.from),
        to: date(&params.to).map(|d| d + time::Duration::days(1)),
        keys_only,
    };
    let before = params.before.filter(|b| *b > 0);
    let (mut events, chans) =
        app::audit::list(&state, &user.actor(), filter, before, PAGE + 1).await?;
    let more = events.len() as i64 > PAGE;
    events.truncate(PAGE as usize);
    let values = AuditFilterValues {
        actor: params.actor.clone().unwrap_or_default(),
        action: params.action.clone().unwrap_or_default(),
        channel: params.channel.clone().unwrap_or_default(),
        key: params.key.clone().unwrap_or_default(),
        from: params.from.clone().unwrap_or_default(),
        to: params.to.clone().unwrap_or_default(),
    };
    let base: Vec<(&str, String)> = [
        ("actor", &values.actor),
        ("action", &values.action),
        ("channel", &values.channel),
        ("key", &values.key),
        ("from", &values.from),
        ("to", &values.to),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k, v.clone()))
    .collect();
    let href = |before: Option<i64>| {
        let mut pairs = base.clone();
        if let Some(b) = before {
            pairs.push(("before", b.to_string()));
        }
        let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if qs.is_empty() {
            "/audit".to_owned()
        } else {
            format!("/audit?{qs}")
        }
    };
    let page = AuditPage {
        shell: user.shell("/audit"),
        older_href: if more {
            events.last().map(|e| href(Some(e.id)))
        } else {
            None
        },
        newest_href: before.map(|_| href(None)),
        rows: events.iter().map(AuditRow::new).collect(),
        values,
        actions: if keys_only {
            ACTIONS
                .iter()
                .copied()
                .filter(|a| a.starts_with("key."))
                .collect()
        } else {
            ACTIONS.to_vec()
        },
        channels: chans
            .into_iter()
            .filter(|c| !c.is_system || user.may(Action::UseSystemChannel))
            .map(|c| (c.id, c.name))
            .collect(),
        keys_only,
    };
    render(StatusCode::OK, &page)
}
