//! Exporting the keys of a filter (the list the table shows, every page of it), for the
//! dashboard and the API. [`begin`] checks who asks, counts the keys, writes the one
//! audit line and reads the first page; [`next_page`] walks on by keyset, so an export
//! of 100,000 keys holds one page in memory at a time.

use std::collections::HashMap;

use crate::db::channels;
use crate::db::key_list::{self, Count, KeyPage};
use crate::domain::list::{Cursor, ListQuery, Within};
use crate::domain::role::Action;
use crate::state::AppState;

use super::actor::Actor;
use super::error::AppResult;
use super::events::Event;
use super::keys::load_channel;
use super::policy::SCOPE_READ;
use super::run::{read, write};

/// Rows read per page.
pub const PAGE: i64 = 500;

/// What is exported: one channel's keys, or every channel the person may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Channel(i64),
    AllKeys,
}

/// An export under way: the list, its first page, and the channels' names.
pub struct Export {
    pub within: Within,
    pub query: ListQuery,
    pub total: i64,
    pub first: KeyPage,
    pub channel_names: HashMap<i64, String>,
}

/// Checks, counts, audits (one line, with the filter and the count) and reads the
/// first page.
pub async fn begin(
    state: &AppState,
    actor: &Actor,
    target: Target,
    query: ListQuery,
    format: &'static str,
) -> AppResult<Export> {
    actor.require(Action::ViewKeys)?;
    actor.require_scope(SCOPE_READ)?;
    if target == Target::AllKeys {
        actor.require(Action::SearchAllKeys)?;
    }
    let show_system = actor.require(Action::UseSystemChannel).is_ok();
    let a = actor.clone();
    let mut q = query.clone();
    q.size = PAGE;
    q.cursor = None;
    q.pos = 0;
    let (within, names, first) = read(state, move |c| {
        let (within, names) = match target {
            Target::Channel(id) => {
                let channel = load_channel(c, &a, id)?;
                (
                    Within::Channel(channel.id),
                    HashMap::from([(channel.id, channel.name)]),
                )
            }
            Target::AllKeys => {
                let all = channels::list(c)?;
                let hidden = all
                    .iter()
                    .find(|ch| ch.is_system && !show_system)
                    .map(|ch| ch.id);
                (
                    Within::AllExcept(hidden),
                    all.into_iter().map(|ch| (ch.id, ch.name)).collect(),
                )
            }
        };
        let first = key_list::list_page(c, within, &q, Count::Exact)?;
        Ok((within, names, first))
    })
    .await?;
    let total = first.total;
    let filter = describe(&query);
    let channel = match within {
        Within::Channel(id) => names.get(&id).map(|n| (id, n.clone())),
        Within::AllExcept(_) => None,
    };
    write(state, actor, move |c, events| {
        events.emit(
            c,
            Event::KeysExported {
                channel: channel.as_ref().map(|(id, n)| (*id, n.as_str())),
                filter: &filter,
                format,
                count: total,
            },
        )?;
        Ok(())
    })
    .await?;
    let mut q = query;
    q.size = PAGE;
    Ok(Export {
        within,
        query: q,
        total,
        first,
        channel_names: names,
    })
}

/// The page after the row `after` (the last row of the previous page).
pub async fn next_page(
    state: &AppState,
    within: Within,
    query: &ListQuery,
    after: i64,
) -> AppResult<KeyPage> {
    let mut q = query.clone();
    q.cursor = Some(Cursor::After(after));
    // The total is known: no count per page.
    read(state, move |c| {
        Ok(key_list::list_page(c, within, &q, Count::Known(0))?)
    })
    .await
}

/// The filter as the audit line shows it: `q="billing" risk=idle sort=name desc`.
pub fn describe(q: &ListQuery) -> String {
    let mut parts = Vec::new();
    if !q.text.is_empty() {
        parts.push(format!("q=\"{}\"", q.text));
    }
    if let Some(r) = q.risk {
        parts.push(format!("risk={}", r.as_str()));
    }
    parts.push(format!("sort={} {}", q.sort.as_str(), q.dir.as_str()));
    parts.join(" ")
}
