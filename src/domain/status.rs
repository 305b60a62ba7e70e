//! The one answer to "what state is this key in?", used by the table, the detail page,
//! the JSON API and verification alike, so they can never disagree.

use time::PrimitiveDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Deactivated (by a person or a key); checked first, like verification does.
    Inactive,
    /// Its expiry has passed, or it was rolled and its grace period is over.
    Expired,
    /// Rolled: still accepted until the end of its grace period.
    Rolling {
        ends: PrimitiveDateTime,
    },
    Active,
}

/// The parts of a key that decide its status.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    pub active: bool,
    pub expires_at: Option<PrimitiveDateTime>,
    pub roll_ends_at: Option<PrimitiveDateTime>,
}

impl Lifecycle {
    /// When the key stops working: its expiry or the end of its rolling grace.
    pub fn ends_at(&self) -> Option<PrimitiveDateTime> {
        match (self.expires_at, self.roll_ends_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn status(&self, now: PrimitiveDateTime) -> KeyStatus {
        if !self.active {
            KeyStatus::Inactive
        } else if self.ends_at().is_some_and(|t| t <= now) {
            KeyStatus::Expired
        } else if let Some(ends) = self.roll_ends_at {
            KeyStatus::Rolling { ends }
        } else {
            KeyStatus::Active
        }
    }
}

impl KeyStatus {
    /// The machine name (API `status`, `data-status` in pages).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Inactive => "inactive",
            KeyStatus::Expired => "expired",
            KeyStatus::Rolling { .. } => "rolling",
            KeyStatus::Active => "active",
        }
    }

    /// The label people read.
    pub fn label(self) -> String {
        match self {
            KeyStatus::Inactive => "Inactive".into(),
            KeyStatus::Expired => "Expired".into(),
            KeyStatus::Rolling { ends } => {
                format!("Rolling — ends {}", super::clock::format_time(ends))
            }
            KeyStatus::Active => "Active".into(),
        }
    }

    pub fn badge_class(self) -> &'static str {
        match self {
            KeyStatus::Inactive => "badge",
            KeyStatus::Expired => "badge badge-danger",
            KeyStatus::Rolling { .. } => "badge badge-warn",
            KeyStatus::Active => "badge badge-success",
        }
    }

    pub fn is_expired(self) -> bool {
        self == KeyStatus::Expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: PrimitiveDateTime = datetime!(2026-11-29 12:00);

    fn key() -> Lifecycle {
        Lifecycle {
            active: true,
            expires_at: None,
            roll_ends_at: None,
        }
    }

    #[test]
    fn every_state_has_one_answer() {
        assert_eq!(key().status(NOW), KeyStatus::Active);
        let inactive = Lifecycle {
            active: false,
            expires_at: Some(datetime!(2020-01-01 00:00)),
            ..key()
        };
        assert_eq!(inactive.status(NOW), KeyStatus::Inactive, "inactive first");
        let expired = Lifecycle {
            expires_at: Some(NOW),
            ..key()
        };
        assert_eq!(expired.status(NOW), KeyStatus::Expired);
        let rolling = Lifecycle {
            roll_ends_at: Some(datetime!(2026-11-29 13:00)),
            ..key()
        };
        assert_eq!(
            rolling.status(NOW),
            KeyStatus::Rolling {
                ends: datetime!(2026-11-29 13:00)
            }
        );
        let rolled_past_grace = Lifecycle {
            roll_ends_at: Some(datetime!(2026-11-29 11:00)),
            ..key()
        };
        assert_eq!(rolled_past_grace.status(NOW), KeyStatus::Expired);
        let expiry_before_grace = Lifecycle {
            expires_at: Some(datetime!(2026-11-29 12:30)),
            roll_ends_at: Some(datetime!(2026-11-29 13:00)),
            ..key()
        };
        assert_eq!(
            expiry_before_grace.ends_at(),
            Some(datetime!(2026-11-29 12:30))
        );
    }
}
