//! The audit log page: admins see everything, support staff see key events.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::app::{self, audit::ACTIONS};
use crate::db::audit::AuditFilter;
use crate::domain::audit_query::{AuditParams, AuditQuery};
use crate::domain::role::Action;
use crate::error::{AppError, render};
use crate::session::CurrentUser;
use crate::state::AppState;
use crate::views::audit::{AuditFilterValues, AuditPage, AuditRow};

const PAGE: i64 = 50;

pub async fn list_audit(
    state: web::Data<AppState>,
    user: CurrentUser,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ViewAudit)?;
    let keys_only = !user.may(Action::ManageUsers);
    let q = AuditQuery::parse(&params, ACTIONS).map_err(AppError::BadRequest)?;
    let before = q.before;
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        channel_id: q.channel_id,
        key_id: q.key_id,
        from: q.from,
        to: q.to,
        keys_only,
    };
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
