//! Each key's POSTback signing secret as the key use cases make it: sealed for the
//! database (`domain::webhook::Sealer`), returned once to be shown.

use crate::db::keys::ApiKey;
use crate::db::{DbConnection, postback_secrets};
use crate::domain::webhook::{Sealer, SigningSecret};

use super::error::{AppResult, Error};

pub(super) fn seal(sealer: &Sealer, secret: &SigningSecret) -> AppResult<String> {
    sealer.seal(secret).ok_or_else(|| {
        Error::conflict(
            "SECRET_UNAVAILABLE",
            "The signing secret could not be stored. Try again.",
        )
    })
}

/// Inside a create or update: a key that has a POSTback URL and no signing secret gets
/// one, returned to be shown once.
pub fn ensure_secret(
    c: &mut DbConnection,
    sealer: &Sealer,
    key: &ApiKey,
) -> AppResult<Option<SigningSecret>> {
    if key.postback_url.is_none() || postback_secrets::has_current(c, key.id)? {
        return Ok(None);
    }
    let secret = SigningSecret::generate();
    postback_secrets::insert(c, key.id, &seal(sealer, &secret)?)?;
    Ok(Some(secret))
}
