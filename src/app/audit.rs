//! Reading the audit log: admins see everything, support staff see key events.

use crate::db::audit::{self, AuditEvent, AuditFilter};
use crate::db::channels::{self, Channel};
use crate::domain::role::Action;
use crate::state::AppState;

use super::actor::Actor;
use super::error::AppResult;
use super::run::read;

/// Every audit action, for the audit page's filter.
pub const ACTIONS: &[&str] = &[
    "login",
    "login.failed",
    "login.throttled",
    "logout",
    "login.recovery",
    "channel.create",
    "channel.update",
    "key.create",
    "key.update",
    "key.rename",
    "key.activate",
    "key.deactivate",
    "key.delete",
    "key.roll",
    "key.expiring",
    "key.import",
    "key.leak",
    "key.export",
    "key.postback_test",
    "key.postback_resend",
    "key.postback_secret",
    "key.postback_off",
    "user.create",
    "user.role",
    "user.disable",
    "user.enable",
    "user.password",
    "user.unlock",
    "user.2fa.enable",
    "user.2fa.reset",
    "settings.2fa",
];

/// A page of events (newest first, older than `before`) and the channels to filter by.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    mut filter: AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> AppResult<(Vec<AuditEvent>, Vec<Channel>)> {
    actor.require(Action::ViewAudit)?;
    filter.keys_only = actor.require(Action::ManageUsers).is_err();
    read(state, move |c| {
        Ok((audit::list(c, &filter, before, limit)?, channels::list(c)?))
    })
    .await
}
