//! The keys table's query: filter, sort, page size and keyset cursor, parsed leniently
//! from the URL (a hand-edited or stale bookmark falls back to defaults, never errors).

use serde::Deserialize;

use crate::domain::key::{KeyHash, PlainKey, looks_like_key_id};

/// Which keys a list covers: one channel's, or every channel's but (optionally) one
/// hidden channel's (the `system` channel, for people who may not see it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within {
    Channel(i64),
    AllExcept(Option<i64>),
}

pub const PAGE_SIZES: [i64; 4] = [10, 20, 50, 100];
pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const FILTER_MAX: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Name,
    Created,
    LastUsed,
    /// Requests in the last 30 days (from rollups).
    Uses,
    /// Soonest expiry first (keys that never expire last).
    Expires,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Created => "created",
            Sort::LastUsed => "last_used",
            Sort::Uses => "uses",
            Sort::Expires => "expires",
        }
    }

    fn parse(s: &str) -> Option<Sort> {
        [
            Sort::Name,
            Sort::Created,
            Sort::LastUsed,
            Sort::Uses,
            Sort::Expires,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// The direction a click on the column header starts with.
    pub fn natural_dir(self) -> Dir {
        match self {
            Sort::Name | Sort::Expires => Dir::Asc,
            Sort::Created | Sort::LastUsed | Sort::Uses => Dir::Desc,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

impl Dir {
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Asc => "asc",
            Dir::Desc => "desc",
        }
    }

    pub fn flip(self) -> Dir {
        match self {
            Dir::Asc => Dir::Desc,
            Dir::Desc => Dir::Asc,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The page after the row with this id.
    After(i64),
    /// The page before the row with this id.
    Before(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    None,
    /// Name contains the text (case-insensitive).
    Name(String),
    /// Key id equals the text, or the name contains it.
    KeyIdOrName(String),
    /// A pasted full key: only its hash is kept.
    Hash(KeyHash),
}

#[derive(Debug, Deserialize, Default)]
pub struct ListParams {
    pub q: Option<String>,
    pub size: Option<String>,
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub after: Option<String>,
    pub before: Option<String>,
    pub pos: Option<String>,
    pub risk: Option<String>,
    /// `all`: count every match, however many (a capped total's "Count all").
    pub count: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// What the filter box shows. For a pasted full key this is its key id: the
    /// plaintext is never echoed back into a page or a URL.
    pub text: String,
    pub filter: Filter,
    pub size: i64,
    pub sort: Sort,
    pub dir: Dir,
    pub cursor: Option<Cursor>,
    /// Index of the first row of the page (for "21–40 of 134"); carried in the URL
    /// because keyset pages have no offset.
    pub pos: i64,
    /// A risk the keys must show (the risk overview links here).
    pub risk: Option<Risk>,
    /// Count every match, however many. Otherwise the dashboard counts up to a cap
    /// ("1000+"): an exact total of a frequent filter reads every key it matches.
    /// Never carried into other links: an exact total is remembered instead.
    pub count_all: bool,
}

/// Keys worth a second look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Risk {
    /// No expiry date.
    NeverExpires,
    /// Not used for 90 days, or never.
    Idle,
    /// Usable from any address.
    NoNetworkLimit,
    /// No rate limit: one leaked key can be used as fast as it is sent.
    NoRateLimit,
    /// Expiring within 7 days.
    ExpiringSoon,
    /// POSTback turned off because its receiver answered 410 Gone.
    PostbackOff,
}

impl Risk {
    pub const ALL: [Risk; 6] = [
        Risk::NeverExpires,
        Risk::Idle,
        Risk::NoNetworkLimit,
        Risk::NoRateLimit,
        Risk::ExpiringSoon,
        Risk::PostbackOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::NeverExpires => "never-expires",
            Risk::Idle => "idle",
            Risk::NoNetworkLimit => "no-network-limit",
            Risk::NoRateLimit => "no-rate-limit",
            Risk::ExpiringSoon => "expiring",
            Risk::PostbackOff => "postback-off",
        }
    }

    pub fn parse(s: &str) -> Option<Risk> {
        Risk::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Risk::NeverExpires => "Keys that never expire",
            Risk::Idle => "Keys idle for 90 days or never used",
            Risk::NoNetworkLimit => "Keys usable from any address",
            Risk::NoRateLimit => "No rate limit: keys usable at any speed",
            Risk::ExpiringSoon => "Keys expiring within 7 days",
            Risk::PostbackOff => "Keys whose POSTback was turned off",
        }
    }
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery::parse(&ListParams::default())
    }
}

impl ListQuery {
    pub fn parse(p: &ListParams) -> Self {
        let raw: String =
            p.q.as_deref()
                .unwrap_or("")
                .trim()
                .chars()
                .take(FILTER_MAX)
                .collect();
        let (text, filter) = parse_filter(&raw);
        let size = p
            .size
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|s| PAGE_SIZES.contains(s))
            .unwrap_or(DEFAULT_PAGE_SIZE);
        let sort = p
            .sort
            .as_deref()
            .and_then(Sort::parse)
            .unwrap_or(Sort::Created);
        let dir = match p.dir.as_deref() {
            Some("asc") => Dir::Asc,
            Some("desc") => Dir::Desc,
            _ => sort.natural_dir(),
        };
        let id = |s: &Option<String>| {
            s.as_deref()
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|v| *v > 0)
        };
        let cursor = match (id(&p.after), id(&p.before)) {
            (Some(a), _) => Some(Cursor::After(a)),
            (None, Some(b)) => Some(Cursor::Before(b)),
            _ => None,
        };
        let pos = if cursor.is_some() {
            p.pos
                .as_deref()
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
                .clamp(0, i64::MAX / 2)
        } else {
            0
        };
        let risk = p.risk.as_deref().and_then(Risk::parse);
        ListQuery {
            text,
            filter,
            size,
            sort,
            dir,
            cursor,
            pos,
            risk,
            count_all: p.count.as_deref() == Some("all"),
        }
    }

    /// Whether the list shows only keys expiring within 7 days (the filter's chip).
    pub fn expiring_only(&self) -> bool {
        self.risk == Some(Risk::ExpiringSoon)
    }

    /// The query string for this list with another cursor (and the position it starts
    /// at). Defaults are left out so URLs stay short.
    pub fn href(&self, cursor: Option<Cursor>, pos: i64) -> String {
        self.href_with(self.sort, self.dir, self.size, cursor, pos)
    }

    /// This very list (filter, sort, position) with every match counted.
    pub fn href_counting_all(&self) -> String {
        let href = self.href(self.cursor, self.pos);
        let sep = if href.is_empty() { '?' } else { '&' };
        format!("{href}{sep}count=all")
    }

    pub fn href_with(
        &self,
        sort: Sort,
        dir: Dir,
        size: i64,
        cursor: Option<Cursor>,
        pos: i64,
    ) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.text.is_empty() {
            pairs.push(("q", self.text.clone()));
        }
        if let Some(r) = self.risk {
            pairs.push(("risk", r.as_str().into()));
        }
        if size != DEFAULT_PAGE_SIZE {
            pairs.push(("size", size.to_string()));
        }
        if sort != Sort::Created {
            pairs.push(("sort", sort.as_str().into()));
        }
        if dir != sort.natural_dir() {
            pairs.push(("dir", dir.as_str().into()));
        }
        match cursor {
            Some(Cursor::After(id)) => pairs.push(("after", id.to_string())),
            Some(Cursor::Before(id)) => pairs.push(("before", id.to_string())),
            None => {}
        }
        if cursor.is_some() && pos > 0 {
            pairs.push(("pos", pos.to_string()));
        }
        let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if qs.is_empty() {
            String::new()
        } else {
            format!("?{qs}")
        }
    }
}

fn parse_filter(raw: &str) -> (String, Filter) {
    if raw.is_empty() {
        return (String::new(), Filter::None);
    }
    if let Ok((key, parts)) = PlainKey::parse(raw) {
        return (parts.key_id, Filter::Hash(key.hash()));
    }
    // Something shaped like a full key that does not check out (a typo): search by its
    // key id only, and never echo the secret-looking rest back into a page or URL.
    let mut pieces = raw.splitn(3, '_');
    if let (Some(_), Some(id), Some(rest)) = (pieces.next(), pieces.next(), pieces.next()) {
        if looks_like_key_id(id) && rest.len() >= 8 {
            return (id.to_owned(), Filter::KeyIdOrName(id.to_owned()));
        }
    }
    // `lk_3fQ9aZx1Lm0P` (prefix and key id, as tables show it) or a bare key id.
    let id_part = raw.split_once('_').map_or(raw, |(_, rest)| rest);
    let id_part = id_part.split(['_', '…']).next().unwrap_or(id_part);
    if looks_like_key_id(id_part) {
        return (raw.to_owned(), Filter::KeyIdOrName(id_part.to_owned()));
    }
    (raw.to_owned(), Filter::Name(raw.to_lowercase()))
}

/// `%` and `_` typed by a person match themselves, not any character.
pub fn like_contains(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> ListParams {
        ListParams {
            q: Some(q.into()),
            ..ListParams::default()
        }
    }

    #[test]
    fn defaults_are_newest_first_twenty_per_page() {
        let q = ListQuery::default();
        assert_eq!(
            (q.size, q.sort, q.dir, q.cursor, q.pos),
            (20, Sort::Created, Dir::Desc, None, 0)
        );
        assert_eq!(q.href(None, 0), "");
    }

    #[test]
    fn junk_parameters_fall_back_to_defaults() {
        let p = ListParams {
            size: Some("37".into()),
            sort: Some("drop table".into()),
            dir: Some("sideways".into()),
            after: Some("-5".into()),
            pos: Some("999999999999999999999".into()),
            ..ListParams::default()
        };
        let q = ListQuery::parse(&p);
        assert_eq!(
            (q.size, q.sort, q.dir, q.cursor, q.pos),
            (20, Sort::Created, Dir::Desc, None, 0)
        );
    }

    #[test]
    fn a_pasted_full_key_becomes_its_hash_and_shows_only_its_id() {
        let (key, parts) = PlainKey::generate("lk");
        let q = ListQuery::parse(&params(key.reveal()));
        assert_eq!(q.filter, Filter::Hash(key.hash()));
        assert_eq!(q.text, parts.key_id);
        assert!(!q.href(None, 0).contains(&key.reveal()[16..]));
    }

    #[test]
    fn key_ids_and_obfuscated_keys_search_by_id() {
        let q = ListQuery::parse(&params("lk_3fQ9aZx1Lm0P…wXyz"));
        assert_eq!(q.filter, Filter::KeyIdOrName("3fQ9aZx1Lm0P".into()));
        let q = ListQuery::parse(&params("3fQ9aZx1Lm0P"));
        assert_eq!(q.filter, Filter::KeyIdOrName("3fQ9aZx1Lm0P".into()));
        let (key, parts) = PlainKey::generate("lk");
        let mut typo = key.reveal().to_owned();
        typo.replace_range(40..41, if &typo[40..41] == "A" { "B" } else { "A" });
        let q = ListQuery::parse(&params(&typo));
        assert_eq!(q.filter, Filter::KeyIdOrName(parts.key_id.clone()));
        assert_eq!(q.text, parts.key_id);
        let q = ListQuery::parse(&params("Billing"));
        assert_eq!(q.filter, Filter::Name("billing".into()));
    }

    #[test]
    fn hrefs_keep_filter_sort_size_and_cursor() {
        let p = ListParams {
            q: Some("a b&c".into()),
            size: Some("50".into()),
            sort: Some("name".into()),
            ..ListParams::default()
        };
        let q = ListQuery::parse(&p);
        assert_eq!(
            q.href(Some(Cursor::After(7)), 50),
            "?q=a+b%26c&size=50&sort=name&after=7&pos=50"
        );
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_contains("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
