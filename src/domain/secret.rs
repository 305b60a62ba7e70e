//! Random material from the operating system and base62 text.

use rand::TryRng;
use rand::rngs::SysRng;

pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Fills `buf` from the OS random source. The OS source failing is not a state the
/// program can continue from safely, so this aborts the request with a panic message
/// that names the cause (the panic is caught by actix and answered with a 500).
#[expect(
    clippy::expect_used,
    reason = "no safe fallback exists when the OS random source fails"
)]
pub fn os_random(buf: &mut [u8]) {
    SysRng
        .try_fill_bytes(buf)
        .expect("the operating system's random source failed");
}

/// `len` base62 characters, uniformly distributed (rejection sampling: bytes 248..=255
/// are thrown away so `% 62` has no bias). Each character carries log2(62) ≈ 5.95 bits.
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        os_random(&mut buf);
        for &b in &buf {
            if b < 248 && out.len() < len {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// A random token for sessions, CSRF and generated passwords.
pub fn random_token(len: usize) -> String {
    random_base62(len)
}

/// Hex blake3 digest: how tokens and keys are stored.
pub fn hash_hex(data: &str) -> String {
    blake3::hash(data.as_bytes()).to_hex().to_string()
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_strings_have_the_asked_length_and_alphabet() {
        for len in [0, 1, 12, 63, 200] {
            let s = random_base62(len);
            assert_eq!(s.len(), len);
            assert!(s.bytes().all(|b| BASE62.contains(&b)));
        }
        assert_ne!(random_base62(32), random_base62(32));
    }
}
