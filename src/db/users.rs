//! Dashboard accounts.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::users;
use super::{DbConnection, DbResult, now};
use crate::domain::role::Role;

/// A user row. `Debug` leaves out the password hash and the (sealed) TOTP secret.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
    pub last_login_at: Option<PrimitiveDateTime>,
    /// Encrypted (see `app::two_factor`); set at enrolment, never shown again.
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<i64>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("totp_enabled", &self.totp_enabled)
            .finish_non_exhaustive()
    }
}

impl User {
    /// An unknown role text (a hand-edited row) grants nothing beyond support.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Support)
    }
}

pub fn find_by_username(conn: &mut DbConnection, name: &str) -> DbResult<Option<User>> {
    Ok(users::table
        .filter(users::username.eq(name))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(
    conn: &mut DbConnection,
    username: &str,
    password_hash: &str,
    role: Role,
) -> DbResult<User> {
    let t = now();
    Ok(diesel::insert_into(users::table)
        .values((
            users::username.eq(username),
            users::password_hash.eq(password_hash),
            users::role.eq(role.as_str()),
            users::disabled.eq(false),
            users::created_at.eq(t),
            users::updated_at.eq(t),
        ))
        .returning(users::all_columns)
        .get_result(conn)?)
}

/// Creates the first `admin` when the database has no user at all, with the password
/// hash `hash` makes, called only then (argon2 at every start cost 30-40 ms of CPU for
/// nothing). Returns whether it did; a second instance starting at the same time loses
/// the unique-index race quietly.
pub fn create_first_admin(
    conn: &mut DbConnection,
    hash: impl FnOnce() -> DbResult<String>,
) -> DbResult<bool> {
    let existing: i64 = users::table.count().get_result(conn)?;
    if existing > 0 {
        return Ok(false);
    }
    let password_hash = hash()?;
    match insert(conn, "admin", &password_hash, Role::Admin) {
        Ok(_) => Ok(true),
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn record_login(conn: &mut DbConnection, id: i64) -> DbResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(now()))
        .execute(conn)?;
    Ok(())
}

/// Everyone, admins first, then by name.
pub fn list(conn: &mut DbConnection) -> DbResult<Vec<User>> {
    Ok(users::table
        .order((users::role.asc(), users::username.asc()))
        .select(User::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConnection, id: i64) -> DbResult<Option<User>> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// Why a change to a user was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserChangeError {
    #[error("the last active admin cannot be removed")]
    LastAdmin,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Db(#[from] super::DbError),
}

impl From<diesel::result::Error> for UserChangeError {
    fn from(e: diesel::result::Error) -> Self {
        UserChangeError::Db(e.into())
    }
}

/// Changes role and/or disabled flag, keeping at least one active admin; call inside a
/// transaction. Every admin row is locked first (a no-op UPDATE), so two admins
/// demoting each other at the same moment cannot both succeed.
pub fn change(
    conn: &mut DbConnection,
    id: i64,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<User, UserChangeError> {
    diesel::update(users::table.filter(users::role.eq(Role::Admin.as_str())))
        .set(users::updated_at.eq(users::updated_at))
        .execute(conn)?;
    let user: User = match (role, disabled) {
        (Some(r), Some(d)) => diesel::update(users::table.find(id))
            .set((
                users::role.eq(r.as_str()),
                users::disabled.eq(d),
                users::updated_at.eq(now()),
            ))
            .returning(users::all_columns)
            .get_result(conn)
            .optional()?,
        (Some(r), None) => diesel::update(users::table.find(id))
            .set((users::role.eq(r.as_str()), users::updated_at.eq(now())))
            .returning(users::all_columns)
            .get_result(conn)
            .optional()?,
        (None, Some(d)) => diesel::update(users::table.find(id))
            .set((users::disabled.eq(d), users::updated_at.eq(now())))
            .returning(users::all_columns)
            .get_result(conn)
            .optional()?,
        (None, None) => users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .optional()?,
    }
    .ok_or(UserChangeError::NotFound)?;
    let admins: i64 = users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::disabled.eq(false))
        .count()
        .get_result(conn)?;
    if admins == 0 {
        return Err(UserChangeError::LastAdmin);
    }
    Ok(user)
}

pub fn set_password(conn: &mut DbConnection, id: i64, password_hash: &str) -> DbResult<bool> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(password_hash),
            users::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_never_prints_the_password_hash() {
        let t = time::macros::datetime!(2026-11-29 12:00);
        let u = super::User {
            id: 1,
            username: "alice".into(),
            password_hash: "$argon2id$secret-hash".into(),
            role: "admin".into(),
            disabled: false,
            created_at: t,
            updated_at: t,
            last_login_at: None,
            totp_secret: Some("sealed-totp-secret".into()),
            totp_enabled: true,
            totp_last_step: None,
        };
        let printed = format!("{u:?}");
        assert!(
            !printed.contains("secret-hash") && printed.contains("alice"),
            "{printed}"
        );
    }
}
