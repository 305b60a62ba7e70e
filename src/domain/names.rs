//! Names people type: channel names and usernames, parsed once at the edge.

/// Characters that change how text around them is shown without being seen
/// themselves: bidirectional overrides and isolates (U+202E made `txt.exe` read as
/// `exe.txt`), zero-width characters and other Unicode format characters. A name
/// holding one could pass for another name.
pub fn is_hidden_formatting(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}')
}

/// The message for a name with control or hidden formatting characters, if any.
pub fn refuse_hidden(name: &str) -> Result<(), String> {
    if name.chars().any(char::is_control) {
        return Err("Control characters are not allowed.".into());
    }
    if name.chars().any(is_hidden_formatting) {
        return Err(
            "Invisible or text-direction characters (such as U+202E) are not allowed.".into(),
        );
    }
    Ok(())
}

/// A channel name: 1 to 100 characters after trimming, no control or hidden
/// formatting characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelName(String);

impl ChannelName {
    pub fn parse(input: &str) -> Result<Self, String> {
        let name = input.trim();
        if name.is_empty() {
            return Err("Enter a name.".into());
        }
        if name.chars().count() > 100 {
            return Err("Use at most 100 characters.".into());
        }
        refuse_hidden(name)?;
        Ok(ChannelName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A login name: 1 to 64 of `a-z 0-9 . _ -`, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, String> {
        let name = input.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err("Enter a username.".into());
        }
        if name.len() > 64 {
            return Err("Use at most 64 characters.".into());
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err("Use letters, digits, dots, dashes and underscores only.".into());
        }
        Ok(Username(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key limit typed into a form: a whole number from 1 to 1,000,000, or empty for
/// "use the deployment's default".
pub fn parse_key_limit(input: &str) -> Result<Option<i64>, String> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<i64>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(Some(n)),
        _ => Err("Enter a whole number from 1 to 1000000, or leave empty for the default.".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_trimmed_and_bounded() {
        assert_eq!(ChannelName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(ChannelName::parse("   ").is_err());
        assert!(ChannelName::parse(&"x".repeat(101)).is_err());
        assert!(ChannelName::parse(&"é".repeat(100)).is_ok());
        assert!(ChannelName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn usernames_are_lowercased_and_restricted() {
        assert_eq!(Username::parse("Alice").unwrap().as_str(), "alice");
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("<script>").is_err());
    }

    #[test]
    fn key_limits_are_positive_or_empty() {
        assert_eq!(parse_key_limit(""), Ok(None));
        assert_eq!(parse_key_limit(" 25 "), Ok(Some(25)));
        assert!(parse_key_limit("0").is_err());
        assert!(parse_key_limit("-3").is_err());
        assert!(parse_key_limit("ten").is_err());
    }
}
