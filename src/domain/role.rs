//! Dashboard roles and the one table of what each may do. Every handler asks
//! [`Role::may`] (through `session::CurrentUser::require`); buttons are hidden with the
//! same question, but hiding is never the protection.

use std::fmt;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Support,
}

/// Everything the dashboard lets somebody do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ViewChannels,
    ManageChannels,
    ViewKeys,
    CreateKey,
    EditKey,
    /// Deactivate or delete: what support staff do when a key leaks.
    RevokeKey,
    ActivateKey,
    SearchAllKeys,
    ViewAudit,
    ManageUsers,
    /// Keys of the built-in `system` channel reach every channel.
    UseSystemChannel,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Support];

    pub fn may(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            Role::Operator => matches!(
                action,
                ViewChannels | ViewKeys | CreateKey | EditKey | RevokeKey | ActivateKey
            ),
            Role::Support => matches!(
                action,
                ViewChannels | ViewKeys | RevokeKey | SearchAllKeys | ViewAudit
            ),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Support => "support",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_may_revoke_but_not_create_or_edit() {
        assert!(Role::Support.may(Action::RevokeKey));
        assert!(!Role::Support.may(Action::CreateKey));
        assert!(!Role::Support.may(Action::EditKey));
        assert!(!Role::Support.may(Action::ActivateKey));
        assert!(!Role::Support.may(Action::ManageChannels));
    }

    #[test]
    fn operator_manages_keys_but_not_channels_or_users() {
        assert!(Role::Operator.may(Action::CreateKey));
        assert!(!Role::Operator.may(Action::ManageChannels));
        assert!(!Role::Operator.may(Action::ManageUsers));
        assert!(!Role::Operator.may(Action::UseSystemChannel));
    }

    #[test]
    fn roles_round_trip_through_text() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
