//! Standard Webhooks 1.0 (standardwebhooks.com): the per-key signing secret and the
//! signature receivers check with the official libraries.
//!
//! - [`SigningSecret`] is `whsec_` + base64 of 32 bytes of OS randomness. Like a
//!   [`crate::domain::key::PlainKey`] it is radioactive: redacted `Debug`, no
//!   `Display`; the one way out is [`SigningSecret::reveal`], used by the one response
//!   that shows it.
//! - It must be usable for signing, so it cannot be hashed: [`Sealer`] encrypts it at
//!   rest with ChaCha20-Poly1305 (ring, already in the tree through rustls) under a key
//!   derived with blake3 from the server's secret (`LATCHKEY_POSTBACK_SECRET`, else
//!   `LATCHKEY_SESSION_SECRET`). A database dump alone does not let anyone sign events.
//! - [`signature_header`] is `v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`,
//!   one entry per secret that is still valid (two during a roll's overlap), separated
//!   by spaces.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::domain::secret::os_random;

pub const SECRET_PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;
const SEAL_CONTEXT: &str = "latchkey 2026-11 postback signing secrets at rest";
const SEAL_AAD: &[u8] = b"latchkey postback secret v1";
const SEALED_PREFIX: &str = "v1:";

/// A signing secret in memory: never printed, stored only sealed.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret([redacted])")
    }
}

impl SigningSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        os_random(&mut bytes);
        SigningSecret(bytes)
    }

    /// `whsec_...`: what a receiver configures. Only the reveal calls this.
    pub fn reveal(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(&self.0))
    }

    /// Parses `whsec_<base64>` (the prefix is optional, as in the official libraries).
    pub fn parse(text: &str) -> Option<Self> {
        let b64 = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        B64.decode(b64)
            .ok()
            .filter(|b| !b.is_empty())
            .map(SigningSecret)
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(msg_id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body.as_bytes());
        format!("v1,{}", B64.encode(ctx.sign().as_ref()))
    }
}

/// The `webhook-signature` value: one `v1,` entry per secret, space-separated.
pub fn signature_header(
    secrets: &[SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &str,
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Encrypts signing secrets for the database and decrypts them for the worker.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    pub fn from_server_secret(secret: &str) -> Self {
        Sealer {
            key: blake3::derive_key(SEAL_CONTEXT, secret.as_bytes()),
        }
    }

    fn cipher(&self) -> Option<LessSafeKey> {
        UnboundKey::new(&aead::CHACHA20_POLY1305, &self.key)
            .ok()
            .map(LessSafeKey::new)
    }

    /// `v1:<base64 nonce || ciphertext || tag>`; a fresh random nonce each time.
    pub fn seal(&self, secret: &SigningSecret) -> Option<String> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        os_random(&mut nonce);
        let mut data = secret.0.clone();
        self.cipher()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(SEAL_AAD),
                &mut data,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Some(format!("{SEALED_PREFIX}{}", B64.encode(out)))
    }

    /// The secret, or `None` when the row was sealed under another server secret or
    /// was tampered with.
    pub fn open(&self, sealed: &str) -> Option<SigningSecret> {
        let raw = B64.decode(sealed.strip_prefix(SEALED_PREFIX)?).ok()?;
        if raw.len() <= aead::NONCE_LEN {
            return None;
        }
        let (nonce, rest) = raw.split_at(aead::NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = rest.to_vec();
        let plain = self
            .cipher()?
            .open_in_place(nonce, Aad::from(SEAL_AAD), &mut data)
            .ok()?;
        Some(SigningSecret(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_test_vector_reproduces() {
        let secret = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            secret.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                r#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn generated_secrets_are_32_random_bytes_and_round_trip() {
        let s = SigningSecret::generate();
        let text = s.reveal();
        assert!(text.starts_with("whsec_"));
        assert_eq!(B64.decode(&text[6..]).unwrap().len(), 32);
        assert_eq!(SigningSecret::parse(&text).unwrap().0, s.0);
        assert_ne!(SigningSecret::generate().0, s.0);
        assert!(!format!("{s:?}").contains(&text[6..]));
    }

    #[test]
    fn the_official_crate_verifies_our_signatures() {
        let s = SigningSecret::generate();
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let header = signature_header(
            &[SigningSecret::generate(), s.clone()],
            "msg_1",
            ts,
            "{\"a\":1}",
        );
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("webhook-id", "msg_1".parse().unwrap());
        h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        h.insert("webhook-signature", header.parse().unwrap());
        let wh = standardwebhooks::Webhook::new(&s.reveal()).unwrap();
        assert!(wh.verify(b"{\"a\":1}", &h).is_ok());
        assert!(wh.verify(b"{\"a\":2}", &h).is_err());
    }

    #[test]
    fn sealed_secrets_open_only_under_the_same_server_secret() {
        let s = SigningSecret::generate();
        let a = Sealer::from_server_secret("server one");
        let sealed = a.seal(&s).unwrap();
        assert!(!sealed.contains(&s.reveal()[6..]));
        assert_ne!(a.seal(&s).unwrap(), sealed, "a fresh nonce each time");
        assert_eq!(a.open(&sealed).unwrap().0, s.0);
        assert!(
            Sealer::from_server_secret("server two")
                .open(&sealed)
                .is_none()
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(a.open(&tampered).is_none() || tampered == sealed);
        assert!(a.open("garbage").is_none());
    }
}
