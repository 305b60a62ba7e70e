//! The file of an import: CSV (with a header line) or JSON (an array of objects), one
//! key per row, read into rows that remember the line they started on, then checked
//! into settings and a digest. Every problem is reported as (line, field, message);
//! nothing is saved unless every row is good (`app::import`).
//!
//! Columns / fields: `name` (required), `description`, `expires_at`
//! (`YYYY-MM-DDTHH:MM[:SS][Z]`, UTC), `scopes` and `cidrs` (CSV: separated by spaces or
//! commas; JSON: arrays; `allowed_cidrs` is accepted too), and exactly one of `sha256`
//! or `sha512`: the hex digest of the existing key's plaintext.

use time::PrimitiveDateTime;

mod json;
mod row;

use row::split_list;
pub use row::{RawRow, RowError};

use crate::domain::csv;
use crate::domain::imported::{Algorithm, ImportDigest};
use crate::domain::key_settings::{KeyInput, KeySettings};
use crate::domain::receiver::Policy;

/// At most this many keys per import (one transaction).
pub const MAX_ROWS: usize = 10_000;
/// The columns an import may carry.
pub const COLUMNS: [&str; 8] = [
    "name",
    "description",
    "expires_at",
    "scopes",
    "cidrs",
    "allowed_cidrs",
    "sha256",
    "sha512",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// JSON when the text starts with `[` (after spaces), CSV otherwise.
    pub fn detect(text: &str) -> Format {
        if text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('[')
        {
            Format::Json
        } else {
            Format::Csv
        }
    }
}

/// A good row: what to store.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: usize,
    pub item: usize,
    pub settings: KeySettings,
    pub digest: ImportDigest,
}

/// Reads the file in its format (detected from its first character).
pub fn read(text: &str) -> Result<Vec<RawRow>, Vec<RowError>> {
    let text = text.trim_start_matches('\u{feff}');
    let rows = match Format::detect(text) {
        Format::Json => json::read_json(text)?,
        Format::Csv => read_csv(text)?,
    };
    if rows.is_empty() {
        return Err(vec![RowError::new(1, "file", "The file holds no keys.")]);
    }
    if rows.len() > MAX_ROWS {
        return Err(vec![RowError::new(
            1,
            "file",
            format!(
                "Import at most {MAX_ROWS} keys at a time; this file holds {}.",
                rows.len()
            ),
        )]);
    }
    Ok(rows)
}

/// Checks every row: its settings (the same rules as the generate form), its digest,
/// and that no name or digest appears twice in the file.
pub fn check(
    rows: Vec<RawRow>,
    allowed_scopes: &[String],
    now: PrimitiveDateTime,
) -> Result<Vec<ImportRow>, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut good = Vec::with_capacity(rows.len());
    let mut names: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut digests: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for row in rows {
        let (line, item) = (row.line, row.item);
        let first_error = errors.len();
        let input = KeyInput {
            name: row.name.clone(),
            description: row.description.clone(),
            expires_at: row.expires_at.clone(),
            scopes: row.scopes.clone(),
            cidrs: row.cidrs.clone(),
            postback_url: String::new(),
            off_the_record: false,
            enabled: true,
            ..KeyInput::default()
        };
        let settings = match input.parse(allowed_scopes, now, None, &Policy::default()) {
            Ok(s) => Some(s),
            Err(e) => {
                for (field, message) in e.fields() {
                    let field = if field.starts_with("allowed_cidrs") {
                        "cidrs".to_owned()
                    } else {
                        field
                    };
                    errors.push(RowError::new(line, &field, message));
                }
                None
            }
        };
        let digest = match (&row.sha256, &row.sha512) {
            (Some(_), Some(_)) => Err(RowError::new(
                line,
                "sha256",
                "Give either sha256 or sha512, not both.",
            )),
            (Some(h), None) => ImportDigest::parse_hex(Algorithm::Sha256, h)
                .map_err(|m| RowError::new(line, "sha256", m)),
            (None, Some(h)) => ImportDigest::parse_hex(Algorithm::Sha512, h)
                .map_err(|m| RowError::new(line, "sha512", m)),
            (None, None) => Err(RowError::new(
                line,
                "sha256",
                "Give the sha256 or sha512 hex digest of the existing key.",
            )),
        };
        let digest = match digest {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        if let Some(s) = &settings {
            if let Some(first) = names.insert(s.name.to_lowercase(), line) {
                errors.push(RowError::new(
                    line,
                    "name",
                    format!("The name is also on line {first}; names are unique in a channel."),
                ));
            }
        }
        if let Some(d) = &digest {
            if let Some(first) = digests.insert(d.key_hash().0, line) {
                errors.push(RowError::new(
                    line,
                    d.algorithm.as_str(),
                    format!("The same key is also on line {first}."),
                ));
            }
        }
        for e in &mut errors[first_error..] {
            e.item = item;
        }
        if let (Some(settings), Some(digest)) = (settings, digest) {
            good.push(ImportRow {
                line,
                item,
                settings,
                digest,
            });
        }
    }
    if errors.is_empty() {
        Ok(good)
    } else {
        Err(errors)
    }
}

fn read_csv(text: &str) -> Result<Vec<RawRow>, Vec<RowError>> {
    let records =
        csv::records(text).map_err(|(line, message)| vec![RowError::new(line, "file", message)])?;
    let mut records = records.into_iter();
    let Some((header_line, header)) = records.next() else {
        return Ok(Vec::new());
    };
    let mut columns = Vec::with_capacity(header.len());
    let mut errors = Vec::new();
    for h in &header {
        let h = h.trim().to_ascii_lowercase();
        if !COLUMNS.contains(&h.as_str()) {
            let shown: String = h.chars().take(40).collect();
            errors.push(RowError::new(
                header_line,
                "header",
                format!(
                    "Unknown column \"{shown}\". Use: name, description, expires_at, scopes, cidrs, sha256, sha512."
                ),
            ));
        } else if columns.contains(&h) {
            errors.push(RowError::new(
                header_line,
                "header",
                format!("The column \"{h}\" appears twice."),
            ));
        }
        columns.push(h);
    }
    if !columns.iter().any(|c| c == "name") {
        errors.push(RowError::new(
            header_line,
            "header",
            "The first line must name the columns, and one must be \"name\".",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = Vec::new();
    for (item, (line, fields)) in (1..).zip(records) {
        if fields.len() != columns.len() {
            errors.push(
                RowError::new(
                    line,
                    "file",
                    format!(
                        "This line has {} fields; the header has {}.",
                        fields.len(),
                        columns.len()
                    ),
                )
                .at(item),
            );
            continue;
        }
        let mut row = RawRow {
            line,
            item,
            ..RawRow::default()
        };
        for (column, value) in columns.iter().zip(fields) {
            match column.as_str() {
                "name" => row.name = value,
                "description" => row.description = value,
                "expires_at" => row.expires_at = value,
                "scopes" => row.scopes = split_list(&value),
                "cidrs" | "allowed_cidrs" => row.cidrs.extend(split_list(&value)),
                "sha256" if !value.trim().is_empty() => row.sha256 = Some(value),
                "sha512" if !value.trim().is_empty() => row.sha512 = Some(value),
                _ => {}
            }
        }
        rows.push(row);
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::imported::hex_digest;
    use time::macros::datetime;

    const NOW: PrimitiveDateTime = datetime!(2026-11-30 00:00);

    fn scopes() -> Vec<String> {
        vec!["keys:read".into(), "verify".into()]
    }

    #[test]
    fn a_bad_row_in_the_middle_is_reported_by_its_line_and_field() {
        let good = hex_digest(Algorithm::Sha256, "one");
        let text = format!(
            "name,scopes,sha256\nfirst,verify,{good}\nsecond,verify,nothex\nthird,bogus,{}\n",
            hex_digest(Algorithm::Sha256, "three")
        );
        let errors = check(read(&text).unwrap(), &scopes(), NOW).unwrap_err();
        assert_eq!(
            errors
                .iter()
                .map(|e| (e.line, e.field.as_str()))
                .collect::<Vec<_>>(),
            vec![(3, "sha256"), (4, "scopes")]
        );
    }

    #[test]
    fn json_rows_report_the_line_their_object_starts_on() {
        let text = format!(
            "[\n  {{\"name\": \"a\", \"sha512\": \"{}\"}},\n  {{\"name\": \"\",\n   \"sha256\": \"x\"}},\n  {{\"name\": \"c\", \"key\": 1}}\n]",
            hex_digest(Algorithm::Sha512, "a")
        );
        let rows = read(&text);
        let errors = match rows {
            Ok(rows) => check(rows, &scopes(), NOW).unwrap_err(),
            Err(e) => e,
        };
        assert!(
            errors.iter().any(|e| e.line == 5 && e.field == "key"),
            "{errors:?}"
        );
        let text = text.replace(", \"key\": 1", "");
        let errors = check(read(&text).unwrap(), &scopes(), NOW).unwrap_err();
        let at: Vec<_> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(at, vec![(3, "name"), (3, "sha256"), (5, "sha256")]);
    }

    #[test]
    fn names_and_digests_are_unique_within_the_file() {
        let d = hex_digest(Algorithm::Sha256, "same");
        let text = format!("name,sha256\nA,{d}\na,{d}\n");
        let errors = check(read(&text).unwrap(), &scopes(), NOW).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().all(|e| e.line == 3));
    }

    #[test]
    fn a_good_file_gives_settings_and_digests() {
        let text = format!(
            "name,description,expires_at,scopes,cidrs,sha512\nBilling,\"old, legacy\",2027-01-01T00:00,verify keys:read,\"10.0.0.0/8, 192.168.0.0/16\",{}\n",
            hex_digest(Algorithm::Sha512, "x")
        );
        let rows = check(read(&text).unwrap(), &scopes(), NOW).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.settings.name, "Billing");
        assert_eq!(r.settings.scopes, vec!["keys:read", "verify"]);
        assert_eq!(r.settings.cidrs.len(), 2);
        assert_eq!(r.digest.algorithm, Algorithm::Sha512);
    }

    #[test]
    fn unknown_columns_and_empty_files_are_refused() {
        assert!(read("name,password\nx,y\n").is_err());
        assert!(read("").is_err());
        assert!(read("[]").is_err());
        assert!(read("name\n").is_err());
    }
}
