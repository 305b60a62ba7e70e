//! Lists of keys: filtered, sorted, keyset-paginated pages within one channel or across
//! channels, and the counts the risk overview shows.
//!
//! A name or key id filter asks the substring index first (`db::key_search`: trigrams
//! from three characters, grams for one or two), which counts its matches up to
//! [`CAP`] without reading every key of the channel. Up to [`IDS_PAGE`] of them, the
//! page is read from their ids; beyond, or when the index cannot answer (on PostgreSQL
//! a one- or two-character filter many names hold), the filter is a `LIKE` tested on
//! the sort index's entries, which finds a page of a frequent filter after a few
//! thousand of them. Totals ([`Count`]): the index's count up to [`CAP`], "1000+"
//! beyond it on the dashboard, every match when asked ([`Count::Exact`]: the API,
//! exports, "Count all"); a filter the index did not answer is counted over the newest
//! [`SCAN`] keys.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::key_search;
use super::keys::ApiKey;
use super::rollups::Period;
use super::schema::{api_keys, usage_rollups};
use super::{DbConnection, DbResult, now};
use crate::domain::list::{Cursor, Dir, Filter, ListQuery, Risk, Sort, Within, like_contains};

/// Beyond this many matches a filter's total is "more than" (with [`Count::Capped`]).
pub const CAP: i64 = 1_000;

/// A filter the index cannot look up is counted over at most this many keys (the
/// newest) with [`Count::Capped`]: "1000+" when they hold over [`CAP`] matches, else
/// "at least" what they hold, when the list is longer. Reading them costs 1–4 ms; a
/// count to 1,000 of a 1-in-50 filter reads 50,000 keys (4–18 ms).
const SCAN: i64 = 10_000;

/// Up to this many matches the page is read from the index's ids, by primary key;
/// beyond, a walk in sort order finds it sooner (a 1 % filter after some 2,000 index
/// entries, where 1,000 lookups by id and a sort cost 2–5 ms on a million keys).
const IDS_PAGE: usize = 200;

pub struct KeyPage {
    pub rows: Vec<ApiKey>,
    pub total: i64,
    /// `total` is a floor: the count stopped at [`CAP`] matches or [`SCAN`] keys.
    pub capped: bool,
    pub has_prev: bool,
    pub has_next: bool,
}

/// How a page's total is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// The caller knows it: a channel's key count, a remembered total.
    Known(i64),
    /// Exactly, however many keys match.
    Exact,
    /// Exactly up to [`CAP`]; beyond, "more than [`CAP`]". A filter the index cannot
    /// look up is counted over the newest [`SCAN`] keys only: `list` is at least how
    /// many keys the unfiltered list holds (a channel's key count), which tells when
    /// those were all of them.
    Capped { list: i64 },
}

type Boxed<'a> = api_keys::BoxedQuery<'a, super::MultiBackend>;

/// A list's filter as SQL: as typed (`LIKE`, equality), or the ids the name index found.
enum Cond<'f> {
    Filter(&'f Filter),
    Ids(Vec<i64>),
}

const UNFILTERED: Cond<'static> = Cond::Filter(&Filter::None);

/// How many keys match a filter (before any risk), as far as the index told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matches {
    Unknown,
    Exactly(i64),
    OverCap,
}

/// The filter, resolved, and what the index counted.
struct Resolved<'f> {
    cond: Cond<'f>,
    matches: Matches,
}

/// Asks the name index for a name or key id filter's matches: up to [`CAP`] it counts
/// them, and up to [`IDS_PAGE`] they become the list's ids. More, or a text the index
/// cannot look up, leave the filter a `LIKE` tested in sort order. A key id is also
/// looked up exactly (unique index) and joins the matches.
fn resolve<'f>(
    conn: &mut DbConnection,
    within: Within,
    filter: &'f Filter,
) -> DbResult<Resolved<'f>> {
    let as_typed = |matches| Resolved {
        cond: Cond::Filter(filter),
        matches,
    };
    let (text, key_id) = match filter {
        Filter::Name(t) => (t.clone(), None),
        Filter::KeyIdOrName(id) => (id.to_lowercase(), Some(id)),
        Filter::None | Filter::Hash(_) => return Ok(as_typed(Matches::Unknown)),
    };
    let Some(mut ids) = key_search::matching_ids(conn, within, &text, CAP + 1)? else {
        return Ok(as_typed(Matches::Unknown));
    };
    if ids.len() as i64 > CAP {
        return Ok(as_typed(Matches::OverCap));
    }
    if let Some(key_id) = key_id {
        let exact: Option<i64> = filtered(within, &UNFILTERED, None)
            .filter(api_keys::key_id.eq(key_id.clone()))
            .select(api_keys::id)
            .first(conn)
            .optional()?;
        ids.extend(exact.filter(|id| !ids.contains(id)));
    }
    let matches = Matches::Exactly(ids.len() as i64);
    Ok(if ids.len() <= IDS_PAGE {
        Resolved {
            cond: Cond::Ids(ids),
            matches,
        }
    } else {
        as_typed(matches)
    })
}

fn filtered<'a>(within: Within, cond: &Cond, risk: Option<Risk>) -> Boxed<'a> {
    let mut q = api_keys::table.into_boxed();
    let t = now();
    q = match risk {
        None => q,
        Some(Risk::NeverExpires) => q.filter(api_keys::expires_at.is_null()),
        // From rollups: no day bucket in the last 90 days (day rows are kept 400).
        Some(Risk::Idle) => q.filter(diesel::dsl::not(diesel::dsl::exists(
            usage_rollups::table
                .filter(usage_rollups::api_key_id.eq(api_keys::id))
                .filter(usage_rollups::period.eq(Period::Day.as_str()))
                .filter(
                    usage_rollups::bucket_start
                        .ge(Period::Day.bucket_of(t) - time::Duration::days(89)),
                ),
        ))),
        Some(Risk::NoNetworkLimit) => q.filter(api_keys::allowed_cidrs.eq("")),
        Some(Risk::NoRateLimit) => q.filter(api_keys::rate_limits.eq("")),
        Some(Risk::ExpiringSoon) => q
            .filter(api_keys::expires_at.gt(t))
            .filter(api_keys::expires_at.le(t + time::Duration::days(7))),
        Some(Risk::PostbackOff) => q.filter(api_keys::postback_gone_at.is_not_null()),
    };
    match within {
        Within::Channel(c) => q = q.filter(api_keys::channel_id.eq(c)),
        Within::AllExcept(Some(c)) => q = q.filter(api_keys::channel_id.ne(c)),
        Within::AllExcept(None) => {}
    }
    match cond {
        Cond::Ids(ids) => q.filter(api_keys::id.eq_any(ids.clone())),
        Cond::Filter(Filter::None) => q,
        Cond::Filter(Filter::Name(t)) => {
            q.filter(api_keys::name_lower.like(like_contains(t)).escape('\\'))
        }
        Cond::Filter(Filter::KeyIdOrName(id)) => q.filter(
            api_keys::key_id.eq(id.clone()).or(api_keys::name_lower
                .like(like_contains(&id.to_lowercase()))
                .escape('\\')),
        ),
        Cond::Filter(Filter::Hash(h)) => q.filter(api_keys::key_hash.eq(h.as_str().to_owned())),
    }
}

diesel::define_sql_function! {
    /// `COALESCE(expires_at, far future)`: keys that never expire sort after every date.
    fn coalesce(x: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>, y: diesel::sql_types::Timestamp) -> diesel::sql_types::Timestamp;
}

/// Where "never expires" sorts: after every date a key can have.
const NEVER: PrimitiveDateTime = time::macros::datetime!(9999-12-31 00:00);

/// The sort value of one row: where a keyset walk starts.
enum Anchor {
    Name(String, i64),
    Created(PrimitiveDateTime, i64),
    LastUsed(i64, i64),
    Uses(i64, i64),
    Expires(PrimitiveDateTime, i64),
}

fn anchor_of(row: &ApiKey, sort: Sort) -> Anchor {
    match sort {
        Sort::Name => Anchor::Name(row.name_lower.clone(), row.id),
        Sort::Created => Anchor::Created(row.created_at, row.id),
        Sort::LastUsed => Anchor::LastUsed(row.last_used_order, row.id),
        Sort::Uses => Anchor::Uses(row.uses_30d, row.id),
        Sort::Expires => Anchor::Expires(row.expires_at.unwrap_or(NEVER), row.id),
    }
}

/// Up to `limit` rows walking from `anchor` (exclusive) upwards (ascending) or
/// downwards. The redundant `col >= a` / `col <= a` bound lets both databases seek
/// straight into the index instead of scanning from its start, so a page 4,000 deep
/// costs what the first page costs.
#[expect(
    clippy::too_many_arguments,
    reason = "the walk's parts are independent inputs; a struct would only rename them"
)]
fn walk(
    conn: &mut DbConnection,
    within: Within,
    cond: &Cond,
    risk: Option<Risk>,
    sort: Sort,
    up: bool,
    anchor: Option<&Anchor>,
    limit: i64,
) -> DbResult<Vec<ApiKey>> {
    macro_rules! run {
        ($col:expr, $a:expr) => {{
            let mut q = filtered(within, cond, risk);
            if let Some((value, id)) = $a {
                q = if up {
                    q.filter($col.ge(value.clone()))
                        .filter($col.gt(value).or(api_keys::id.gt(id)))
                } else {
                    q.filter($col.le(value.clone()))
                        .filter($col.lt(value).or(api_keys::id.lt(id)))
                };
            }
            q = if up {
                q.order(($col.asc(), api_keys::id.asc()))
            } else {
                q.order(($col.desc(), api_keys::id.desc()))
            };
            // The index's ids are read by primary key, rows and all, in one statement.
            if let Cond::Ids(_) = cond {
                return Ok(q.limit(limit).select(ApiKey::as_select()).load(conn)?);
            }
            // The page's ids first, then their rows: PostgreSQL finds the ids with an
            // index-only scan that tests the name filter on the index entries (see
            // migration 2026-11-22-000002), where a plain index scan would read every
            // skipped row from the table first (16 ms instead of 1 ms for a filter
            // over 100,000 keys; 300 ms instead of 18 ms when nothing matches). Two
            // statements: a boxed subselect does not build for the multi-backend.
            let ids: Vec<i64> = q.limit(limit).select(api_keys::id).load(conn)?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let rows = api_keys::table
                .filter(api_keys::id.eq_any(ids))
                .into_boxed();
            let rows = if up {
                rows.order(($col.asc(), api_keys::id.asc()))
            } else {
                rows.order(($col.desc(), api_keys::id.desc()))
            };
            rows.select(ApiKey::as_select()).load(conn)?
        }};
    }
    Ok(match sort {
        Sort::Name => {
            let a = match anchor {
                Some(Anchor::Name(v, id)) => Some((v.clone(), *id)),
                _ => None,
            };
            run!(api_keys::name_lower, a)
        }
        Sort::Created => {
            let a = match anchor {
                Some(Anchor::Created(v, id)) => Some((*v, *id)),
                _ => None,
            };
            run!(api_keys::created_at, a)
        }
        Sort::LastUsed => {
            let a = match anchor {
                Some(Anchor::LastUsed(v, id)) => Some((*v, *id)),
                _ => None,
            };
            run!(api_keys::last_used_order, a)
        }
        Sort::Uses => {
            let a = match anchor {
                Some(Anchor::Uses(v, id)) => Some((*v, *id)),
                _ => None,
            };
            run!(api_keys::uses_30d, a)
        }
        Sort::Expires => {
            let a = match anchor {
                Some(Anchor::Expires(v, id)) => Some((*v, *id)),
                _ => None,
            };
            run!(coalesce(api_keys::expires_at, NEVER), a)
        }
    })
}

/// One page of the keys `within` a channel or across channels, and its total as
/// `count` asks.
pub fn list_page(
    conn: &mut DbConnection,
    within: Within,
    q: &ListQuery,
    count: Count,
) -> DbResult<KeyPage> {
    let cursor_row = match q.cursor {
        Some(Cursor::After(id) | Cursor::Before(id)) => filtered(within, &UNFILTERED, None)
            .filter(api_keys::id.eq(id))
            .select(ApiKey::as_select())
            .first(conn)
            .optional()?,
        None => None,
    };
    // A remembered total above what the index's ids serve says the filter is frequent.
    let resolved = match count {
        Count::Known(n) if n > IDS_PAGE as i64 => Resolved {
            cond: Cond::Filter(&q.filter),
            matches: Matches::Unknown,
        },
        _ => resolve(conn, within, &q.filter)?,
    };
    let cond = &resolved.cond;
    let anchor = cursor_row.as_ref().map(|r| anchor_of(r, q.sort));
    // A cursor whose row is gone (deleted meanwhile) restarts at the first page.
    let backwards = matches!(q.cursor, Some(Cursor::Before(_))) && anchor.is_some();
    let ascending = q.dir == Dir::Asc;
    let up = ascending != backwards;
    let (s, r) = (q.sort, q.risk);
    let mut rows = walk(conn, within, cond, r, s, up, anchor.as_ref(), q.size + 1)?;
    let more = rows.len() as i64 > q.size;
    rows.truncate(q.size as usize);
    if backwards {
        rows.reverse();
    }
    // Whether anything lies beyond `row` in direction `up`.
    let mut beyond = |row: Option<&ApiKey>, up: bool| -> DbResult<bool> {
        Ok(match row {
            Some(row) => {
                !walk(conn, within, cond, r, s, up, Some(&anchor_of(row, s)), 1)?.is_empty()
            }
            None => false,
        })
    };
    // The cursor's own row lies beyond the page on its side: when the list keeps it,
    // there is something there without asking (one query less on every deep page).
    let kept = !rows.is_empty() && cursor_row.as_ref().is_some_and(|row| keeps(row, cond, r));
    let (has_prev, has_next) = if backwards {
        (more, kept || beyond(rows.last(), ascending)?)
    } else if anchor.is_some() {
        (kept || beyond(rows.first(), !ascending)?, more)
    } else {
        (false, more)
    };
    let (total, capped) = match count {
        Count::Known(n) => (n, false),
        // A first page that holds every match has counted them (a rare filter's walk
        // read the whole list to find them; counting would read it again).
        _ if anchor.is_none() && !more => (rows.len() as i64, false),
        Count::Exact => (total_exact(conn, within, q, &resolved)?, false),
        Count::Capped { list } => total_capped(conn, within, q, &resolved, list)?,
    };
    Ok(KeyPage {
        rows,
        total,
        capped,
        has_prev,
        has_next,
    })
}

/// Whether the list keeps `row` (which is `within` it), as far as that is known without
/// a query: a risk needs one.
fn keeps(row: &ApiKey, cond: &Cond, risk: Option<Risk>) -> bool {
    risk.is_none()
        && match cond {
            Cond::Ids(ids) => ids.contains(&row.id),
            Cond::Filter(Filter::None) => true,
            Cond::Filter(Filter::Name(t)) => row.name_lower.contains(t.as_str()),
            Cond::Filter(Filter::KeyIdOrName(id)) => {
                row.key_id == *id || row.name_lower.contains(&id.to_lowercase())
            }
            Cond::Filter(Filter::Hash(h)) => row.key_hash == h.as_str(),
        }
}

/// The exact number of keys the resolved filter keeps.
fn total_exact(
    conn: &mut DbConnection,
    within: Within,
    q: &ListQuery,
    resolved: &Resolved,
) -> DbResult<i64> {
    match (resolved.matches, &q.filter, q.risk) {
        (Matches::Exactly(n), _, None) => return Ok(n),
        // More than the cap: the index still counts a name filter (SQLite without
        // reading any key).
        (Matches::OverCap, Filter::Name(text), None) => {
            if let Some(n) = key_search::count(conn, within, text)? {
                return Ok(n);
            }
        }
        _ => {}
    }
    Ok(filtered(within, &resolved.cond, q.risk)
        .count()
        .get_result(conn)?)
}

/// The number of keys the resolved filter keeps, counted up to [`CAP`], and whether
/// more may match (then the number is a lower bound).
fn total_capped(
    conn: &mut DbConnection,
    within: Within,
    q: &ListQuery,
    resolved: &Resolved,
    list: i64,
) -> DbResult<(i64, bool)> {
    match (resolved.matches, &resolved.cond, q.risk) {
        (Matches::Exactly(n), _, None) => Ok((n, false)),
        (Matches::OverCap, _, None) => Ok((CAP, true)),
        // A name the index cannot look up, in one channel: count over its newest keys
        // only (across channels the creation order has no index that holds names).
        (Matches::Unknown, Cond::Filter(Filter::Name(text)), None)
            if matches!(within, Within::Channel(_)) =>
        {
            let n = key_search::count_newest(conn, within, &like_contains(text), SCAN, CAP)?;
            // The channel's key count is a floor of its rows (rows whose roll ended
            // hold no slot): only below the scan's length is a count of rows needed.
            let covered = list < SCAN && {
                let rows: i64 = filtered(within, &UNFILTERED, None)
                    .count()
                    .get_result(conn)?;
                rows <= SCAN
            };
            Ok((n.min(CAP), n > CAP || !covered))
        }
        (_, cond, risk) => {
            let ids: Vec<i64> = filtered(within, cond, risk)
                .select(api_keys::id)
                .limit(CAP + 1)
                .load(conn)?;
            let n = ids.len() as i64;
            Ok((n.min(CAP), n > CAP))
        }
    }
}

/// How many keys `within` show `risk` (the risk overview's counts).
pub fn count_risk(conn: &mut DbConnection, within: Within, risk: Risk) -> DbResult<i64> {
    Ok(filtered(within, &UNFILTERED, Some(risk))
        .count()
        .get_result(conn)?)
}

/// The key ids of up to `limit` keys `within` that match the filter, oldest first:
/// what a bulk action over "every key matching this filter" works through.
pub fn matching_key_ids(
    conn: &mut DbConnection,
    within: Within,
    q: &ListQuery,
    limit: i64,
) -> DbResult<Vec<String>> {
    let resolved = resolve(conn, within, &q.filter)?;
    Ok(filtered(within, &resolved.cond, q.risk)
        .order(api_keys::id.asc())
        .limit(limit)
        .select(api_keys::key_id)
        .load(conn)?)
}

/// How many keys `within` match the filter, exactly.
pub fn count_matching(conn: &mut DbConnection, within: Within, q: &ListQuery) -> DbResult<i64> {
    let resolved = resolve(conn, within, &q.filter)?;
    total_exact(conn, within, q, &resolved)
}

/// Per channel, how many keys expire in `(now, now + window]` (the Channels page's
/// banner), channels with none left out.
pub fn expiring_per_channel(
    conn: &mut DbConnection,
    now: PrimitiveDateTime,
    window: time::Duration,
) -> DbResult<Vec<(i64, i64)>> {
    Ok(api_keys::table
        .filter(api_keys::expires_at.gt(now))
        .filter(api_keys::expires_at.le(now + window))
        .group_by(api_keys::channel_id)
        .select((api_keys::channel_id, diesel::dsl::count_star()))
        .load(conn)?)
}
