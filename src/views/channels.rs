use askama::Template;

use super::{Shell, format_time};
use crate::db::channels::Channel;

#[derive(Template)]
#[template(path = "pages/channels.html")]
pub struct ChannelsPage {
    pub shell: Shell,
    pub table: ChannelsTable,
    pub expiring: Option<ExpiryBanner>,
}

/// "5 keys expire within 7 days", linking to them (All keys for those who may search
/// it, each channel's filtered keys for everyone).
pub struct ExpiryBanner {
    pub total: i64,
    pub all_href: Option<String>,
    /// (channel name, its keys' href, count)
    pub channels: Vec<(String, String, i64)>,
}

impl ExpiryBanner {
    pub fn keys_word(&self) -> &'static str {
        if self.total == 1 {
            "key expires"
        } else {
            "keys expire"
        }
    }
}

#[derive(Template)]
#[template(path = "partials/channels_table.html")]
pub struct ChannelsTable {
    pub rows: Vec<ChannelRow>,
    pub can_manage: bool,
    pub default_limit: i64,
}

pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub key_count: i64,
    pub limit: i64,
    pub limit_is_default: bool,
    pub is_system: bool,
    pub at_limit: bool,
    pub created: String,
}

impl ChannelsTable {
    pub fn new(channels: Vec<Channel>, can_manage: bool, default_limit: i64) -> Self {
        let rows = channels
            .into_iter()
            .map(|c| {
                let limit = c.effective_limit(default_limit);
                ChannelRow {
                    id: c.id,
                    at_limit: c.key_count >= limit,
                    key_count: c.key_count,
                    limit,
                    limit_is_default: c.key_limit.is_none(),
                    is_system: c.is_system,
                    created: format_time(c.created_at),
                    name: c.name,
                }
            })
            .collect();
        ChannelsTable {
            rows,
            can_manage,
            default_limit,
        }
    }
}

/// What the channel form shows: the typed values and the message beside each field.
#[derive(Debug, Default, Clone)]
pub struct ChannelFormValues {
    pub name: String,
    pub key_limit: String,
    pub name_error: Option<String>,
    pub key_limit_error: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/channel_form.html")]
pub struct ChannelForm {
    /// `None` when creating.
    pub channel_id: Option<i64>,
    pub is_system: bool,
    pub values: ChannelFormValues,
    pub default_limit: i64,
    pub csrf: String,
    /// Rendered inside a `<dialog>` (htmx) or inside a page (no JavaScript).
    pub in_modal: bool,
}

impl ChannelForm {
    pub fn action(&self) -> String {
        match self.channel_id {
            Some(id) => format!("/channels/{id}"),
            None => "/channels".to_owned(),
        }
    }

    pub fn title(&self) -> &'static str {
        if self.channel_id.is_some() {
            "Edit channel"
        } else {
            "New channel"
        }
    }
}

#[derive(Template)]
#[template(path = "partials/channel_modal.html")]
pub struct ChannelModal {
    pub form: ChannelForm,
}

#[derive(Template)]
#[template(path = "pages/channel_form.html")]
pub struct ChannelFormPage {
    pub shell: Shell,
    pub form: ChannelForm,
}
