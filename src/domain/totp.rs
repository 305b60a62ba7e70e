//! Two-factor authentication: TOTP (RFC 6238: HMAC-SHA1, six digits, 30-second steps,
//! one step of clock skew either way) through `totp-rs`, one-time recovery codes, and
//! the sealing of TOTP secrets at rest.
//!
//! Secrets are sealed with AES-256-GCM (already in the tree through the session
//! cookies) under a key derived from `LATCHKEY_SESSION_SECRET` with blake3's
//! `derive_key` and a context string of its own, so the key survives restarts, differs
//! from the cookie key, and a copy of the database alone does not reveal any secret.
//! The user's id is the associated data: a sealed secret moved to another row fails.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use totp_rs::{Algorithm, TOTP};

use super::secret::os_random;

pub const STEP_SECONDS: u64 = 30;
pub const RECOVERY_CODES: usize = 10;
const SEAL_CONTEXT: &str = "latchkey 2026-11-29 TOTP secret sealing";
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A TOTP secret's raw bytes (160 bits, as RFC 4226 recommends).
#[derive(Clone)]
pub struct TotpSecret([u8; 20]);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 20];
        os_random(&mut bytes);
        TotpSecret(bytes)
    }

    /// The secret as an authenticator app takes it by hand: base32, in groups of four.
    pub fn base32(&self) -> String {
        base32(&self.0)
    }

    /// The `otpauth://` URI a QR code carries (Key URI Format).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={STEP_SECONDS}",
            enc(issuer),
            enc(account),
            self.base32(),
            enc(issuer)
        )
    }

    fn totp(&self) -> Option<TOTP> {
        TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECONDS, self.0.to_vec()).ok()
    }

    /// The time step of `code` at `unix_time` (this step or one either side), if the
    /// code is right and that step is later than `last_step` (a code is used once).
    pub fn check(&self, code: &str, unix_time: u64, last_step: Option<i64>) -> Option<i64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp()?;
        let origin = unix_time / STEP_SECONDS;
        (origin.saturating_sub(1)..=origin + 1)
            .filter(|step| last_step.is_none_or(|last| (*step as i64) > last))
            .find(|step| totp.generate(step * STEP_SECONDS) == code)
            .map(|step| step as i64)
    }

    /// Seals the secret for storage (`v1.` + hex of nonce and ciphertext).
    pub fn seal(&self, session_secret: &str, user_id: i64) -> Option<String> {
        let mut nonce = [0u8; 12];
        os_random(&mut nonce);
        let sealed = cipher(session_secret)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &self.0,
                    aad: &user_id.to_be_bytes(),
                },
            )
            .ok()?;
        let mut out = String::from("v1.");
        for b in nonce.iter().chain(sealed.iter()) {
            out.push_str(&format!("{b:02x}"));
        }
        Some(out)
    }

    /// Opens a sealed secret; `None` if it was sealed under another key or row.
    pub fn open(sealed: &str, session_secret: &str, user_id: i64) -> Option<Self> {
        let hex = sealed.strip_prefix("v1.")?;
        if hex.len() % 2 != 0 || hex.len() < 24 {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let (nonce, body) = bytes.split_at(12);
        cipher(session_secret)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &user_id.to_be_bytes(),
                },
            )
            .ok()
            .and_then(|bytes| <[u8; 20]>::try_from(bytes).ok())
            .map(TotpSecret)
    }
}

fn cipher(session_secret: &str) -> Aes256Gcm {
    let key = blake3::derive_key(SEAL_CONTEXT, session_secret.as_bytes());
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key))
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Ten new recovery codes, each 16 base32 characters (80 bits) shown as
/// `ABCD-EFGH-IJKL-MNOP`.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            os_random(&mut bytes);
            let plain = base32(&bytes);
            plain
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// What is stored of a recovery code: the blake3 hash of its normalised form (80
/// random bits need no slow hash). Case, spaces and dashes do not matter.
pub fn recovery_code_hash(code: &str) -> Option<String> {
    let norm: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (norm.len() == 16 && norm.bytes().all(|b| ALPHABET.contains(&b)))
        .then(|| blake3::hash(norm.as_bytes()).to_hex().to_string())
}

/// Who must use two-factor authentication, an admin's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Optional,
    Admins,
    Everyone,
}

impl Requirement {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "optional" => Some(Requirement::Optional),
            "admins" => Some(Requirement::Admins),
            "everyone" => Some(Requirement::Everyone),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::Optional => "optional",
            Requirement::Admins => "admins",
            Requirement::Everyone => "everyone",
        }
    }

    pub fn applies_to(self, role: super::role::Role) -> bool {
        match self {
            Requirement::Optional => false,
            Requirement::Admins => role == super::role::Role::Admin,
            Requirement::Everyone => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn rfc_6238_vectors_check_and_are_used_once() {
        let s = TotpSecret(*b"12345678901234567890");
        // RFC 6238 appendix B, SHA-1, last six digits: 59 s -> 94287082.
        assert_eq!(s.check("287082", 59, None), Some(1));
        assert_eq!(s.check("287082", 59, Some(1)), None, "reused");
        assert_eq!(s.check("287082", 59 + 90, None), None, "stale");
        assert_eq!(s.check("28708", 59, None), None);
        assert_eq!(s.check("abcdef", 59, None), None);
    }

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_row() {
        let s = TotpSecret::generate();
        let sealed = s.seal("a session secret of enough length!!", 7).unwrap();
        assert!(!sealed.contains(&s.base32()));
        let opened = TotpSecret::open(&sealed, "a session secret of enough length!!", 7).unwrap();
        assert_eq!(opened.0, s.0);
        assert!(TotpSecret::open(&sealed, "another secret of enough length!!!!", 7).is_none());
        assert!(TotpSecret::open(&sealed, "a session secret of enough length!!", 8).is_none());
        assert!(TotpSecret::open("v1.zz", "x", 7).is_none());
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_forgiving_in_form() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let first = &codes[0];
        assert_eq!(first.len(), 19);
        let h = recovery_code_hash(first).unwrap();
        assert_eq!(
            recovery_code_hash(&first.to_lowercase().replace('-', " ")),
            Some(h)
        );
        assert!(recovery_code_hash("short").is_none());
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
    }
}
