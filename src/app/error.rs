//! The one error type of every use case, and the refusal a rule gives.

use crate::db::DbError;

/// Why a rule refused an action: a stable code (the rule's name) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// Every way a use case can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    /// A role, scope or API-key rule refused the action.
    #[error("{}: {}", .0.code, .0.message)]
    Refused(Refusal),
    /// The name is taken (a key in its channel, a channel, a username).
    #[error("the name is taken")]
    NameTaken,
    /// The action conflicts with the current state (limit reached, already rolled...).
    #[error("{}: {}", .0.code, .0.message)]
    Conflict(Refusal),
    #[error(transparent)]
    Db(DbError),
}

impl Error {
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Error::Refused(Refusal::new(code, message))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict(Refusal::new(code, message))
    }
}

impl From<DbError> for Error {
    /// A unique index refusing a write means a name is taken: the only unique indexes
    /// a use case can hit besides random tokens are on names.
    fn from(e: DbError) -> Self {
        if e.is_unique_violation() {
            Error::NameTaken
        } else {
            Error::Db(e)
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Error::from(DbError::from(e))
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::Refused(r)
    }
}

pub type AppResult<T> = Result<T, Error>;
