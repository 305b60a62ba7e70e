//! Dashboard passwords: argon2id hashes in PHC format, checked off the async executor.

use std::cell::RefCell;

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::domain::secret::random_token;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

/// Checks the length rules; returns the message shown beside the field.
pub fn validate(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(format!("Use at least {MIN_LENGTH} characters."));
    }
    if n > MAX_LENGTH {
        return Err(format!("Use at most {MAX_LENGTH} characters."));
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("password hashing failed: {e}"))
}

/// The most argon2 memory a thread keeps between checks: 64 MiB, over three times the
/// default cost (a stored hash asking for more gets memory of its own each time).
const KEPT_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// argon2's working memory, kept by the thread between checks: a fresh 19 MiB for
    /// every check costs ~5,000 page faults and an unmap (a TLB flush on every core
    /// running the server) each time, which under a login flood is work and lock time
    /// taken from the requests the hashing threads are meant to leave alone.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Constant-work check: a malformed stored hash simply fails. The same computation as
/// `argon2`'s own `verify_password` (algorithm, version and parameters from the PHC
/// string, constant-time comparison); `keep_memory` keeps argon2's memory on this
/// thread for its next check (for a few dedicated threads only: each keeps 19 MiB).
pub fn verify(password: &str, stored: &str, keep_memory: bool) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str());
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, Params::try_from(&parsed))
    else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let Some(out) = buffer.get_mut(..expected.len()) else {
        return false;
    };
    let computed = if keep_memory && blocks <= KEPT_BLOCKS {
        MEMORY.with_borrow_mut(|memory| {
            if memory.len() < blocks {
                memory.resize(blocks, Block::new());
            }
            argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..])
        })
    } else {
        argon2.hash_password_into(password.as_bytes(), salt, out)
    };
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(out).is_ok_and(|out| out == *expected)
}

/// A hash of a random password, checked against when the username is unknown so that
/// a wrong username costs the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&random_token(24)).unwrap_or_default())
}

/// A random password for the first admin: 20 base62 characters (~119 bits).
pub fn generate() -> String {
    random_token(20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        for keep in [false, true] {
            assert!(verify("correct horse battery", &h, keep));
            assert!(!verify("correct horse batterx", &h, keep));
            assert!(!verify("anything", "not a hash", keep));
        }
    }

    #[test]
    fn checks_agree_with_argon2s_own_verifier_for_every_variant() {
        use argon2::password_hash::{CustomizedPasswordHasher, PasswordVerifier};
        let salt = b"sixteen byte salt";
        for (alg, version, m, t, p, len) in [
            ("argon2id", 0x13, 19_456, 2, 1, 32),
            ("argon2id", 0x13, 64, 3, 4, 16),
            ("argon2i", 0x13, 256, 1, 2, 64),
            ("argon2d", 0x10, 128, 2, 1, 24),
        ] {
            let params = Params::new(m, t, p, Some(len)).unwrap();
            let h = Argon2::default()
                .hash_password_customized(b"right password", salt, Some(alg), Some(version), params)
                .unwrap()
                .to_string();
            for (guess, right) in [("right password", true), ("wrong password", false)] {
                assert_eq!(verify(guess, &h, false), right, "{h}");
                assert_eq!(verify(guess, &h, true), right, "{h}");
                let theirs = Argon2::default().verify_password(guess.as_bytes(), h.as_str());
                assert_eq!(theirs.is_ok(), right, "{h}");
            }
            // A larger hash earlier leaves more memory than this one needs: still right.
            assert!(verify("right password", &h, true));
        }
        let mut tampered = hash("right password").unwrap();
        let last = tampered.pop();
        tampered.push(if last == Some('A') { 'B' } else { 'A' });
        assert!(!verify("right password", &tampered, true));
        let no_output = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA";
        assert!(!verify("right password", no_output, true));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(validate("short").is_err());
        assert!(validate("long enough password").is_ok());
    }
}
