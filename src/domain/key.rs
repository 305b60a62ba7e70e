//! The API key itself. Key material is radioactive:
//! - [`PlainKey`] holds the full key; its `Debug` is redacted and it has no `Display`,
//!   so it cannot be logged or formatted by accident. The one way out is
//!   [`PlainKey::reveal`], called by the reveal modal and the create API response.
//! - Only [`KeyHash`] (blake3) is stored.
//!
//! Format: exactly 64 base62 characters `<prefix>_<key id>_<secret><checksum>`:
//! prefix 2–8 lowercase letters, key id 12 characters, checksum the last 6 characters
//! (CRC32 of everything before them, in base62), the secret fills the rest: 36 to 42
//! characters, 214 to 250 bits of OS randomness.

use std::fmt;

use crate::domain::secret::{BASE62, random_base62};

pub const KEY_LEN: usize = 64;
pub const KEY_ID_LEN: usize = 12;
pub const CHECKSUM_LEN: usize = 6;

/// A full key in memory. Never printed, never stored.
pub struct PlainKey(String);

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainKey([redacted])")
    }
}

/// What is stored: the blake3 hash (hex) of the full key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(pub String);

impl KeyHash {
    pub fn of(digest: [u8; 32]) -> Self {
        KeyHash(blake3::Hash::from(digest).to_hex().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digest behind a stored hex hash; `None` for a malformed row.
    pub fn digest(&self) -> Option<[u8; 32]> {
        blake3::Hash::from_hex(&self.0).ok().map(|h| *h.as_bytes())
    }
}

/// The public parts of a key, kept beside the hash for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParts {
    pub prefix: String,
    pub key_id: String,
    pub last_four: String,
}

pub fn obfuscate(prefix: &str, key_id: &str, last_four: &str) -> String {
    if prefix.is_empty() {
        // An imported key: Latchkey never saw any of its characters; its key id is
        // Latchkey's own.
        return key_id.to_owned();
    }
    format!("{prefix}_{key_id}…{last_four}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormatError {
    Length,
    Structure,
    Prefix,
    Charset,
    Checksum,
}

impl PlainKey {
    /// A new key from the OS random source.
    pub fn generate(prefix: &str) -> (PlainKey, KeyParts) {
        let key_id = random_base62(KEY_ID_LEN);
        let secret_len = KEY_LEN - prefix.len() - 1 - KEY_ID_LEN - 1 - CHECKSUM_LEN;
        let secret = random_base62(secret_len);
        let body = format!("{prefix}_{key_id}_{secret}");
        let mut full = body.clone();
        full.extend(checksum(body.as_bytes()).map(char::from));
        let parts = KeyParts {
            prefix: prefix.to_owned(),
            key_id,
            last_four: full[KEY_LEN - 4..].to_owned(),
        };
        (PlainKey(full), parts)
    }

    /// Checks the shape and the checksum without any database lookup. Accepts any
    /// 2–8 letter prefix so keys survive a change of the configured prefix.
    pub fn parse(input: &str) -> Result<(PlainKey, KeyParts), KeyFormatError> {
        let (prefix, key_id) = check_format(input)?;
        let parts = KeyParts {
            prefix: prefix.to_owned(),
            key_id: key_id.to_owned(),
            last_four: input[KEY_LEN - 4..].to_owned(),
        };
        Ok((PlainKey(input.to_owned()), parts))
    }

    /// The hot path's [`PlainKey::parse`]: the same checks, then only the digest the
    /// verification cache is keyed by — no copy of the key, no allocation.
    pub fn digest_of(input: &str) -> Result<[u8; 32], KeyFormatError> {
        check_format(input)?;
        Ok(*blake3::hash(input.as_bytes()).as_bytes())
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash::of(self.digest())
    }

    /// The raw blake3 digest: what the in-memory verification cache is keyed by.
    pub fn digest(&self) -> [u8; 32] {
        *blake3::hash(self.0.as_bytes()).as_bytes()
    }

    /// The one door out: used only where the key is shown once (reveal modal, create
    /// API response).
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

/// The format checks of a presented key; its prefix and key id when it passes.
///
/// Every verification checks two keys (the caller's and the presented one), so the
/// usual shape is checked in one pass without early exits, which the compiler turns
/// into vector code: ~2.6 k instructions a verification went to the two checks before
/// (callgrind). Anything off that shape goes to [`format_error`] for the precise error.
fn check_format(input: &str) -> Result<(&str, &str), KeyFormatError> {
    let bytes = input.as_bytes();
    if bytes.len() != KEY_LEN {
        return Err(KeyFormatError::Length);
    }
    // The prefix ends at the first `_`, within its 2..=8 letters.
    let Some(p) = bytes[..9].iter().position(|b| *b == b'_') else {
        return Err(format_error(input));
    };
    let id_end = p + 1 + KEY_ID_LEN;
    let shaped = p >= 2
        && all_lowercase(&bytes[..p])
        && bytes[id_end] == b'_'
        && all_base62(&bytes[p + 1..id_end])
        && all_base62(&bytes[id_end + 1..]);
    if !shaped {
        return Err(format_error(input));
    }
    let (body, sum) = bytes.split_at(KEY_LEN - CHECKSUM_LEN);
    if checksum(body) != sum {
        return Err(KeyFormatError::Checksum);
    }
    // All ASCII (checked above), so these are char boundaries.
    Ok((&input[..p], &input[p + 1..id_end]))
}

/// Letters and digits, checked without an early exit (vectorised).
fn all_base62(s: &[u8]) -> bool {
    s.iter().fold(true, |ok, &b| {
        let letter = (b | 0x20).wrapping_sub(b'a') < 26;
        let digit = b.wrapping_sub(b'0') < 10;
        ok & (letter | digit)
    })
}

fn all_lowercase(s: &[u8]) -> bool {
    s.iter()
        .fold(true, |ok, &b| ok & (b.wrapping_sub(b'a') < 26))
}

/// Why `input` (of the right length) is not shaped like a key: the checks in the
/// order the errors are documented, for input [`check_format`]'s fast pass refused.
fn format_error(input: &str) -> KeyFormatError {
    if !input.is_ascii() {
        return KeyFormatError::Charset;
    }
    let mut pieces = input.splitn(3, '_');
    let (Some(prefix), Some(key_id), Some(rest)) = (pieces.next(), pieces.next(), pieces.next())
    else {
        return KeyFormatError::Structure;
    };
    if !(2..=8).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_lowercase()) {
        return KeyFormatError::Prefix;
    }
    if key_id.len() != KEY_ID_LEN || rest.len() <= CHECKSUM_LEN {
        return KeyFormatError::Structure;
    }
    let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !(base62(key_id) && base62(rest)) {
        return KeyFormatError::Charset;
    }
    // Shaped after all: only the checksum can be wrong.
    KeyFormatError::Checksum
}

/// Is `s` shaped like a key id (12 base62 characters)?
pub fn looks_like_key_id(s: &str) -> bool {
    s.len() == KEY_ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// CRC32 of `body` as 6 base62 characters (62^6 > 2^32, so every value fits).
fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(body) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_format() {
        for prefix in ["lk", "abcdefgh", "acme"] {
            let (key, parts) = PlainKey::generate(prefix);
            let s = key.reveal();
            assert_eq!(s.len(), KEY_LEN);
            assert!(s.starts_with(&format!("{prefix}_{}_", parts.key_id)));
            assert_eq!(parts.key_id.len(), KEY_ID_LEN);
            assert!(s.ends_with(&parts.last_four));
            let secret_len = KEY_LEN - prefix.len() - 2 - KEY_ID_LEN - CHECKSUM_LEN;
            // log2(62) * characters >= 200 bits for every allowed prefix.
            assert!(
                secret_len as f64 * 62f64.log2() >= 200.0,
                "{prefix}: {secret_len}"
            );
            let (parsed, pparts) = PlainKey::parse(s).expect("a generated key parses");
            assert_eq!(pparts, parts);
            assert_eq!(parsed.hash(), key.hash());
        }
    }

    #[test]
    fn keys_are_unique() {
        let a = PlainKey::generate("lk").0;
        let b = PlainKey::generate("lk").0;
        assert_ne!(a.reveal(), b.reveal());
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let (key, _) = PlainKey::generate("lk");
        let s = key.reveal().as_bytes().to_vec();
        let alphabet: Vec<u8> = BASE62.iter().copied().chain([b'_', b'-', b' ']).collect();
        for i in 0..s.len() {
            for &c in &alphabet {
                if c == s[i] {
                    continue;
                }
                let mut t = s.clone();
                t[i] = c;
                let t = String::from_utf8(t).unwrap();
                assert!(
                    PlainKey::parse(&t).is_err(),
                    "change at {i} to {} accepted",
                    c as char
                );
            }
        }
    }

    #[test]
    fn hostile_strings_are_rejected_without_panicking() {
        let (key, _) = PlainKey::generate("lk");
        let good = key.reveal().to_owned();
        let cases = [
            String::new(),
            "lk_".into(),
            "x".repeat(64),
            "_".repeat(64),
            format!("{}é", &good[..62]),
            "é".repeat(32),
            good[..63].to_owned(),
            format!("{good}a"),
            good.replacen("lk", "LK", 1),
            good.replacen('_', "-", 1),
            format!("lk__{}", &good[4..]),
            "\0".repeat(64),
            format!("{}\n", &good[..63]),
            "lk_AAAAAAAAAAAA_".to_owned() + &"A".repeat(48),
        ];
        for c in cases {
            assert!(PlainKey::parse(&c).is_err(), "accepted {c:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let (key, _) = PlainKey::generate("lk");
        let printed = format!("{key:?}");
        assert!(!printed.contains(key.reveal()));
        assert!(!printed.contains(&key.reveal()[3..15]));
    }

    #[test]
    fn obfuscation_shows_prefix_id_and_last_four() {
        let parts = KeyParts {
            prefix: "lk".into(),
            key_id: "3fQ9aZx1Lm0P".into(),
            last_four: "wXyz".into(),
        };
        assert_eq!(
            obfuscate(&parts.prefix, &parts.key_id, &parts.last_four),
            "lk_3fQ9aZx1Lm0P…wXyz"
        );
    }

    #[test]
    fn the_checksum_is_six_base62_characters() {
        assert_eq!(checksum(b"").len(), 6);
        assert_eq!(checksum(b"lk_abc").len(), 6);
        assert_ne!(checksum(b"a"), checksum(b"b"));
    }

    /// The checks as they were written before the one-pass version: the reference
    /// the fast pass must agree with on every input.
    fn reference(input: &str) -> Result<(&str, &str), KeyFormatError> {
        if input.len() != KEY_LEN {
            return Err(KeyFormatError::Length);
        }
        if !input.is_ascii() {
            return Err(KeyFormatError::Charset);
        }
        let mut pieces = input.splitn(3, '_');
        let (Some(prefix), Some(key_id), Some(rest)) =
            (pieces.next(), pieces.next(), pieces.next())
        else {
            return Err(KeyFormatError::Structure);
        };
        if !(2..=8).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(KeyFormatError::Prefix);
        }
        if key_id.len() != KEY_ID_LEN || rest.len() <= CHECKSUM_LEN {
            return Err(KeyFormatError::Structure);
        }
        let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !(base62(key_id) && base62(rest)) {
            return Err(KeyFormatError::Charset);
        }
        let (body, sum) = input.split_at(KEY_LEN - CHECKSUM_LEN);
        if checksum(body.as_bytes()) != sum.as_bytes() {
            return Err(KeyFormatError::Checksum);
        }
        Ok((prefix, key_id))
    }

    /// A 58-character body with its checksum.
    fn summed(body: &str) -> String {
        let sum: String = checksum(body.as_bytes()).map(char::from).iter().collect();
        format!("{body}{sum}")
    }

    #[test]
    fn each_flaw_gets_its_error_even_with_a_right_checksum() {
        let rest = "a".repeat(KEY_LEN - CHECKSUM_LEN);
        let cases = [
            ("lk_AAAAAAAAAAAA_", Ok(())),
            ("l_AAAAAAAAAAAA_", Err(KeyFormatError::Prefix)),
            ("_AAAAAAAAAAAA_", Err(KeyFormatError::Prefix)),
            ("abcdefghi_AAAAAAAAAAAA_", Err(KeyFormatError::Prefix)),
            ("Lk_AAAAAAAAAAAA_", Err(KeyFormatError::Prefix)),
            ("lk_AAAAAAAAAAA_", Err(KeyFormatError::Structure)),
            ("lk_AAAAAAAAAAAAA_", Err(KeyFormatError::Structure)),
            ("lk_AAAAAA-AAAAA_", Err(KeyFormatError::Charset)),
            ("lk_AAAAAAAAAAAA_a_", Err(KeyFormatError::Charset)),
            ("lkAAAAAAAAAAAAAA", Err(KeyFormatError::Structure)),
        ];
        for (start, want) in cases {
            let body = format!("{start}{rest}");
            let key = summed(&body[..KEY_LEN - CHECKSUM_LEN]);
            assert_eq!(check_format(&key).map(|_| ()), want, "{key}");
            assert_eq!(check_format(&key), reference(&key), "{key}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// Real keys with up to three characters replaced (by letters, digits, `_`,
        /// punctuation or a two-byte character), and keys cut or grown.
        #[test]
        fn the_one_pass_check_agrees_with_the_reference(
            prefix in "[a-z]{2,8}",
            edits in proptest::collection::vec((0usize..64, "[a-zA-Z0-9_\\-!~ ]|é"), 0..4),
            grow in proptest::option::of("[a-z_]{0,3}"),
        ) {
            let (key, _) = PlainKey::generate(&prefix);
            let mut s = key.reveal().to_owned();
            for (pos, with) in edits {
                let pos = pos.min(s.len() - 1);
                if s.is_char_boundary(pos) && s.is_char_boundary(pos + 1) {
                    s.replace_range(pos..pos + 1, &with);
                }
            }
            if let Some(g) = grow {
                let mut cut = s.len().saturating_sub(g.len());
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                s.push_str(&g);
            }
            proptest::prop_assert_eq!(check_format(&s), reference(&s), "{}", s);
        }

        /// Near-keys: prefixes and key ids of wrong lengths or letters, with a correct
        /// checksum or not, so each check is what stands between them and `Ok`.
        #[test]
        fn near_keys_get_the_reference_answer(
            prefix in "[a-zA-Z0-9]{0,10}",
            key_id in "[a-zA-Z0-9_]{10,14}",
            rest in "[a-zA-Z0-9_]{58}",
            summed in proptest::bool::ANY,
        ) {
            let body: String = format!("{prefix}_{key_id}_{rest}")
                .chars()
                .take(KEY_LEN - CHECKSUM_LEN)
                .collect();
            let sum: String = if summed {
                checksum(body.as_bytes()).map(char::from).iter().collect()
            } else {
                "AAAAAA".into()
            };
            let s = format!("{body}{sum}");
            proptest::prop_assert_eq!(check_format(&s), reference(&s), "{}", s);
        }

        /// Texts of key length over the characters keys are made of, `_` anywhere.
        #[test]
        fn random_texts_get_the_reference_answer(
            head in "[a-z_A]{1,10}",
            tail in "[a-zA-Z0-9_]{64}",
        ) {
            let s: String = format!("{head}{tail}").chars().take(KEY_LEN).collect();
            proptest::prop_assert_eq!(check_format(&s), reference(&s));
        }
    }
}
