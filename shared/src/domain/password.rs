//! Password hashing: HMAC-SHA256 with the salt (pepper), then Argon2id over the 32-byte MAC.
//!
//! The stored form is a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), so the cost
//! can be raised later without a migration. Verification reuses one Argon2 memory block per
//! process, because faulting in 19 MiB of fresh pages costs more than the hash itself.

use std::fmt;
use std::sync::Mutex;

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Longest password accepted, in bytes; anything longer is refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// OWASP's Argon2id minimum: m=19 MiB, t=2, p=1.
pub const DEFAULT_M_COST: u32 = 19_456;
pub const DEFAULT_T_COST: u32 = 2;
pub const DEFAULT_P_COST: u32 = 1;

/// The hash verified when there is no real one (unknown user, disabled user, missing salt…), so
/// that every failed password login costs the same Argon2 run. Its parameters are the defaults
/// above; its salt and hash bytes are random, so no known password produces it.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$1fWRXcXrN9VgHuJQtgm4jA$1N7Lw0xsclyZMdSOAtCzIqIlNNXNi6hHYiT8hqBsKnM";

/// A password as typed by the user. Never printed: `Debug` shows its length only.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// Why a string is not an acceptable password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password is empty")]
    Empty,
    #[error("password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
}

impl Password {
    pub fn parse(raw: impl Into<String>) -> Result<Self, PasswordError> {
        let raw = raw.into();
        if raw.is_empty() {
            Err(PasswordError::Empty)
        } else if raw.len() > MAX_PASSWORD_BYTES {
            Err(PasswordError::TooLong)
        } else {
            Ok(Self(raw))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Password(<{} bytes>)", self.0.len())
    }
}

/// A random password for a new account: 24 characters from an alphabet without look-alikes
/// (≈ 140 bits), each drawn uniformly from the OS random source.
///
/// # Panics
/// If the OS random source fails: there is no safe fallback.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // Rejection sampling: bytes past the last whole multiple of the alphabet would bias it.
    let limit = 256 - 256 % ALPHABET.len();
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).expect("the OS random source failed");
        if usize::from(byte[0]) < limit {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    out
}

/// Errors from hashing or verifying. Carries no secret.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("stored password hash is not a valid Argon2 PHC string: {0}")]
    Malformed(String),
    #[error("argon2 failed: {0}")]
    Argon2(String),
}

/// `HMAC-SHA256(key = salt, message = password)`: the 32 bytes Argon2 actually hashes.
pub fn pepper(salt: &str, password: &Password) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(salt.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(password.expose().as_bytes());
    mac.finalize().into_bytes().into()
}

/// The key under which a warm process may remember that a password verified against a user's
/// stored hash: SHA-256 over a label, the username, the stored PHC string, the salt version and
/// the peppered MAC of the offered password ([`pepper`]), each length-prefixed so that no two
/// different tuples run together into the same input.
///
/// Everything the verification depended on is bound: another password gives another MAC; a new
/// hash of the same password (a re-hash, `ferry passwd`) is another PHC string, since each has its
/// own random salt; a record moved to another salt version names another version (and another
/// salt, so another MAC). So an entry made for one of these never matches after a change, and
/// nothing has to be invalidated by hand.
///
/// The password is not in the key, and the key cannot be tried against without the salt the MAC
/// is keyed by (the keyring's secret). It is a fast hash, though: whoever can read the process's
/// memory (the keyring included) could test guesses against it at SHA-256 speed rather than
/// Argon2's. That reader also sees every password in flight, and an entry lives only as long as
/// the cache's TTL after a login whose password passed through that memory, so the exposure it
/// adds is small and bounded; a cache that is off (TTL 0) computes no key at all.
pub fn verified_login_key(
    username: &str,
    phc: &str,
    salt_version: &str,
    peppered: &[u8; 32],
) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(b"ferry verified-login v1");
    for part in [username.as_bytes(), phc.as_bytes(), salt_version.as_bytes()] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    digest.update(peppered);
    digest.finalize().into()
}

/// Hashes `password` under `salt` with the default cost and a fresh 16-byte random salt (from the
/// OS random source: `PasswordHasher::hash_password` draws it).
pub fn hash_password(salt: &str, password: &Password) -> Result<String, HashError> {
    let params = Params::new(DEFAULT_M_COST, DEFAULT_T_COST, DEFAULT_P_COST, None)
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let peppered = pepper(salt, password);
    argon
        .hash_password(&peppered)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

/// Whether a stored hash is weaker than what [`hash_password`] makes today (another algorithm or
/// version, or less memory or fewer passes), so it should be replaced at the next successful
/// login. A hash that cannot be read is not "weaker": verification reports it instead.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    Algorithm::try_from(parsed.algorithm.as_str()) != Ok(Algorithm::Argon2id)
        || parsed.version != Some(Version::V0x13 as u32)
        || params.m_cost() < DEFAULT_M_COST
        || params.t_cost() < DEFAULT_T_COST
}

/// Verifies peppered passwords against PHC strings, keeping one Argon2 memory block warm.
#[derive(Debug, Default)]
pub struct Verifier {
    spare: Mutex<Vec<Block>>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `peppered` against the PHC string `phc` in constant time. Blocking: call it from a
    /// blocking-friendly thread.
    pub fn verify(&self, phc: &str, peppered: &[u8; 32]) -> Result<bool, HashError> {
        let parsed = PasswordHash::new(phc).map_err(|e| HashError::Malformed(e.to_string()))?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str())
            .map_err(|e| HashError::Malformed(e.to_string()))?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(|e| HashError::Malformed(e.to_string()))?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).map_err(|e| HashError::Malformed(e.to_string()))?;
        // The parser has decoded the salt and the hash from their B64 already.
        let salt = parsed
            .salt
            .as_deref()
            .ok_or_else(|| HashError::Malformed("no salt".into()))?;
        let expected = parsed
            .hash
            .as_ref()
            .ok_or_else(|| HashError::Malformed("no hash".into()))?;
        let expected = expected.as_bytes();
        let mut out = vec![0u8; expected.len()];

        // Take the warm block (or allocate when another verification holds it), and give it back
        // afterwards. A poisoned lock only means an earlier verify panicked; the memory is fine.
        let mut blocks = std::mem::take(&mut *self.spare.lock().unwrap_or_else(|p| p.into_inner()));
        blocks.resize(params.block_count(), Block::default());
        let argon = Argon2::new(algorithm, version, params);
        let result = argon.hash_password_into_with_memory(peppered, salt, &mut out, &mut blocks);
        *self.spare.lock().unwrap_or_else(|p| p.into_inner()) = blocks;
        result.map_err(|e| HashError::Argon2(e.to_string()))?;
        Ok(bool::from(out.ct_eq(expected)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s).unwrap()
    }

    #[test]
    fn a_hash_verifies_only_the_same_password_under_the_same_salt() {
        let hash = hash_password("pepper-1", &pw("correct horse")).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let v = Verifier::new();
        assert!(
            v.verify(&hash, &pepper("pepper-1", &pw("correct horse")))
                .unwrap()
        );
        assert!(
            !v.verify(&hash, &pepper("pepper-1", &pw("correct horsf")))
                .unwrap()
        );
        assert!(
            !v.verify(&hash, &pepper("pepper-2", &pw("correct horse")))
                .unwrap()
        );
    }

    #[test]
    fn hashes_below_the_configured_cost_need_a_rehash_and_current_ones_do_not() {
        assert!(!needs_rehash(&hash_password("s", &pw("x")).unwrap()));
        assert!(!needs_rehash(DUMMY_HASH));
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"x")
        .unwrap()
        .to_string();
        assert!(needs_rehash(&weak));
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(DEFAULT_M_COST, DEFAULT_T_COST, 1, None).unwrap(),
        )
        .hash_password(b"x")
        .unwrap()
        .to_string();
        assert!(needs_rehash(&argon2i));
        assert!(!needs_rehash("not a hash"));
    }

    /// Made by `hash_password("old-pepper-v1", "correct horse battery staple")` with argon2 0.5
    /// (password-hash 0.5), before the move to argon2 0.6: stored hashes from that code must keep
    /// verifying. Its salt has a `/` in it, so the B64 alphabet is exercised too.
    const HASH_FROM_ARGON2_0_5: &str = "$argon2id$v=19$m=19456,t=2,p=1$3E3cRC367/FBGOY5j4umtg$cmEc9u8RiLuQ0Pcz1bbpbKYFMx8NPQMOp0CegIP5hu4";

    #[test]
    fn a_hash_made_by_the_argon2_0_5_code_still_verifies_and_needs_no_rehash() {
        let right = pw("correct horse battery staple");
        // The pepper that code computed (hmac 0.12 / sha2 0.10) for this password and salt.
        let peppered = pepper("old-pepper-v1", &right);
        let hex: String = peppered.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "b5833f5f1794d234d9d35919367e6862c019d9e52e912833aeb763900f87398c"
        );
        let v = Verifier::new();
        assert!(v.verify(HASH_FROM_ARGON2_0_5, &peppered).unwrap());
        // Twice: the second run reuses the warm memory block (the same allocation, all of m).
        let warm = v.spare.lock().unwrap().as_ptr();
        assert!(v.verify(HASH_FROM_ARGON2_0_5, &peppered).unwrap());
        let spare = v.spare.lock().unwrap();
        assert_eq!((spare.as_ptr(), spare.len()), (warm, 19_456));
        drop(spare);
        assert!(
            !v.verify(
                HASH_FROM_ARGON2_0_5,
                &pepper("old-pepper-v1", &pw("correct horse battery stapler"))
            )
            .unwrap()
        );
        assert!(
            !v.verify(HASH_FROM_ARGON2_0_5, &pepper("old-pepper-v2", &right))
                .unwrap()
        );
        assert!(!needs_rehash(HASH_FROM_ARGON2_0_5));
        // And re-encoding the parsed hash gives back the same string, byte for byte.
        assert_eq!(
            PasswordHash::new(HASH_FROM_ARGON2_0_5).unwrap().to_string(),
            HASH_FROM_ARGON2_0_5
        );
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_their_random_salt() {
        let a = hash_password("s", &pw("same")).unwrap();
        let b = hash_password("s", &pw("same")).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn the_dummy_hash_parses_with_the_default_cost_and_matches_nothing_common() {
        let v = Verifier::new();
        for guess in ["", "password", "dummy"] {
            let guess = Password(guess.to_owned());
            assert!(!v.verify(DUMMY_HASH, &pepper("salt", &guess)).unwrap());
        }
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (19_456, 2, 1)
        );
    }

    #[test]
    fn generated_passwords_are_long_from_the_alphabet_and_differ() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"lIO01".contains(c))
        );
    }

    #[test]
    fn a_malformed_stored_hash_is_an_error_not_a_panic() {
        let v = Verifier::new();
        for bad in [
            "",
            "plain",
            "$argon2id$v=19$m=1,t=1,p=1$$",
            "$md5$abc",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
        ] {
            assert!(v.verify(bad, &[0; 32]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn empty_and_oversized_passwords_are_refused_and_debug_hides_the_text() {
        assert_eq!(Password::parse(""), Err(PasswordError::Empty));
        assert_eq!(
            Password::parse("x".repeat(1025)),
            Err(PasswordError::TooLong)
        );
        assert!(Password::parse("x".repeat(1024)).is_ok());
        assert_eq!(format!("{:?}", pw("hunter2")), "Password(<7 bytes>)");
    }

    #[test]
    fn the_verified_login_key_changes_with_each_thing_it_binds() {
        let mac = pepper("salt-two", &pw("pw"));
        let base = verified_login_key("alice", "$argon2id$hash", "2", &mac);
        assert_eq!(
            base,
            verified_login_key("alice", "$argon2id$hash", "2", &mac),
            "the same inputs, the same key"
        );
        let others = [
            verified_login_key("alicf", "$argon2id$hash", "2", &mac),
            verified_login_key("alice", "$argon2id$hasi", "2", &mac),
            verified_login_key("alice", "$argon2id$hash", "3", &mac),
            verified_login_key(
                "alice",
                "$argon2id$hash",
                "2",
                &pepper("salt-two", &pw("pX")),
            ),
            verified_login_key("alice", "$argon2id$hash", "2", &pepper("salt-3", &pw("pw"))),
            // Shifting a byte from one field into the next is another key, too.
            verified_login_key("alic", "e$argon2id$hash", "2", &mac),
            verified_login_key("alice", "$argon2id$has", "h2", &mac),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(&base, other, "variant {i}");
        }
    }

    #[test]
    fn the_pepper_is_hmac_sha256_of_the_password_keyed_by_the_salt() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = pepper("Jefe", &pw("what do ya want for nothing?"));
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
