//! How an exported key is written: a CSV line or a JSON object, with every column of
//! the key but its secrets (no plaintext, no hash or digest, no signing secret), and
//! the import form.

use askama::Template;
use serde::Serialize;
use time::PrimitiveDateTime;

use super::iso_time;
use crate::db::keys::ApiKey;
use crate::domain::csv::cell as csv_cell;
use crate::domain::import_rows::RowError;
use crate::domain::key::obfuscate;
use crate::domain::list::ListQuery;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// `csv` (also when absent) or `json`; anything else is refused with a message.
    pub fn parse(s: Option<&str>) -> Result<Format, String> {
        match s.map(str::trim) {
            None | Some("" | "csv") => Ok(Format::Csv),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(format!(
                "Unknown export format \"{}\": use csv or json.",
                other.chars().take(20).collect::<String>()
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// One exported key.
#[derive(Serialize)]
pub struct ExportedKey<'a> {
    key_id: &'a str,
    obfuscated: String,
    name: &'a str,
    description: Option<&'a str>,
    channel_id: i64,
    channel: &'a str,
    status: &'static str,
    enabled: bool,
    scopes: Vec<&'a str>,
    allowed_cidrs: Vec<&'a str>,
    expires_at: Option<String>,
    created_at: String,
    created_by: &'a str,
    last_used_at: Option<String>,
    last_used_ip: Option<&'a str>,
    roll_ends_at: Option<String>,
    rolled_to_key_id: Option<&'a str>,
    postback_url: Option<&'a str>,
    off_the_record: bool,
    /// `sha256` / `sha512` for a key imported by that digest.
    imported_as: Option<&'a str>,
    leaked_at: Option<String>,
}

pub const CSV_HEADER: &str = "key_id,obfuscated,name,description,channel_id,channel,status,enabled,scopes,allowed_cidrs,expires_at,created_at,created_by,last_used_at,last_used_ip,roll_ends_at,rolled_to_key_id,postback_url,off_the_record,imported_as,leaked_at\r\n";

impl<'a> ExportedKey<'a> {
    pub fn of(k: &'a ApiKey, channel: &'a str, now: PrimitiveDateTime) -> Self {
        ExportedKey {
            key_id: &k.key_id,
            obfuscated: obfuscate(&k.prefix, &k.key_id, &k.last_four),
            name: &k.name,
            description: k.description.as_deref(),
            channel_id: k.channel_id,
            channel,
            status: k.status(now).as_str(),
            enabled: k.enabled,
            scopes: k.scope_list(),
            allowed_cidrs: k.cidr_list(),
            expires_at: k.expires_at.map(iso_time),
            created_at: iso_time(k.created_at),
            created_by: &k.created_by,
            last_used_at: k.last_used_at.map(iso_time),
            last_used_ip: k.last_used_ip.as_deref(),
            roll_ends_at: k.roll_ends_at.map(iso_time),
            rolled_to_key_id: k.rolled_to_key_id.as_deref(),
            postback_url: k.postback_url.as_deref(),
            off_the_record: k.off_the_record,
            imported_as: k.imported_as.as_deref(),
            leaked_at: k.leaked_at.map(iso_time),
        }
    }

    /// One CSV line (CRLF), the columns of [`CSV_HEADER`].
    pub fn csv_line(&self) -> String {
        let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
        let cells = [
            self.key_id.to_owned(),
            self.obfuscated.clone(),
            self.name.to_owned(),
            text(self.description),
            self.channel_id.to_string(),
            self.channel.to_owned(),
            self.status.to_owned(),
            self.enabled.to_string(),
            self.scopes.join(" "),
            self.allowed_cidrs.join(" "),
            self.expires_at.clone().unwrap_or_default(),
            self.created_at.clone(),
            self.created_by.to_owned(),
            self.last_used_at.clone().unwrap_or_default(),
            text(self.last_used_ip),
            self.roll_ends_at.clone().unwrap_or_default(),
            text(self.rolled_to_key_id),
            text(self.postback_url),
            self.off_the_record.to_string(),
            text(self.imported_as),
            self.leaked_at.clone().unwrap_or_default(),
        ];
        let mut line = cells
            .iter()
            .map(|c| csv_cell(c))
            .collect::<Vec<_>>()
            .join(",");
        line.push_str("\r\n");
        line
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The export link of a list: its filter, risk and sort, no page position.
pub fn export_href(base: &str, query: &ListQuery, format: Format) -> String {
    let qs = query.href(None, 0);
    let sep = if qs.is_empty() { "?" } else { "&" };
    format!("{base}/export{qs}{sep}format={}", format.as_str())
}

impl super::keys::KeysResults {
    /// This list's export link in `format` (`csv` / `json`), for the template.
    pub fn export_link(&self, format: &str) -> String {
        let format = if format == "json" {
            Format::Json
        } else {
            Format::Csv
        };
        export_href(&self.base, &self.query, format)
    }
}

/// The import form of a channel, with the problems of the last try.
#[derive(Template)]
#[template(path = "partials/import_form.html")]
pub struct ImportForm {
    pub channel_id: i64,
    pub channel_name: String,
    pub text: String,
    pub errors: Vec<RowError>,
    /// A problem of the whole import (the channel's limit).
    pub alert: Option<String>,
    pub csrf: String,
    pub in_modal: bool,
    /// "10,000".
    pub max_rows: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_strictly() {
        assert_eq!(Format::parse(None), Ok(Format::Csv));
        assert_eq!(Format::parse(Some("json")), Ok(Format::Json));
        assert!(Format::parse(Some("xml")).is_err());
    }

    #[test]
    fn export_links_keep_the_filter_but_not_the_page() {
        let q = ListQuery::parse(&crate::domain::list::ListParams {
            q: Some("bill".into()),
            after: Some("7".into()),
            ..Default::default()
        });
        assert_eq!(
            export_href("/keys", &q, Format::Json),
            "/keys/export?q=bill&format=json"
        );
        assert_eq!(
            export_href("/channels/3/keys", &ListQuery::default(), Format::Csv),
            "/channels/3/keys/export?format=csv"
        );
    }
}
