//! How long a rolled key keeps working.

use time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grace {
    Now,
    OneHour,
    OneDay,
    SevenDays,
}

impl Grace {
    pub const ALL: [Grace; 4] = [Grace::Now, Grace::OneHour, Grace::OneDay, Grace::SevenDays];

    pub fn parse(s: &str) -> Option<Grace> {
        Grace::ALL.into_iter().find(|g| g.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grace::Now => "now",
            Grace::OneHour => "1h",
            Grace::OneDay => "24h",
            Grace::SevenDays => "7d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Grace::Now => "Stop the old key now",
            Grace::OneHour => "1 hour",
            Grace::OneDay => "24 hours",
            Grace::SevenDays => "7 days",
        }
    }

    pub fn duration(self) -> Duration {
        match self {
            Grace::Now => Duration::ZERO,
            Grace::OneHour => Duration::hours(1),
            Grace::OneDay => Duration::hours(24),
            Grace::SevenDays => Duration::days(7),
        }
    }
}
