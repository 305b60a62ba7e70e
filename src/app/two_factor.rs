//! Two-factor enrolment, an admin's reset, and the requirement setting. A person
//! enrols themselves (logged in, or half logged in when the requirement sends them
//! here after the password); the secret is shown only until a code from it confirms
//! the enrolment, then never again.

use crate::db::{sessions, two_factor, users};
use crate::domain::role::Action;
use crate::domain::totp::{Requirement, TotpSecret, new_recovery_codes, recovery_code_hash};
use crate::state::AppState;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::Event;
use super::login::unix_now;
use super::run::{read, write, write_as};

/// What the enrolment page shows.
pub struct Enrolment {
    pub username: String,
    /// `None` once enrolled: the secret is never shown again.
    pub secret: Option<TotpSecret>,
    pub recovery_codes_left: i64,
}

fn session_secret(state: &AppState) -> AppResult<String> {
    state
        .settings
        .session_secret
        .as_ref()
        .map(|s| s.expose().to_owned())
        .ok_or_else(|| {
            Error::conflict(
                "NO_SESSION_SECRET",
                "Two-factor authentication needs LATCHKEY_SESSION_SECRET to be set \
                 (its secrets are sealed with a key derived from it).",
            )
        })
}

/// The enrolment page of `user_id`: a fresh secret (`fresh`, on opening the page) or
/// the pending one (after a wrong code), or nothing to show once enrolled.
pub async fn enrolment(state: &AppState, user_id: i64, fresh: bool) -> AppResult<Enrolment> {
    let key = session_secret(state)?;
    let who = crate::db::audit::Who::system();
    write_as(state, who, move |c, _| {
        let user = users::find(c, user_id)?.ok_or(Error::NotFound)?;
        if user.totp_enabled {
            return Ok(Enrolment {
                username: user.username,
                secret: None,
                recovery_codes_left: two_factor::unused_recovery_codes(c, user_id)?,
            });
        }
        let pending = user
            .totp_secret
            .as_deref()
            .and_then(|s| TotpSecret::open(s, &key, user_id));
        let secret = match pending {
            Some(s) if !fresh => s,
            _ => {
                let s = TotpSecret::generate();
                let sealed = s.seal(&key, user_id).ok_or_else(|| {
                    Error::Db(crate::db::DbError::Config("sealing failed".into()))
                })?;
                two_factor::set_pending_secret(c, user_id, &sealed)?;
                s
            }
        };
        Ok(Enrolment {
            username: user.username,
            secret: Some(secret),
            recovery_codes_left: 0,
        })
    })
    .await
}

/// Confirms an enrolment with a code from the pending secret: two-factor turns on and
/// the ten recovery codes are returned, to be shown once (only their hashes are kept).
/// `None` when the code is wrong.
pub async fn confirm(
    state: &AppState,
    user_id: i64,
    ip: Option<String>,
    code: String,
) -> AppResult<Option<Vec<String>>> {
    let key = session_secret(state)?;
    let username = read(state, move |c| Ok(users::find(c, user_id)?))
        .await?
        .ok_or(Error::NotFound)?
        .username;
    let who = crate::db::audit::Who {
        name: username,
        user_id: Some(user_id),
        source_ip: ip,
    };
    write_as(state, who, move |c, events| {
        let user = users::find(c, user_id)?.ok_or(Error::NotFound)?;
        let secret = user
            .totp_secret
            .as_deref()
            .and_then(|s| TotpSecret::open(s, &key, user_id));
        let Some(step) = secret.and_then(|s| s.check(&code, unix_now(), None)) else {
            return Ok(None);
        };
        let codes = new_recovery_codes();
        let hashes: Vec<String> = codes.iter().filter_map(|c| recovery_code_hash(c)).collect();
        if !two_factor::enable(c, user_id, step, &hashes)? {
            return Err(Error::conflict(
                "ALREADY_ENROLLED",
                "Two-factor authentication is already on for this account.",
            ));
        }
        events.emit(c, Event::TwoFactorEnabled)?;
        Ok(Some(codes))
    })
    .await
}

/// An admin turns a user's two-factor off (a lost phone): the secret and recovery codes
/// go, the user's sessions end, and the next login enrols again if it is required.
pub async fn reset(state: &AppState, actor: &Actor, user_id: i64) -> AppResult<()> {
    actor.require(Action::ManageUsers)?;
    write(state, actor, move |c, events| {
        let user = users::find(c, user_id)?.ok_or(Error::NotFound)?;
        two_factor::reset(c, user_id)?;
        sessions::delete_for_user(c, user_id)?;
        events.emit(c, Event::TwoFactorReset { user: &user })?;
        Ok(())
    })
    .await
}

pub async fn requirement(state: &AppState) -> AppResult<Requirement> {
    read(state, super::login::requirement).await
}

pub async fn set_requirement(state: &AppState, actor: &Actor, rule: Requirement) -> AppResult<()> {
    actor.require(Action::ManageUsers)?;
    write(state, actor, move |c, events| {
        two_factor::set_setting(c, two_factor::REQUIREMENT, rule.as_str())?;
        events.emit(
            c,
            Event::TwoFactorRequirement {
                rule: rule.as_str(),
            },
        )?;
        Ok(())
    })
    .await
}
