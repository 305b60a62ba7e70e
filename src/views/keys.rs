//! The API Keys page of one channel, its partials and its modals.

use askama::Template;
use time::PrimitiveDateTime;

pub use super::key_form::KeyForm;
use super::{Shell, format_time, iso_time};
use crate::db::channels::Channel;
use crate::db::key_list::KeyPage;
use crate::db::keys::ApiKey;
use crate::domain::key::{PlainKey, obfuscate};
use crate::domain::list::{Cursor, Dir, ListQuery, PAGE_SIZES, Sort};
use crate::domain::status::KeyStatus;
use crate::domain::webhook::SigningSecret;

/// What the signed-in person may do here (decided by the handler from the role).
#[derive(Debug, Clone, Copy)]
pub struct KeyPermissions {
    pub create: bool,
    pub edit: bool,
    pub activate: bool,
    pub revoke: bool,
}

/// The channel header: name, count, limit and the create button.
#[derive(Template)]
#[template(path = "partials/keys_stats.html")]
pub struct KeysStats {
    pub channel_id: i64,
    pub key_count: i64,
    pub limit: i64,
    pub can_create: bool,
}

impl KeysStats {
    pub fn new(channel: &Channel, default_limit: i64, can_create: bool) -> Self {
        KeysStats {
            channel_id: channel.id,
            key_count: channel.key_count,
            limit: channel.effective_limit(default_limit),
            can_create,
        }
    }

    pub fn at_limit(&self) -> bool {
        self.key_count >= self.limit
    }

    /// "1 of 1 key", "3 of 10 keys".
    pub fn keys_word(&self) -> &'static str {
        if self.limit == 1 { "key" } else { "keys" }
    }
}

/// One row of the table; also the fragment every row action answers with.
#[derive(Template)]
#[template(path = "partials/key_row.html")]
pub struct KeyRow {
    pub key_id: String,
    pub name: String,
    pub description: Option<String>,
    pub obfuscated: String,
    pub scopes: Vec<String>,
    pub created: String,
    pub created_iso: String,
    pub created_by: String,
    pub expires: Option<String>,
    /// "in 3 days", beside the expiry date.
    pub expires_in: Option<String>,
    /// Expires within 7 days.
    pub expires_soon: bool,
    pub status: KeyStatus,
    pub last_used: Option<String>,
    pub uses_24h: i64,
    pub uses_30d: i64,
    /// "100/second · 480 credits": the key's rate limits and remaining credits.
    pub limits: Option<String>,
    pub enabled: bool,
    pub rolled: bool,
    /// Imported from another system by its digest; named in a leak report.
    pub imported: bool,
    pub leaked: bool,
    pub perms: KeyPermissions,
    /// Set on the All keys page, whose table has a Channel column.
    pub channel: Option<(i64, String)>,
}

/// "100/second, 10000/day · 480 credits", or `None` for a key without either.
pub fn limits_summary(k: &ApiKey) -> Option<String> {
    let mut parts = Vec::new();
    let limits = crate::domain::limits::limits_text(&k.limits());
    if !limits.is_empty() {
        parts.push(limits);
    }
    if let Some(c) = k.credits {
        parts.push(if c == 1 {
            "1 credit".to_owned()
        } else {
            format!("{c} credits")
        });
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

impl KeyRow {
    pub fn new(k: &ApiKey, now: PrimitiveDateTime, perms: KeyPermissions) -> Self {
        KeyRow {
            key_id: k.key_id.clone(),
            limits: limits_summary(k),
            name: k.name.clone(),
            description: k.description.clone(),
            obfuscated: obfuscate(&k.prefix, &k.key_id, &k.last_four),
            scopes: k.scope_list().into_iter().map(str::to_owned).collect(),
            created: format_time(k.created_at),
            created_iso: iso_time(k.created_at),
            created_by: k.created_by.clone(),
            expires: k.expires_at.map(format_time),
            expires_in: k
                .expires_at
                .and_then(|t| crate::domain::clock::relative_future(now, t)),
            expires_soon: k
                .expires_at
                .is_some_and(|t| t > now && t <= now + time::Duration::days(7)),
            status: k.status(now),
            last_used: k.last_used_at.map(format_time),
            uses_24h: k.uses_24h,
            uses_30d: k.uses_30d,
            enabled: k.enabled,
            // A rolled key is never rolled again (roll its successor).
            rolled: k.rolled_to_key_id.is_some(),
            imported: k.imported_as.is_some(),
            leaked: k.leaked_at.is_some(),
            perms,
            channel: None,
        }
    }

    /// Whether the row has a checkbox for bulk actions.
    pub fn selectable(&self) -> bool {
        self.perms.revoke || self.perms.activate || self.perms.edit
    }

    pub fn with_channel(mut self, id: i64, name: &str) -> Self {
        self.channel = Some((id, name.to_owned()));
        self
    }
}

/// A sortable column header link.
pub struct SortLink {
    pub label: &'static str,
    pub href: String,
    /// `ascending` / `descending` when this column is the current sort.
    pub aria_sort: Option<&'static str>,
    pub arrow: &'static str,
}

/// Table, pagination and page-size picker: what filtering and paging swap.
#[derive(Template)]
#[template(path = "partials/keys_results.html")]
pub struct KeysResults {
    pub base: String,
    /// This very list (filter, sort, position): where it refreshes itself from.
    pub self_href: String,
    pub rows: Vec<KeyRow>,
    pub query: ListQuery,
    pub total: i64,
    /// More than `total` keys match (a capped count): the range line says "1000+".
    pub capped: bool,
    /// This list with every match counted: the capped range line's "Count all".
    pub count_all_href: String,
    pub first: i64,
    pub last: i64,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    pub sort_links: Vec<SortLink>,
    pub page_sizes: Vec<i64>,
    pub can_create: bool,
    pub at_limit: bool,
    pub channel_id: i64,
    pub show_channel: bool,
    /// The bulk action bar, when the person may act on keys.
    pub bulk: Option<BulkBar>,
}

impl KeysResults {
    pub fn new(
        channel_id: i64,
        page: &KeyPage,
        query: &ListQuery,
        now: PrimitiveDateTime,
        perms: KeyPermissions,
        at_limit: bool,
        base: String,
    ) -> Self {
        let rows: Vec<KeyRow> = page
            .rows
            .iter()
            .map(|k| KeyRow::new(k, now, perms))
            .collect();
        let n = rows.len() as i64;
        // The position is carried in the URL; keep it inside what exists (a capped
        // total is only a floor: the page may lie beyond it).
        let first_index = if n == 0 {
            0
        } else if page.capped {
            query.pos
        } else {
            query.pos.min((page.total - n).max(0))
        };
        let prev_href = match (page.has_prev, page.rows.first()) {
            (true, Some(first)) => Some(format!(
                "{base}{}",
                query.href(
                    Some(Cursor::Before(first.id)),
                    (first_index - query.size).max(0)
                )
            )),
            _ => None,
        };
        let next_href = match (page.has_next, page.rows.last()) {
            (true, Some(last)) => Some(format!(
                "{base}{}",
                query.href(Some(Cursor::After(last.id)), first_index + n)
            )),
            _ => None,
        };
        let sort_links = [
            ("Name", Sort::Name),
            ("Created", Sort::Created),
            ("Last used", Sort::LastUsed),
            ("requests 24 h / 30 d", Sort::Uses),
            ("Expires", Sort::Expires),
        ]
        .into_iter()
        .map(|(label, sort)| {
            let current = query.sort == sort;
            let dir = if current {
                query.dir.flip()
            } else {
                sort.natural_dir()
            };
            SortLink {
                label,
                href: format!("{base}{}", query.href_with(sort, dir, query.size, None, 0)),
                aria_sort: current.then(|| {
                    if query.dir == Dir::Asc {
                        "ascending"
                    } else {
                        "descending"
                    }
                }),
                arrow: match (current, query.dir) {
                    (false, _) => "",
                    (true, Dir::Asc) => "↑",
                    (true, Dir::Desc) => "↓",
                },
            }
        })
        .collect();
        KeysResults {
            rows,
            // A floor never below the rows already passed: "1041–1060 of 1060+".
            total: if page.capped {
                page.total.max(first_index + n)
            } else {
                page.total
            },
            capped: page.capped,
            count_all_href: format!("{base}{}", query.href_counting_all()),
            first: if n == 0 { 0 } else { first_index + 1 },
            last: first_index + n,
            prev_href,
            next_href,
            sort_links,
            page_sizes: PAGE_SIZES.to_vec(),
            query: query.clone(),
            can_create: perms.create,
            at_limit,
            channel_id,
            self_href: format!("{base}{}", query.href(query.cursor, query.pos)),
            base,
            show_channel: false,
            bulk: (perms.revoke || perms.activate || perms.edit).then_some(BulkBar {
                channel: (channel_id > 0).then_some(channel_id),
                activate: perms.activate,
                revoke: perms.revoke,
                edit: perms.edit,
            }),
        }
    }

    pub fn sort_link(&self, i: usize) -> &SortLink {
        &self.sort_links[i]
    }
}

/// Header, filter box and results: the body of both the page and the dialog.
#[derive(Template)]
#[template(path = "partials/keys_view.html")]
pub struct KeysView {
    pub channel_id: i64,
    pub channel_name: String,
    pub is_system: bool,
    pub stats: KeysStats,
    pub results: KeysResults,
    pub query: ListQuery,
    pub in_dialog: bool,
    /// The filter form posts without JavaScript (a pasted key stays out of URLs).
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "pages/keys.html")]
pub struct KeysPage {
    pub shell: Shell,
    pub view: KeysView,
}

#[derive(Template)]
#[template(path = "partials/keys_dialog.html")]
pub struct KeysDialog {
    pub view: KeysView,
}

/// Shows the new key once.
#[derive(Template)]
#[template(path = "partials/reveal.html")]
pub struct Reveal<'a> {
    pub key: &'a PlainKey,
    /// The POSTback signing secret, when the new key has a POSTback URL.
    pub secret: Option<&'a SigningSecret>,
    pub name: String,
    pub done_href: String,
    pub in_modal: bool,
}

/// Shows a new POSTback signing secret once (first URL, or a roll).
#[derive(Template)]
#[template(path = "partials/secret_reveal.html")]
pub struct SecretReveal<'a> {
    pub s: &'a SigningSecret,
    pub name: String,
    pub done_href: String,
    pub in_modal: bool,
    /// After a roll: until when the previous secret also signs.
    pub overlap_ends: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/rename_form.html")]
pub struct RenameForm {
    pub key_id: String,
    pub name: String,
    pub error: Option<String>,
    pub csrf: String,
    pub cancel_href: String,
    pub in_modal: bool,
}

/// "Are you sure?" for activate, deactivate and delete.
#[derive(Template)]
#[template(path = "partials/confirm.html")]
pub struct Confirm {
    pub key_id: String,
    pub key_name: String,
    pub action: &'static str,
    pub title: &'static str,
    pub message: String,
    pub button: &'static str,
    pub button_class: &'static str,
    pub csrf: String,
    pub cancel_href: String,
    pub in_modal: bool,
}

/// Any of the forms above, inside a `<dialog>` stacked over the page.
#[derive(Template)]
#[template(path = "partials/stack_modal.html")]
pub struct StackModal<'a> {
    pub title: &'a str,
    pub body: String,
    /// The reveal modal cannot be dismissed until the key is saved.
    pub require_ack: bool,
}

/// Any of the forms above as a page of its own (no JavaScript).
#[derive(Template)]
#[template(path = "pages/form_page.html")]
pub struct FormPage<'a> {
    pub shell: Shell,
    pub title: &'a str,
    pub body: String,
}

/// Search across channels (admins and support).
#[derive(Template)]
#[template(path = "pages/all_keys.html")]
pub struct AllKeysPage {
    pub shell: Shell,
    pub results: KeysResults,
    pub query: ListQuery,
}

/// Choose the grace period of a roll.
#[derive(Template)]
#[template(path = "partials/roll_form.html")]
pub struct RollForm {
    pub key_id: String,
    pub key_name: String,
    pub expires: Option<String>,
    pub choices: Vec<(&'static str, &'static str)>,
    pub csrf: String,
    pub cancel_href: String,
    pub in_modal: bool,
}

pub struct RiskItem {
    pub label: &'static str,
    pub hint: &'static str,
    pub count: i64,
    pub href: String,
}

#[derive(Template)]
#[template(path = "pages/risks.html")]
pub struct RisksPage {
    pub shell: Shell,
    pub items: Vec<RiskItem>,
}

/// "Deactivate 137 keys?": the confirmation of a bulk action, carrying the selection
/// (explicit ids, or the filter) in hidden fields.
#[derive(Template)]
#[template(path = "partials/bulk_confirm.html")]
pub struct BulkConfirm {
    pub pairs: Vec<(&'static str, String)>,
    pub message: String,
    pub button: String,
    pub button_class: &'static str,
    /// Set expiry: the field, what was typed, and what was wrong with it.
    pub expiry: bool,
    pub expires_text: String,
    pub error: Option<String>,
    pub csrf: String,
    pub cancel_href: String,
    pub in_modal: bool,
}

/// The bar above the table that acts on the selected keys: which actions the person
/// may take, and what "all matching" means here.
pub struct BulkBar {
    /// The channel of a channel's page (`None` on All keys).
    pub channel: Option<i64>,
    pub activate: bool,
    pub revoke: bool,
    pub edit: bool,
}
