//! Names people type: channel names and usernames, parsed once at the edge.

/// A channel name: 1 to 100 characters after trimming, no control characters.
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
        if name.chars().any(char::is_control) {
            return Err("Control characters are not allowed.".into());
        }
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
