//! Side effects as events. Every write reports what happened as an [`Event`];
//! [`Recorder::emit`] turns it, inside the write's transaction, into
//! - its audit line,
//! - its change records (so every instance's verification cache and remembered totals
//!   follow; a channel rename forgets every key),
//! - its POSTback event in the outbox, when the key has a POSTback URL.
//!
//! and remembers the changes for this instance to forget once the transaction commits
//! (`app::write`).

use crate::db::audit::{self, Who};
use crate::db::changes::{self, Change};
use crate::db::channels::Channel;
use crate::db::keys::ApiKey;
use crate::db::users::User;
use crate::db::{DbConnection, DbResult, outbox};
use crate::domain::clock::format_time;
use crate::domain::role::Role;
use crate::domain::secret::random_base62;

use super::key_text::{describe, diff, exported, imported, leaked};
use super::postback_entry;

/// Everything that can happen, with what the audit line and the event need.
pub enum Event<'a> {
    KeyCreated {
        key: &'a ApiKey,
        channel: &'a str,
    },
    KeyUpdated {
        before: &'a ApiKey,
        after: &'a ApiKey,
        channel: &'a str,
    },
    KeyRenamed {
        before: &'a ApiKey,
        after: &'a ApiKey,
        channel: &'a str,
    },
    KeyActivated {
        key: &'a ApiKey,
        channel: &'a str,
    },
    KeyDeactivated {
        key: &'a ApiKey,
        channel: &'a str,
    },
    KeyDeleted {
        key: &'a ApiKey,
        channel: &'a str,
    },
    KeyRolled {
        old: &'a ApiKey,
        new: &'a ApiKey,
        channel: &'a str,
    },
    /// Credits set, added or subtracted (`what`: "set to 500", "added 100"…).
    CreditsChanged {
        before: &'a ApiKey,
        after: &'a ApiKey,
        channel: &'a str,
        what: &'a str,
    },
    KeyExpiring {
        key: &'a ApiKey,
        channel: &'a str,
        /// Whole days until the expiry, rounded up.
        days_left: i64,
    },
    /// Imported from another system by the digest of its plaintext.
    KeyImported {
        key: &'a ApiKey,
        channel: &'a str,
    },
    /// A leak report named the key (`deactivated`: it was turned off for it).
    KeyLeaked {
        key: &'a ApiKey,
        channel: &'a str,
        url: &'a str,
        reporter: &'a str,
        deactivated: bool,
    },
    /// A list of keys was exported (`channel`: one channel's, else All keys).
    KeysExported {
        channel: Option<(i64, &'a str)>,
        filter: &'a str,
        format: &'a str,
        count: i64,
    },
    /// A person asked for a test event ("Send test event").
    PostbackTest {
        key: &'a ApiKey,
        channel: &'a str,
    },
    /// A person queued one delivery again ("Resend").
    PostbackResent {
        key: &'a ApiKey,
        channel: &'a str,
        event_type: &'a str,
    },
    /// The signing secret was rolled; the old one signs until `overlap_ends`.
    PostbackSecretRolled {
        key: &'a ApiKey,
        channel: &'a str,
        overlap_ends: time::PrimitiveDateTime,
    },
    /// A receiver answered 410 Gone: the key's POSTback is off (`before` had the URL).
    PostbackGone {
        before: &'a ApiKey,
        key: &'a ApiKey,
        channel: &'a str,
    },
    ChannelCreated {
        channel: &'a Channel,
    },
    ChannelUpdated {
        before: &'a Channel,
        after: &'a Channel,
    },
    UserCreated {
        user: &'a User,
    },
    UserRoleChanged {
        user: &'a User,
        role: Role,
    },
    UserDisabled {
        user: &'a User,
    },
    UserEnabled {
        user: &'a User,
    },
    PasswordReset {
        user: &'a User,
    },
    LoggedIn,
    LoginFailed,
    LoginThrottled {
        seconds: i64,
    },
    LoggedOut,
    /// `latchkey user unlock`: an account's failures forgotten.
    AccountUnlocked {
        username: &'a str,
        cleared: usize,
    },
    TwoFactorEnabled,
    TwoFactorReset {
        user: &'a User,
    },
    TwoFactorRequirement {
        rule: &'a str,
    },
    RecoveryCodeUsed {
        left: i64,
    },
}

/// Collects the changes of one transaction's events.
pub struct Recorder {
    who: Who,
    /// The instance that records (its change poller skips its own changes).
    origin: String,
    changes: Vec<Change>,
    queued: bool,
}

impl Recorder {
    pub fn new(who: Who) -> Self {
        Recorder {
            who,
            origin: String::new(),
            changes: Vec::new(),
            queued: false,
        }
    }

    pub fn from_instance(who: Who, origin: &str) -> Self {
        Recorder {
            origin: origin.to_owned(),
            ..Recorder::new(who)
        }
    }

    /// Whether a POSTback event was queued (the worker is woken after the commit).
    pub fn queued(&self) -> bool {
        self.queued
    }

    pub fn into_changes(self) -> Vec<Change> {
        self.changes
    }

    /// Writes the event's audit line, change records and POSTback event.
    pub fn emit(&mut self, conn: &mut DbConnection, event: Event<'_>) -> DbResult<()> {
        if event.is_counted() {
            audit::record_counted(conn, &self.who, event.audit_line())?;
        } else {
            audit::record(conn, &self.who, event.audit_line())?;
        }
        for change in event.changes() {
            changes::record(conn, &change, &self.origin)?;
            self.changes.push(change);
        }
        if let Some((key, channel, event_type)) = event.postback() {
            if let Some(url) = &key.postback_url {
                let mut payload = postback_entry::payload(key, channel, event_type);
                if let Event::KeyExpiring { days_left, .. } = &event {
                    payload["data"]["days_left"] = (*days_left).into();
                }
                let payload = payload.to_string();
                outbox::enqueue(
                    conn,
                    &outbox::NewEvent {
                        api_key_id: key.id,
                        event_type,
                        url,
                        payload: &payload,
                        msg_id: &format!("msg_{}", random_base62(27)),
                        host: &postback_entry::receiver_host(url),
                    },
                )?;
                self.queued = true;
            }
        }
        Ok(())
    }
}

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
    /// Failed and throttled logins: one counted line per account, address and minute.
    fn is_counted(&self) -> bool {
        matches!(self, Event::LoginFailed | Event::LoginThrottled { .. })
    }

    fn audit_line(&self) -> audit::Event<'a> {
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

    /// What caches must forget.
    fn changes(&self) -> Vec<Change> {
        let key = |k: &ApiKey| Change::Key(k.key_hash.clone());
        match *self {
            Event::KeyCreated { key: k, .. }
            | Event::KeyActivated { key: k, .. }
            | Event::KeyDeactivated { key: k, .. }
            | Event::KeyDeleted { key: k, .. }
            | Event::KeyImported { key: k, .. }
            | Event::KeyLeaked { key: k, .. } => vec![key(k)],
            Event::KeyUpdated { after, .. }
            | Event::KeyRenamed { after, .. }
            | Event::CreditsChanged { after, .. } => vec![key(after)],
            Event::PostbackGone { key: k, .. } => vec![key(k)],
            Event::KeyRolled { old, new, .. } => vec![key(old), key(new)],
            // Verification answers carry the channel's name.
            Event::ChannelUpdated { before, after } if before.name != after.name => {
                vec![Change::All]
            }
            _ => Vec::new(),
        }
    }

    /// The key, channel and POSTback event type of a key event.
    fn postback(&self) -> Option<(&'a ApiKey, &'a str, &'static str)> {
        Some(match *self {
            Event::KeyCreated { key, channel } => (key, channel, "key.created"),
            Event::KeyUpdated { after, channel, .. } | Event::KeyRenamed { after, channel, .. } => {
                (after, channel, "key.updated")
            }
            Event::KeyActivated { key, channel } => (key, channel, "key.activated"),
            Event::KeyDeactivated { key, channel } => (key, channel, "key.deactivated"),
            Event::KeyDeleted { key, channel } => (key, channel, "key.deleted"),
            Event::KeyRolled { old, channel, .. } => (old, channel, "key.rolled"),
            Event::KeyExpiring { key, channel, .. } => (key, channel, "key.expiring"),
            Event::KeyImported { key, channel } => (key, channel, "key.created"),
            Event::KeyLeaked { key, channel, .. } => (key, channel, "key.leaked"),
            Event::PostbackTest { key, channel } => (key, channel, "key.test"),
            _ => return None,
        })
    }
}

fn limit_text(limit: Option<i64>) -> String {
    limit.map_or_else(|| "default".to_owned(), |n| n.to_string())
}
