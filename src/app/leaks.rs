//! Acting on a signed leak report (`domain::leak_report`; the route checks the
//! signature first). For each reported token that is a Latchkey key (or an imported
//! key): mark it leaked, deactivate it (unless the deployment only flags), write an
//! audit line with the URL where it was found and send `key.leaked` — all in one
//! transaction, which also remembers the report's body hash.
//!
//! A replayed report (the same signed body again) is answered the same way and does
//! nothing: no second audit line, event or deactivation. Two copies arriving at once
//! are serialised by the unique index on the body hash: the second one's transaction
//! rolls back and it is answered as a replay.

use crate::db::audit::Who;
use crate::db::keys::{self, ApiKey};
use crate::db::{DbConnection, imports, now};
use crate::domain::imported::candidates;
use crate::domain::key::{KeyHash, PlainKey};
use crate::domain::leak_report::{
    FALSE_POSITIVE, ReportedToken, TRUE_POSITIVE, Verdict, body_hash, clean_url,
};
use crate::state::AppState;

use super::error::{AppResult, Error};
use super::events::Event;
use super::run::{read, write_as};

/// How long reports are remembered for recognising replays.
const KEEP_DAYS: i64 = 400;

/// The hashes a reported token could be stored under.
fn hashes_of(token: &str, imports_exist: bool) -> Vec<KeyHash> {
    let token = token.trim();
    match PlainKey::parse(token) {
        Ok((plain, _)) => vec![plain.hash()],
        Err(_) if imports_exist && token.len() <= crate::imported::MAX_IMPORTED_LEN => {
            candidates(token).to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn find(conn: &mut DbConnection, hashes: &[KeyHash]) -> AppResult<Option<(ApiKey, String)>> {
    for h in hashes {
        if let Some((k, c)) = keys::find_with_channel(conn, h)? {
            return Ok(Some((k, c.name)));
        }
    }
    Ok(None)
}

fn verdict(token: &ReportedToken, known: bool) -> Verdict {
    Verdict {
        token_raw: token.token.clone(),
        token_type: token.token_type.clone(),
        label: if known { TRUE_POSITIVE } else { FALSE_POSITIVE },
    }
}

/// Acts on a report whose signature checked out; answers one verdict per token.
pub async fn report(
    state: &AppState,
    source_ip: Option<String>,
    body: &[u8],
    tokens: Vec<ReportedToken>,
    deactivate: bool,
) -> AppResult<Vec<Verdict>> {
    let digest = body_hash(body);
    let imports_exist = state.imports.present(&state.pool).await?;
    let hashed: Vec<(ReportedToken, Vec<KeyHash>)> = tokens
        .into_iter()
        .map(|t| {
            let h = hashes_of(&t.token, imports_exist);
            (t, h)
        })
        .collect();
    let who = Who {
        name: "leak-report".into(),
        user_id: None,
        source_ip,
    };
    let work = hashed.clone();
    let acted = write_as(state, who, move |c, events| {
        if imports::report_seen(c, &digest)? {
            return Ok(None);
        }
        imports::prune_reports(c, now() - time::Duration::days(KEEP_DAYS))?;
        let mut verdicts = Vec::with_capacity(work.len());
        let mut done: Vec<i64> = Vec::new();
        for (token, hashes) in &work {
            let found = find(c, hashes)?;
            verdicts.push(verdict(token, found.is_some()));
            let Some((key, channel)) = found else {
                continue;
            };
            if done.contains(&key.id) {
                continue;
            }
            done.push(key.id);
            let was_active = key.enabled;
            let key = imports::mark_leaked(c, key.id, deactivate)?;
            let url = clean_url(&token.url);
            let reporter = format!(
                "secret scanning ({}{})",
                clean_url(&token.token_type),
                if token.source.is_empty() {
                    String::new()
                } else {
                    format!(", {}", clean_url(&token.source))
                }
            );
            events.emit(
                c,
                Event::KeyLeaked {
                    key: &key,
                    channel: &channel,
                    url: if url.is_empty() {
                        "an unknown place"
                    } else {
                        &url
                    },
                    reporter: &reporter,
                    deactivated: deactivate && was_active,
                },
            )?;
        }
        imports::record_report(c, &digest, work.len() as i64)?;
        Ok(Some(verdicts))
    })
    .await;
    match acted {
        Ok(Some(verdicts)) => Ok(verdicts),
        // A replay (seen before, or a copy that lost the race): the same answer, no
        // side effects.
        Ok(None) | Err(Error::NameTaken) => {
            read(state, move |c| {
                hashed
                    .iter()
                    .map(|(t, h)| Ok(verdict(t, find(c, h)?.is_some())))
                    .collect()
            })
            .await
        }
        Err(e) => Err(e),
    }
}
