//! Importing existing keys from another system (dashboard form and API share it).
//!
//! All or nothing: the file is read and every row checked (settings, digest, names
//! and digests unique in the file, names free in the channel, digests unknown, the
//! API key's own powers) before anything is written; then one transaction inserts
//! every key, reserving a slot under the channel's limit for each. A problem found
//! only there (the limit, a name taken meanwhile) rolls the whole import back.

use crate::db::DbConnection;
use crate::db::channels::Channel;
use crate::db::keys::{self, ApiKey, NewKey};
use crate::db::{self as database, imports};
use crate::domain::import_rows::{self, ImportRow, RowError};
use crate::domain::key::{KEY_ID_LEN, KeyParts};
use crate::domain::role::Action;
use crate::domain::secret::random_base62;
use crate::state::AppState;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::Event;
use super::keys::load_channel;
use super::policy::{self, SCOPE_WRITE};
use super::run::{read, write};

/// What an import did: the keys made, or every problem of the file.
pub enum Outcome {
    Imported { channel: Channel, keys: Vec<ApiKey> },
    Invalid(Vec<RowError>),
}

/// Who may import: whoever may create keys (a person's role, a key's `keys:write`).
pub fn authorize(actor: &Actor) -> AppResult<()> {
    actor.require(Action::CreateKey)?;
    actor.require_scope(SCOPE_WRITE)
}

/// The field a policy refusal is about.
fn refusal_field(code: &str) -> &'static str {
    match code {
        "SCOPE_ESCALATION" => "scopes",
        "NETWORK_ESCALATION" => "cidrs",
        "EXPIRY_ESCALATION" => "expires_at",
        _ => "name",
    }
}

/// Imports the keys of `text` (CSV or JSON) into the channel.
pub async fn import(
    state: &AppState,
    actor: &Actor,
    channel_id: i64,
    text: String,
) -> AppResult<Outcome> {
    authorize(actor)?;
    let rows = match import_rows::read(&text)
        .and_then(|rows| import_rows::check(rows, &state.settings.scopes, database::now()))
    {
        Ok(rows) => rows,
        Err(errors) => return Ok(Outcome::Invalid(errors)),
    };
    let mut errors = Vec::new();
    if let Actor::Key(k) = actor {
        for row in &rows {
            if let Err(r) = policy::may_create(&k.key, &row.settings) {
                errors.push(RowError::new(row.line, refusal_field(r.code), r.message).at(row.item));
            }
        }
    }
    let (a, checked) = (actor.clone(), rows.clone());
    let mut found = read(state, move |c| {
        let channel = load_channel(c, &a, channel_id)?;
        taken(c, &channel, &checked)
    })
    .await?;
    errors.append(&mut found);
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.item, e.line));
        return Ok(Outcome::Invalid(errors));
    }
    let default_limit = state.settings.max_keys_per_channel;
    let (a, created_by) = (actor.clone(), actor.who().name);
    let count = rows.len();
    let written = write(state, actor, move |c, events| {
        let channel = load_channel(c, &a, channel_id)?;
        let mut made = Vec::with_capacity(rows.len());
        for row in &rows {
            if !keys::reserve_slot(c, channel.id, default_limit)? {
                let limit = channel.effective_limit(default_limit);
                return Err(Error::conflict(
                    "LIMIT_REACHED",
                    format!(
                        "Importing {count} {} would pass this channel's limit of {limit} {} (it holds {}). Nothing was imported.",
                        if count == 1 { "key" } else { "keys" },
                        if limit == 1 { "key" } else { "keys" },
                        channel.key_count
                    ),
                ));
            }
            let key = insert(c, &channel, row, &created_by)?;
            events.emit(
                c,
                Event::KeyImported {
                    key: &key,
                    channel: &channel.name,
                },
            )?;
            made.push(key);
        }
        Ok((channel, made))
    })
    .await;
    let (channel, made) = match written {
        Ok(done) => done,
        Err(Error::NameTaken) => {
            return Err(Error::conflict(
                "NAME_TAKEN",
                "A name in the file was taken while importing. Nothing was imported; try again.",
            ));
        }
        Err(e) => return Err(e),
    };
    state.imports.mark_present();
    Ok(Outcome::Imported {
        channel,
        keys: made,
    })
}

/// Names already used in the channel, and keys already in Latchkey.
fn taken(
    conn: &mut DbConnection,
    channel: &Channel,
    rows: &[ImportRow],
) -> AppResult<Vec<RowError>> {
    let mut errors = Vec::new();
    for row in rows {
        if keys::name_taken(conn, channel.id, &row.settings.name)? {
            errors.push(
                RowError::new(
                    row.line,
                    "name",
                    "A key with this name already exists in this channel.",
                )
                .at(row.item),
            );
        }
        if imports::hash_taken(conn, &row.digest.key_hash())? {
            errors.push(
                RowError::new(
                    row.line,
                    row.digest.algorithm.as_str(),
                    "This key was imported already.",
                )
                .at(row.item),
            );
        }
    }
    Ok(errors)
}

fn insert(
    conn: &mut DbConnection,
    channel: &Channel,
    row: &ImportRow,
    created_by: &str,
) -> AppResult<ApiKey> {
    // An imported key has a key id of its own (public, shown in the table) but no
    // prefix or last characters: Latchkey never saw its plaintext.
    let parts = KeyParts {
        prefix: String::new(),
        key_id: random_base62(KEY_ID_LEN),
        last_four: String::new(),
    };
    let key = keys::insert(
        conn,
        &NewKey {
            channel_id: channel.id,
            settings: &row.settings,
            parts: &parts,
            hash: &row.digest.key_hash(),
            created_by,
            deactivated_by_person: false,
        },
    )?;
    Ok(imports::mark_imported(
        conn,
        key.id,
        row.digest.algorithm.as_str(),
    )?)
}
