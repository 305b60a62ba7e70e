//! The audit line of each [`Event`]: what `Recorder::emit` writes to the audit log.

use crate::db::audit;
use crate::db::keys::ApiKey;
use crate::domain::clock::format_time;

use super::events::Event;
use super::key_text::{describe, diff, exported, imported, leaked};

fn key_line<'a>(
    action: &'a str,
    key: &'a ApiKey,
    channel: &'a str,
    details: String,
) -> audit::Event<'a> {
    audit::Event {
        action,
        channel_id: Some(key.channel_id),
        channel_name: Some(channel),
        key_id: Some(&key.key_id),
        key_name: Some(&key.name),
        details,
    }
}

fn plain_line(action: &str, details: String) -> audit::Event<'_> {
    audit::Event {
        action,
        details,
        ..audit::Event::default()
    }
}

impl<'a> Event<'a> {
    pub(super) fn audit_line(&self) -> audit::Event<'a> {
        match *self {
            Event::KeyCreated { key, channel } => {
                key_line("key.create", key, channel, describe(key))
            }
            Event::KeyUpdated {
                before,
                after,
                channel,
            } => {
                let changes = diff(before, after);
                let details = if changes.is_empty() {
                    "no changes".into()
                } else {
                    changes.join("; ")
                };
                key_line("key.update", after, channel, details)
            }
            Event::CreditsChanged {
                before,
                after,
                channel,
                what,
            } => {
                let f =
                    |c: Option<i64>| c.map_or_else(|| "unlimited".to_owned(), |c| c.to_string());
                key_line(
                    "key.credits",
                    after,
                    channel,
                    format!(
                        "credits {what}: {} → {}",
                        f(before.credits),
                        f(after.credits)
                    ),
                )
            }
            Event::KeyRenamed {
                before,
                after,
                channel,
            } => key_line(
                "key.rename",
                after,
                channel,
                format!("renamed \"{}\" to \"{}\"", before.name, after.name),
            ),
            Event::KeyActivated { key, channel } => {
                key_line("key.activate", key, channel, "activated".into())
            }
            Event::KeyDeactivated { key, channel } => {
                key_line("key.deactivate", key, channel, "deactivated".into())
            }
            Event::KeyDeleted { key, channel } => {
                key_line("key.delete", key, channel, "deleted".into())
            }
            Event::KeyRolled { old, new, channel } => {
                let mut line = key_line(
                    "key.roll",
                    old,
                    channel,
                    format!(
                        "rolled to {}; the old key works until {}",
                        new.key_id,
                        old.roll_ends_at.map_or_else(String::new, format_time)
                    ),
                );
                line.key_name = Some(&new.name);
                line
            }
            Event::KeyExpiring {
                key,
                channel,
                days_left,
            } => key_line(
                "key.expiring",
                key,
                channel,
                format!(
                    "expires {} ({days_left} {} left); POSTback reminder queued",
                    key.expires_at.map_or_else(String::new, format_time),
                    if days_left == 1 { "day" } else { "days" }
                ),
            ),
            Event::KeyImported { key, channel } => {
                key_line("key.import", key, channel, imported(key))
            }
            Event::KeyLeaked {
                key,
                channel,
                url,
                reporter,
                deactivated,
            } => key_line("key.leak", key, channel, leaked(url, reporter, deactivated)),
            Event::KeysExported {
                channel,
                filter,
                format,
                count,
            } => audit::Event {
                action: "key.export",
                channel_id: channel.map(|c| c.0),
                channel_name: channel.map(|c| c.1),
                details: exported(count, format, filter),
                ..audit::Event::default()
            },
            Event::PostbackTest { key, channel } => key_line(
                "key.postback_test",
                key,
                channel,
                "queued a POSTback test event".into(),
            ),
            Event::PostbackResent {
                key,
                channel,
                event_type,
            } => key_line(
                "key.postback_resend",
                key,
                channel,
                format!("queued the {event_type} POSTback again"),
            ),
            Event::PostbackSecretRolled {
                key,
                channel,
                overlap_ends,
            } => key_line(
                "key.postback_secret",
                key,
                channel,
                format!(
                    "rolled the POSTback signing secret; the old one also signs until {}",
                    format_time(overlap_ends)
                ),
            ),
            Event::PostbackGone {
                before,
                key,
                channel,
            } => key_line(
                "key.postback_off",
                key,
                channel,
                format!(
                    "POSTback turned off: {} answered 410 Gone",
                    before.postback_url.as_deref().unwrap_or("the receiver")
                ),
            ),
            Event::ChannelCreated { channel } => audit::Event {
                action: "channel.create",
                channel_id: Some(channel.id),
                channel_name: Some(&channel.name),
                details: format!(
                    "created channel \"{}\" (limit {})",
                    channel.name,
                    limit_text(channel.key_limit)
                ),
                ..audit::Event::default()
            },
            Event::ChannelUpdated { before, after } => {
                let mut changes = Vec::new();
                if before.name != after.name {
                    changes.push(format!("renamed \"{}\" to \"{}\"", before.name, after.name));
                }
                changes.push(format!("limit {}", limit_text(after.key_limit)));
                audit::Event {
                    action: "channel.update",
                    channel_id: Some(after.id),
                    channel_name: Some(&after.name),
                    details: changes.join(", "),
                    ..audit::Event::default()
                }
            }
            Event::UserCreated { user } => plain_line(
                "user.create",
                format!("created user {} ({})", user.username, user.role()),
            ),
            Event::UserRoleChanged { user, role } => {
                plain_line("user.role", format!("{} is now {role}", user.username))
            }
            Event::UserDisabled { user } => {
                plain_line("user.disable", format!("disabled {}", user.username))
            }
            Event::UserEnabled { user } => {
                plain_line("user.enable", format!("enabled {}", user.username))
            }
            Event::PasswordReset { user } => plain_line(
                "user.password",
                format!("reset the password of {}", user.username),
            ),
            Event::LoggedIn => plain_line("login", "logged in".into()),
            Event::LoginFailed => plain_line("login.failed", "failed login".into()),
            Event::LoginThrottled { seconds } => plain_line(
                "login.throttled",
                format!("refused after repeated failures (latest wait {seconds} s)"),
            ),
            Event::LoggedOut => plain_line("logout", "logged out".into()),
            Event::AccountUnlocked { username, cleared } => plain_line(
                "user.unlock",
                format!("unlocked {username} ({cleared} failed logins forgotten)"),
            ),
            Event::TwoFactorEnabled => plain_line(
                "user.2fa.enable",
                "turned on two-factor authentication".into(),
            ),
            Event::TwoFactorReset { user } => plain_line(
                "user.2fa.reset",
                format!("reset two-factor authentication of {}", user.username),
            ),
            Event::TwoFactorRequirement { rule } => plain_line(
                "settings.2fa",
                format!("two-factor authentication required for: {rule}"),
            ),
            Event::RecoveryCodeUsed { left } => plain_line(
                "login.recovery",
                format!("logged in with a recovery code ({left} left)"),
            ),
        }
    }
}

fn limit_text(limit: Option<i64>) -> String {
    limit.map_or_else(|| "default".to_owned(), |n| n.to_string())
}
