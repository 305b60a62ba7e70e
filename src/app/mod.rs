//! The application layer: one function per use case, shared by the dashboard and the
//! JSON API. Each takes an [`Actor`] (a person with a role, an API key with its limits,
//! or the system), checks the policy, runs one transaction, and returns a typed result
//! or an [`Error`]. Handlers only extract, call and render; `error.rs` maps [`Error`]
//! once for the dashboard and once for the API.
//!
//! Writes go through [`write`]: the use case's closure runs inside a transaction and
//! reports what happened as events ([`events::Recorder::emit`]), which write the audit
//! line, the change record and the POSTback event in that same transaction; after the
//! commit, this instance's caches forget what changed. Nobody calls those four things
//! by hand.

pub mod actor;
pub mod audit;
pub mod bulk;
pub mod channels;
pub mod credits;
pub mod error;
mod event_lines;
pub mod events;
pub mod export;
pub mod import;
pub mod key_text;
pub mod keys;
pub mod leaks;
pub mod login;
pub mod notices;
pub mod passwords;
pub mod policy;
pub mod postback;
mod postback_entry;
pub mod roll;
pub mod run;
pub mod signing;
pub mod two_factor;
pub mod usage;
pub mod users;

pub use actor::{Actor, KeyCaller, Person};
pub use error::{AppResult, Error, Refusal};
pub use run::{read, write};
