//! Leak reports in the format of GitHub's secret-scanning partner program.
//!
//! A report is a POST whose body is a JSON array of `{"token", "type", "url",
//! "source"}`, signed by the scanner: `Github-Public-Key-Identifier` names one of its
//! public keys and `Github-Public-Key-Signature` is the base64 of an ECDSA P-256
//! SHA-256 signature (ASN.1 DER) over the raw body bytes. The answer is a JSON array of
//! `{"token_raw", "token_type", "label"}` with `label` `true_positive` or
//! `false_positive`.
//!
//! The trusted public keys come from `LATCHKEY_LEAK_REPORT_KEYS`: the path of a JSON
//! file, or the JSON itself, in the shape GitHub publishes them
//! (`{"public_keys": [{"key_identifier": "...", "key": "-----BEGIN PUBLIC KEY-----..."}]}`),
//! so the document GitHub serves can be saved as is. It is read for every report, so
//! rotated keys are picked up without a restart.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// At most this many tokens per report (GitHub batches; a report is small).
pub const MAX_TOKENS: usize = 1_000;
/// A report's body is read up to this size.
pub const BODY_LIMIT: usize = 256 * 1024;

/// The DER header of a SubjectPublicKeyInfo holding an uncompressed P-256 point
/// (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes); the point follows it.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// One trusted public key of a scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub identifier: String,
    /// The uncompressed point (65 bytes, `04 || x || y`).
    pub point: Vec<u8>,
}

#[derive(Deserialize)]
struct KeysDocument {
    public_keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
}

/// Every key a setting names. `setting` is JSON (starts with `{`) or a file path.
pub fn load_keys(setting: &str) -> Result<Vec<TrustedKey>, String> {
    let setting = setting.trim();
    let text = if setting.starts_with('{') {
        setting.to_owned()
    } else {
        std::fs::read_to_string(setting)
            .map_err(|e| format!("cannot read the leak report keys file {setting}: {e}"))?
    };
    parse_keys(&text)
}

/// The keys of a `{"public_keys": [...]}` document.
pub fn parse_keys(text: &str) -> Result<Vec<TrustedKey>, String> {
    let doc: KeysDocument = serde_json::from_str(text).map_err(|e| {
        format!("leak report keys: expected {{\"public_keys\": [{{\"key_identifier\", \"key\"}}]}} ({e})")
    })?;
    if doc.public_keys.is_empty() {
        return Err("leak report keys: the document lists no key".into());
    }
    doc.public_keys
        .into_iter()
        .map(|k| {
            let point = p256_point_of_pem(&k.key)
                .map_err(|e| format!("leak report key {}: {e}", k.key_identifier))?;
            Ok(TrustedKey {
                identifier: k.key_identifier,
                point,
            })
        })
        .collect()
}

/// The uncompressed point of a P-256 public key in PEM (SubjectPublicKeyInfo).
pub fn p256_point_of_pem(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| "the PEM is not valid base64".to_owned())?;
    match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        Some(point) if point.len() == 65 && point[0] == 0x04 => Ok(point.to_vec()),
        _ => Err("not an ECDSA P-256 public key".into()),
    }
}

/// The PEM of a P-256 point (tests and documentation make keys with it).
pub fn pem_of_p256_point(point: &[u8]) -> String {
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(point);
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

/// Why a report is refused before anything is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// No identifier or no signature header.
    Unsigned,
    /// The identifier names no trusted key.
    UnknownKey,
    /// The signature is not base64, or does not verify over the body.
    BadSignature,
}

impl SignatureError {
    pub fn message(&self) -> &'static str {
        match self {
            SignatureError::Unsigned => {
                "Send Github-Public-Key-Identifier and Github-Public-Key-Signature."
            }
            SignatureError::UnknownKey => "The public key identifier is not trusted here.",
            SignatureError::BadSignature => "The signature does not match the body.",
        }
    }
}

/// Checks the signature over the raw body with the key the identifier names.
pub fn verify(
    keys: &[TrustedKey],
    identifier: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let (Some(identifier), Some(signature)) = (
        identifier.map(str::trim).filter(|s| !s.is_empty()),
        signature.map(str::trim).filter(|s| !s.is_empty()),
    ) else {
        return Err(SignatureError::Unsigned);
    };
    let key = keys
        .iter()
        .find(|k| k.identifier == identifier)
        .ok_or(SignatureError::UnknownKey)?;
    let signature = STANDARD
        .decode(signature.as_bytes())
        .map_err(|_| SignatureError::BadSignature)?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &key.point)
        .verify(body, &signature)
        .map_err(|_| SignatureError::BadSignature)
}

/// One reported match.
#[derive(Debug, Clone, Deserialize)]
pub struct ReportedToken {
    pub token: String,
    #[serde(rename = "type", default)]
    pub token_type: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub source: String,
}

/// Our answer about one token.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verdict {
    pub token_raw: String,
    pub token_type: String,
    pub label: &'static str,
}

pub const TRUE_POSITIVE: &str = "true_positive";
pub const FALSE_POSITIVE: &str = "false_positive";

/// The tokens of a (verified) body.
pub fn parse_report(body: &[u8]) -> Result<Vec<ReportedToken>, String> {
    let tokens: Vec<ReportedToken> = serde_json::from_slice(body).map_err(|_| {
        "The body must be a JSON array of {\"token\", \"type\", \"url\", \"source\"}.".to_owned()
    })?;
    if tokens.len() > MAX_TOKENS {
        return Err(format!("At most {MAX_TOKENS} tokens per report."));
    }
    Ok(tokens)
}

/// The SHA-256 (hex) of a report's body: what a replay is recognised by.
pub fn body_hash(body: &[u8]) -> String {
    crate::domain::imported::to_hex(ring::digest::digest(&ring::digest::SHA256, body).as_ref())
}

/// Where a reported URL is written (audit line, event): at most 500 characters, no
/// control characters.
pub fn clean_url(url: &str) -> String {
    url.chars().filter(|c| !c.is_control()).take(500).collect()
}

/// The regular expression that matches Latchkey keys with `prefix` (for registering
/// with scanners): prefix, key id, and a secret with checksum filling 64 characters.
pub fn key_pattern(prefix: &str) -> String {
    let rest = crate::domain::key::KEY_LEN - prefix.len() - 2 - crate::domain::key::KEY_ID_LEN;
    format!(
        r"\b{prefix}_[A-Za-z0-9]{{{}}}_[A-Za-z0-9]{{{rest}}}\b",
        crate::domain::key::KEY_ID_LEN
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    fn pair() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
    }

    fn sign(k: &EcdsaKeyPair, body: &[u8]) -> String {
        STANDARD.encode(k.sign(&SystemRandom::new(), body).unwrap().as_ref())
    }

    #[test]
    fn a_signature_verifies_with_the_key_from_its_pem_and_nothing_else() {
        let k = pair();
        let pem = pem_of_p256_point(k.public_key().as_ref());
        let doc = serde_json::json!({ "public_keys": [{ "key_identifier": "k1", "key": pem, "is_current": true }] });
        let keys = parse_keys(&doc.to_string()).unwrap();
        let body = br#"[{"token":"x","type":"latchkey","url":"https://example.com/a"}]"#;
        let sig = sign(&k, body);
        assert_eq!(verify(&keys, Some("k1"), Some(&sig), body), Ok(()));
        assert_eq!(
            verify(&keys, Some("k1"), Some(&sig), b"[]"),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(&keys, Some("k2"), Some(&sig), body),
            Err(SignatureError::UnknownKey)
        );
        assert_eq!(
            verify(&keys, Some("k1"), Some(&sign(&pair(), body)), body),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(&keys, None, Some(&sig), body),
            Err(SignatureError::Unsigned)
        );
        assert_eq!(
            verify(&keys, Some("k1"), Some("%%%"), body),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn documents_without_p256_keys_are_refused() {
        assert!(parse_keys("{}").is_err());
        assert!(parse_keys(r#"{"public_keys": []}"#).is_err());
        assert!(
            parse_keys(r#"{"public_keys": [{"key_identifier": "a", "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}]}"#)
                .is_err()
        );
    }

    #[test]
    fn the_pattern_matches_generated_keys_only() {
        for prefix in ["lk", "acme", "abcdefgh"] {
            let pattern = key_pattern(prefix);
            let (key, _) = crate::domain::key::PlainKey::generate(prefix);
            let k = key.reveal();
            // Checked by hand: no regex crate in the tree.
            let (p, rest) = k.split_once('_').unwrap();
            let (id, secret) = rest.split_once('_').unwrap();
            assert_eq!(p, prefix);
            assert!(pattern.contains(&format!("_[A-Za-z0-9]{{{}}}_", id.len())));
            assert!(pattern.ends_with(&format!("[A-Za-z0-9]{{{}}}\\b", secret.len())));
        }
    }
}
