//! The JSON form of an import file: an array of objects, each remembered with the line
//! its element starts on, so errors name the line a person sees in their editor.

use serde_json::Value;

use super::row::{RawRow, RowError, split_list};

/// Where each element of a top-level JSON array starts, as line numbers.
fn element_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut depth) = (1, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    let mut expecting = false;
    for c in text.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                '\n' => line += 1,
                _ => {}
            }
            continue;
        }
        if c == '\n' {
            line += 1;
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if depth == 1 && expecting && c != ']' {
            lines.push(line);
            expecting = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    lines
}

pub(super) fn read_json(text: &str) -> Result<Vec<RawRow>, Vec<RowError>> {
    let items: Vec<Value> = serde_json::from_str(text).map_err(|e| {
        vec![RowError::new(
            e.line().max(1),
            "file",
            format!(
                "This is not a JSON array of objects ({}, column {}).",
                match e.classify() {
                    serde_json::error::Category::Data => "an element is not an object",
                    serde_json::error::Category::Eof => "the text ends too early",
                    _ => "invalid JSON",
                },
                e.column()
            ),
        )]
    })?;
    let lines = element_lines(text);
    let mut rows = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, value) in items.into_iter().enumerate() {
        let (line, item) = (lines.get(i).copied().unwrap_or(1), i + 1);
        let Value::Object(fields) = value else {
            errors.push(RowError::new(line, "file", "Each key must be a JSON object.").at(item));
            continue;
        };
        let mut row = RawRow {
            line,
            item,
            ..RawRow::default()
        };
        for (field, value) in fields {
            let text = |v: &Value| -> Result<String, String> {
                match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Null => Ok(String::new()),
                    _ => Err("Give a string.".into()),
                }
            };
            let list = |v: &Value| -> Result<Vec<String>, String> {
                match v {
                    Value::Array(items) => items
                        .iter()
                        .map(|i| match i {
                            Value::String(s) => Ok(s.clone()),
                            _ => Err("Give an array of strings.".to_owned()),
                        })
                        .collect(),
                    Value::String(s) => Ok(split_list(s)),
                    Value::Null => Ok(Vec::new()),
                    _ => Err("Give an array of strings.".into()),
                }
            };
            let result = match field.as_str() {
                "name" => text(&value).map(|v| row.name = v),
                "description" => text(&value).map(|v| row.description = v),
                "expires_at" => text(&value).map(|v| row.expires_at = v),
                "scopes" => list(&value).map(|v| row.scopes = v),
                "cidrs" | "allowed_cidrs" => list(&value).map(|v| row.cidrs.extend(v)),
                "sha256" => text(&value).map(|v| row.sha256 = Some(v).filter(|s| !s.is_empty())),
                "sha512" => text(&value).map(|v| row.sha512 = Some(v).filter(|s| !s.is_empty())),
                other => Err(format!(
                    "Unknown field \"{}\".",
                    other.chars().take(40).collect::<String>()
                )),
            };
            if let Err(m) = result {
                let shown: String = field.chars().take(40).collect();
                errors.push(RowError::new(line, &shown, m).at(item));
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
