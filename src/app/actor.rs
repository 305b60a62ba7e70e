//! Who is acting: a person in the dashboard (bounded by their role), an API key
//! (bounded by its own scopes, networks and expiry: `app::policy`), or the system
//! itself (the command line, background jobs).

use std::net::IpAddr;
use std::sync::Arc;

use crate::db::audit::Who;
use crate::db::channels::Channel;
use crate::domain::role::{Action, Role};
use crate::verification::CachedKey;

use super::error::{AppResult, Error};

#[derive(Debug, Clone)]
pub struct Person {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub ip: Option<String>,
}

/// The key that authenticated an API request (already checked: known, active, not
/// expired, used from an allowed address).
#[derive(Debug, Clone)]
pub struct KeyCaller {
    pub key: Arc<CachedKey>,
    pub ip: Option<IpAddr>,
}

#[derive(Debug, Clone)]
pub enum Actor {
    Person(Person),
    Key(KeyCaller),
    System(&'static str),
}

impl Actor {
    /// How the audit log names this actor.
    pub fn who(&self) -> Who {
        match self {
            Actor::Person(p) => Who {
                name: p.username.clone(),
                user_id: Some(p.id),
                source_ip: p.ip.clone(),
            },
            Actor::Key(k) => Who {
                name: format!("api:{}", k.key.key_id),
                user_id: None,
                source_ip: k.ip.map(|i| i.to_string()),
            },
            Actor::System(name) => Who {
                name: (*name).to_owned(),
                user_id: None,
                source_ip: None,
            },
        }
    }

    pub fn is_person(&self) -> bool {
        matches!(self, Actor::Person(_))
    }

    /// A person's role must allow `action`; keys and the system are checked elsewhere.
    pub fn require(&self, action: Action) -> AppResult<()> {
        match self {
            Actor::Person(p) if !p.role.may(action) => Err(Error::refused(
                "FORBIDDEN",
                "You do not have permission to do that.",
            )),
            _ => Ok(()),
        }
    }

    /// A key must hold `scope`; people and the system are checked by role.
    pub fn require_scope(&self, scope: &str) -> AppResult<()> {
        match self {
            Actor::Key(k) if !k.key.has_scope(scope) => Err(Error::refused(
                "INSUFFICIENT_SCOPE",
                format!("This key lacks the `{scope}` scope."),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the actor may see or touch this channel: the `system` channel's keys
    /// reach every channel, so only admins (and system keys) touch it; a key reaches
    /// only its own channel unless it is a system key. Out of a key's reach is "not
    /// found", so existence never leaks.
    pub fn reach(&self, channel: &Channel) -> AppResult<()> {
        match self {
            Actor::Person(_) if channel.is_system => self.require(Action::UseSystemChannel),
            Actor::Key(k) if !k.key.reaches_channel(channel.id) => Err(Error::NotFound),
            _ => Ok(()),
        }
    }
}
