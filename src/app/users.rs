//! Dashboard accounts: create, change role, disable / enable, reset a password
//! (logins: `app::login`). Every change is audited in the transaction that makes it.

use diesel::Connection;

use crate::db::users::{self, User, UserChangeError};
use crate::db::{DbConnection, sessions};
use crate::domain::names::Username;
use crate::domain::password;
use crate::domain::role::{Action, Role};
use crate::state::AppState;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::{Event, Recorder};
use super::run::{read, write};

pub async fn list(state: &AppState, actor: &Actor) -> AppResult<Vec<User>> {
    actor.require(Action::ManageUsers)?;
    read(state, |c| Ok(users::list(c)?)).await
}

fn hash(plain: &str) -> AppResult<String> {
    password::hash(plain).map_err(|e| Error::Db(crate::db::DbError::Config(e)))
}

/// Inserts a user and its audit line; shared by the Users page and the command line.
pub fn insert(
    conn: &mut DbConnection,
    events: &mut Recorder,
    name: &Username,
    password_hash: &str,
    role: Role,
) -> AppResult<User> {
    let user = users::insert(conn, name.as_str(), password_hash, role)?;
    events.emit(conn, Event::UserCreated { user: &user })?;
    Ok(user)
}

pub async fn create(
    state: &AppState,
    actor: &Actor,
    name: Username,
    role: Role,
    plain: String,
) -> AppResult<User> {
    actor.require(Action::ManageUsers)?;
    let password_hash = super::passwords::hash(state, plain).await?;
    write(state, actor, move |c, events| {
        insert(c, events, &name, &password_hash, role)
    })
    .await
}

/// The command line's `user create`: no server, the same use case.
pub fn create_offline(
    conn: &mut DbConnection,
    name: &Username,
    role: Role,
    plain: &str,
) -> AppResult<User> {
    let password_hash = hash(plain)?;
    conn.transaction(|c| {
        let mut events = Recorder::new(Actor::System("cli").who());
        insert(c, &mut events, name, &password_hash, role)
    })
}

/// Changes a role or the disabled flag, keeping at least one active admin. Disabling
/// ends the user's sessions at once.
pub async fn change(
    state: &AppState,
    actor: &Actor,
    id: i64,
    role: Option<Role>,
    disabled: Option<bool>,
) -> AppResult<User> {
    actor.require(Action::ManageUsers)?;
    write(state, actor, move |c, events| {
        let user = users::change(c, id, role, disabled).map_err(|e| match e {
            UserChangeError::LastAdmin => Error::conflict(
                "LAST_ADMIN",
                "Latchkey needs at least one active admin: make another user admin first.",
            ),
            UserChangeError::NotFound => Error::NotFound,
            UserChangeError::Db(e) => Error::from(e),
        })?;
        if user.disabled {
            sessions::delete_for_user(c, user.id)?;
        }
        let event = match (role, disabled) {
            (Some(role), _) => Event::UserRoleChanged { user: &user, role },
            (_, Some(true)) => Event::UserDisabled { user: &user },
            _ => Event::UserEnabled { user: &user },
        };
        events.emit(c, event)?;
        Ok(user)
    })
    .await
}

/// Sets a new password; every session of that user ends.
pub async fn reset_password(
    state: &AppState,
    actor: &Actor,
    id: i64,
    plain: String,
) -> AppResult<User> {
    actor.require(Action::ManageUsers)?;
    let password_hash = super::passwords::hash(state, plain).await?;
    write(state, actor, move |c, events| {
        if !users::set_password(c, id, &password_hash)? {
            return Err(Error::NotFound);
        }
        sessions::delete_for_user(c, id)?;
        let user = users::find(c, id)?.ok_or(Error::NotFound)?;
        events.emit(c, Event::PasswordReset { user: &user })?;
        Ok(user)
    })
    .await
}

/// Ends a session: its row goes (a copied cookie stops working) and the logout is
/// audited, together.
pub async fn logout(state: &AppState, actor: Option<&Actor>, token_hash: String) -> AppResult<()> {
    match actor {
        Some(actor) => {
            write(state, actor, move |c, events| {
                sessions::delete(c, &token_hash)?;
                events.emit(c, Event::LoggedOut)?;
                Ok(())
            })
            .await
        }
        None => read(state, move |c| Ok(sessions::delete(c, &token_hash)?)).await,
    }
}
