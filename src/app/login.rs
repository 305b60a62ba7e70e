//! Logging in: the password step and the two-factor step, both throttled
//! (`domain::throttle`: per account and address, and per address), and unlocking an
//! account from the command line.
//!
//! The password step is three short moves, so a flood of guesses never holds a
//! database connection while argon2 runs: (1) one write transaction checks the
//! throttle and records the attempt as a failure *before* the hash (concurrent guesses
//! count at once); (2) argon2 runs with no connection, at most one per core but one, on
//! spare CPU while there is some (`app::passwords`); (3) a second write transaction
//! turns the attempt into a success and writes the audit line. A whole login holds one turn of the queue, so a
//! flood also holds at most that many pool connections.

use std::net::IpAddr;

use diesel::Connection;

use crate::db::audit::Who;
use crate::db::users::{self, User};
use crate::db::{DbConnection, login_attempts, two_factor};
use crate::domain::names::Username;
use crate::domain::throttle;
use crate::domain::totp::{Requirement, TotpSecret, recovery_code_hash};
use crate::state::AppState;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::{Event, Recorder};
use super::passwords;
use super::run::write_as;

pub enum LoginOutcome {
    /// Logged in: start the session.
    Success(i64),
    /// The password was right; the user has two-factor on: ask for a code.
    SecondFactor(i64),
    /// The password was right; two-factor is required of this user and not set up:
    /// enrol before the session starts.
    Enrol(i64),
    Failure,
    Throttled(i64),
    /// Too many password checks queued: try again in a moment.
    Busy,
}

/// The wait, in seconds, before `username` may be tried again from `address`.
fn throttle_wait(c: &mut DbConnection, username: &str, address: &str) -> AppResult<Option<i64>> {
    let now = crate::db::now();
    let since = now - throttle::WINDOW;
    let pair = login_attempts::failures_for_pair(c, username, address, since)?;
    let by_address = login_attempts::failures_for_address(c, address, since)?;
    Ok(throttle::wait(
        pair.count,
        throttle::FREE_PER_ACCOUNT_AND_ADDRESS,
        pair.last,
        now,
    )
    .max(throttle::wait(
        by_address.count,
        throttle::FREE_PER_ADDRESS,
        by_address.last,
        now,
    )))
}

/// The audit log's actor of a login: the typed name when it is a possible username;
/// anything else (`api:wydd7arSTBGl` could pass for an API key's actor) is recorded as
/// "(not a username)", never as typed.
fn who(username: &str, user_id: Option<i64>, ip: Option<IpAddr>) -> Who {
    let name = match crate::domain::names::Username::parse(username) {
        Ok(u) => u.as_str().to_owned(),
        Err(_) => "(not a username)".to_owned(),
    };
    Who {
        name,
        user_id,
        source_ip: ip.map(|i| i.to_string()),
    }
}

/// The password step. An unknown name is checked against a dummy hash so both
/// failures take the same time and are throttled alike.
pub async fn login(
    state: &AppState,
    username: String,
    plain: String,
    ip: Option<IpAddr>,
) -> AppResult<LoginOutcome> {
    let address = throttle::address_key(ip);
    let anonymous = who(&username, None, ip);
    let Ok(turn) = passwords::turn(state).await else {
        return Ok(LoginOutcome::Busy);
    };
    // (1) Throttle, then count the attempt before the hash.
    let first = {
        let (username, address) = (username.clone(), address.clone());
        write_as(state, anonymous.clone(), move |c, events| {
            login_attempts::lock(c, &username, &address)?;
            if let Some(seconds) = throttle_wait(c, &username, &address)? {
                events.emit(c, Event::LoginThrottled { seconds })?;
                return Ok(Err(seconds));
            }
            let attempt = login_attempts::record_failure(c, &username, &address)?;
            Ok(Ok((attempt, users::find_by_username(c, &username)?)))
        })
        .await?
    };
    let (attempt, user) = match first {
        Err(seconds) => return Ok(LoginOutcome::Throttled(seconds)),
        Ok(found) => found,
    };
    // (2) argon2, holding no connection.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = passwords::verify(state, &turn, plain, stored).await?;
    // (3) The outcome and its audit line.
    let user = match user {
        Some(u) if matches && !u.disabled => u,
        _ => {
            write_as(state, anonymous, |c, events| {
                Ok(events.emit(c, Event::LoginFailed)?)
            })
            .await?;
            return Ok(LoginOutcome::Failure);
        }
    };
    write_as(
        state,
        who(&username, Some(user.id), ip),
        move |c, events| {
            login_attempts::mark_success(c, attempt)?;
            if user.totp_enabled {
                return Ok(LoginOutcome::SecondFactor(user.id));
            }
            if requirement(c)?.applies_to(user.role()) {
                return Ok(LoginOutcome::Enrol(user.id));
            }
            users::record_login(c, user.id)?;
            events.emit(c, Event::LoggedIn)?;
            Ok(LoginOutcome::Success(user.id))
        },
    )
    .await
}

/// Who must use two-factor authentication (an admin's setting; optional by default).
pub fn requirement(c: &mut DbConnection) -> AppResult<Requirement> {
    Ok(two_factor::setting(c, two_factor::REQUIREMENT)?
        .as_deref()
        .and_then(Requirement::parse)
        .unwrap_or(Requirement::Optional))
}

pub enum CodeOutcome {
    Success,
    Failure,
    Throttled(i64),
}

/// The two-factor step, for a user whose password was right a moment ago: a current
/// TOTP code not used before, or an unused recovery code. Wrong codes are throttled
/// like passwords (under the account name with `#2fa`).
pub async fn second_factor(
    state: &AppState,
    user_id: i64,
    code: String,
    ip: Option<IpAddr>,
) -> AppResult<CodeOutcome> {
    let address = throttle::address_key(ip);
    let session_secret = state
        .settings
        .session_secret
        .as_ref()
        .map(|s| s.expose().to_owned());
    let user = crate::app::read(state, move |c| Ok(users::find(c, user_id)?))
        .await?
        .filter(|u| !u.disabled && u.totp_enabled)
        .ok_or(Error::NotFound)?;
    let name = user.username.clone();
    write_as(state, who(&name, Some(user_id), ip), move |c, events| {
        let key = format!("{}#2fa", user.username);
        login_attempts::lock(c, &key, &address)?;
        if let Some(seconds) = throttle_wait(c, &key, &address)? {
            events.emit(c, Event::LoginThrottled { seconds })?;
            return Ok(CodeOutcome::Throttled(seconds));
        }
        let secret = user
            .totp_secret
            .as_deref()
            .zip(session_secret.as_deref())
            .and_then(|(sealed, key)| TotpSecret::open(sealed, key, user_id));
        let step = secret.and_then(|s| s.check(&code, unix_now(), user.totp_last_step));
        let mut recovered = None;
        let ok = match step {
            Some(step) => two_factor::accept_step(c, user_id, step)?,
            None => match recovery_code_hash(&code) {
                Some(hash) if two_factor::use_recovery_code(c, user_id, &hash)? => {
                    recovered = Some(two_factor::unused_recovery_codes(c, user_id)?);
                    true
                }
                _ => false,
            },
        };
        if !ok {
            login_attempts::record_failure(c, &key, &address)?;
            events.emit(c, Event::LoginFailed)?;
            return Ok(CodeOutcome::Failure);
        }
        users::record_login(c, user_id)?;
        if let Some(left) = recovered {
            events.emit(c, Event::RecoveryCodeUsed { left })?;
        }
        events.emit(c, Event::LoggedIn)?;
        Ok(CodeOutcome::Success)
    })
    .await
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `latchkey user unlock NAME`: forgets the account's failed logins from every address
/// (and its failed two-factor codes), audited as the command line's action.
pub fn unlock_offline(conn: &mut DbConnection, name: &Username) -> AppResult<usize> {
    conn.transaction(|c| {
        crate::db::begin_write(c)?;
        let user: User = users::find_by_username(c, name.as_str())?.ok_or(Error::NotFound)?;
        let cleared = login_attempts::clear_for_user(c, &user.username)?
            + login_attempts::clear_for_user(c, &format!("{}#2fa", user.username))?;
        let mut events = Recorder::new(Actor::System("cli").who());
        events.emit(
            c,
            Event::AccountUnlocked {
                username: &user.username,
                cleared,
            },
        )?;
        Ok(cleared)
    })
}
