//! Keys imported from another system. Latchkey never sees their plaintext: an import
//! carries the SHA-256 or SHA-512 digest of each existing key. The row's `key_hash` is
//! then derived from that digest ([`ImportDigest::key_hash`]), so that everything that
//! works by `key_hash` (the verification cache, invalidation across instances, the
//! filter by pasted key) works for imported keys unchanged; verification derives the
//! same hash from a presented plaintext ([`candidates`]).
//!
//! The derivation is domain-separated (`latchkey-import:<algorithm>:` before the raw
//! digest), so it can never equal the blake3 hash of a Latchkey key.

use ring::digest;

use crate::domain::key::KeyHash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    pub fn parse(s: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    fn ring(self) -> &'static digest::Algorithm {
        match self {
            Algorithm::Sha256 => &digest::SHA256,
            Algorithm::Sha512 => &digest::SHA512,
        }
    }
}

/// The digest of an existing key's plaintext, as an import carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportDigest {
    pub algorithm: Algorithm,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for ImportDigest {
    // A digest of a live credential is not a secret, but it is not shown either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImportDigest({}, [redacted])", self.algorithm.as_str())
    }
}

impl ImportDigest {
    /// A hex digest of the right length (upper or lower case, surrounding spaces
    /// ignored).
    pub fn parse_hex(algorithm: Algorithm, hex: &str) -> Result<ImportDigest, String> {
        let hex = hex.trim();
        let want = algorithm.digest_len() * 2;
        if hex.len() != want {
            return Err(format!(
                "A {} digest is {want} hexadecimal characters; this one has {}.",
                algorithm.as_str(),
                hex.chars().count()
            ));
        }
        let mut bytes = Vec::with_capacity(algorithm.digest_len());
        for pair in hex.as_bytes().chunks(2) {
            let hi = hex_value(pair[0]);
            let lo = hex_value(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => bytes.push(h << 4 | l),
                _ => return Err("Use only the characters 0-9 and a-f.".into()),
            }
        }
        Ok(ImportDigest { algorithm, bytes })
    }

    /// The digest of a presented plaintext.
    pub fn of_plaintext(algorithm: Algorithm, plaintext: &str) -> ImportDigest {
        ImportDigest {
            algorithm,
            bytes: digest::digest(algorithm.ring(), plaintext.as_bytes())
                .as_ref()
                .to_vec(),
        }
    }

    /// What is stored as the key's `key_hash`, and what the cache is keyed by.
    pub fn key_hash(&self) -> KeyHash {
        let mut h = blake3::Hasher::new();
        h.update(b"latchkey-import:");
        h.update(self.algorithm.as_str().as_bytes());
        h.update(b":");
        h.update(&self.bytes);
        KeyHash::of(*h.finalize().as_bytes())
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The stored hashes a presented plaintext would have if it had been imported, one per
/// algorithm (SHA-256 first).
pub fn candidates(plaintext: &str) -> [KeyHash; 2] {
    Algorithm::ALL.map(|a| ImportDigest::of_plaintext(a, plaintext).key_hash())
}

/// Lower-case hex of `bytes` (tests and documentation examples).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 / SHA-512 of a plaintext, as another system would have stored it.
pub fn hex_digest(algorithm: Algorithm, plaintext: &str) -> String {
    to_hex(digest::digest(algorithm.ring(), plaintext.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presented_plaintext_finds_the_hash_its_imported_digest_was_stored_under() {
        let plain = "sk_live_legacy_0123456789";
        for a in Algorithm::ALL {
            let imported = ImportDigest::parse_hex(a, &hex_digest(a, plain)).unwrap();
            assert!(candidates(plain).contains(&imported.key_hash()));
            let upper = ImportDigest::parse_hex(a, &hex_digest(a, plain).to_uppercase()).unwrap();
            assert_eq!(upper.key_hash(), imported.key_hash());
        }
        let [a, b] = candidates(plain);
        assert_ne!(a, b, "the two algorithms never share a stored hash");
    }

    #[test]
    fn digests_of_the_wrong_length_or_alphabet_are_refused() {
        assert!(ImportDigest::parse_hex(Algorithm::Sha256, "abc").is_err());
        assert!(ImportDigest::parse_hex(Algorithm::Sha256, &"g".repeat(64)).is_err());
        assert!(ImportDigest::parse_hex(Algorithm::Sha512, &"a".repeat(64)).is_err());
        assert!(ImportDigest::parse_hex(Algorithm::Sha256, &"é".repeat(32)).is_err());
        assert!(ImportDigest::parse_hex(Algorithm::Sha512, &"0".repeat(128)).is_ok());
    }

    #[test]
    fn an_imported_key_is_shown_by_its_key_id_alone() {
        // Latchkey never saw its prefix or last characters.
        assert_eq!(
            crate::domain::key::obfuscate("", "3fQ9aZx1Lm0P", ""),
            "3fQ9aZx1Lm0P"
        );
    }

    #[test]
    fn an_imported_hash_never_equals_a_latchkey_hash_of_the_same_text() {
        let (key, _) = crate::domain::key::PlainKey::generate("lk");
        assert!(!candidates(key.reveal()).contains(&key.hash()));
    }
}
