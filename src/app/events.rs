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
use crate::domain::role::Role;
use crate::domain::secret::random_base62;

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

impl<'a> Event<'a> {
    /// Failed and throttled logins: one counted line per account, address and minute.
    fn is_counted(&self) -> bool {
        matches!(self, Event::LoginFailed | Event::LoginThrottled { .. })
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
