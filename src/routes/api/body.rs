//! Reading the limit fields of key bodies (`rate_limits`, `credits`, `refill`,
//! `metadata`) into the text a form would carry.

use serde::Deserialize;

/// A field that is present (even as `null`) is `Some`, so `null` can clear it.
pub fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// JSON values as the text a form would carry; anything of the wrong shape becomes
/// text the parser refuses with the field's message.
pub fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) if s.trim().is_empty() => "\"\"".into(),
        other => other.to_string(),
    }
}

pub fn limits_text_of(v: &serde_json::Value) -> String {
    let Some(items) = v.as_array() else {
        return if v.is_null() {
            String::new()
        } else {
            "?".into()
        };
    };
    items
        .iter()
        .map(|i| match (i.get("limit"), i.get("per")) {
            (Some(l), Some(serde_json::Value::String(p)))
                if i.as_object().is_some_and(|o| o.len() == 2) =>
            {
                format!("{}/{}", text_of(l), p)
            }
            _ => "?".into(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
