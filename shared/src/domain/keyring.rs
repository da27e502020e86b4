//! The salt keyring: every salt (pepper) version still needed to verify stored hashes, and which
//! one new hashes use.
//!
//! Stored as one Secrets Manager SecretString, `{"current":"3","salts":{"3":"…","2":"…"}}`. A
//! SecretString that is not a JSON object is the seed design's single plain salt, version `"0"`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// The version the seed design's single plain salt is known by.
pub const LEGACY_VERSION: &str = "0";

/// A parsed keyring. `Debug` never shows the salts.
#[derive(Clone, PartialEq, Eq)]
pub struct Keyring {
    current: String,
    salts: BTreeMap<String, String>,
}

/// Why a SecretString is not a usable keyring. Never quotes the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("keyring JSON object is malformed: {0}")]
    Malformed(String),
    #[error("keyring holds no salts")]
    Empty,
    #[error("keyring version ids must be decimal strings")]
    BadVersion,
    #[error("keyring has an empty salt")]
    EmptySalt,
    #[error("keyring's current version {0} has no salt")]
    CurrentMissing(String),
}

// Unknown fields are ignored so that a newer writer (rotation metadata) cannot lock old readers out.
#[derive(Deserialize)]
struct Stored {
    current: String,
    salts: BTreeMap<String, String>,
}

impl Keyring {
    /// Parses a SecretString: a keyring object, or a plain legacy salt.
    pub fn parse(secret: &str) -> Result<Self, KeyringError> {
        let trimmed = secret.trim_start();
        // Only something that is a JSON object is taken for a keyring; a plain salt that merely
        // starts with '{' is not valid JSON and stays a legacy salt.
        let is_object = trimmed.starts_with('{')
            && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(trimmed).is_ok();
        if !is_object {
            if secret.is_empty() {
                return Err(KeyringError::EmptySalt);
            }
            return Ok(Self {
                current: LEGACY_VERSION.to_owned(),
                salts: BTreeMap::from([(LEGACY_VERSION.to_owned(), secret.to_owned())]),
            });
        }
        // serde_json's messages name fields and positions, never the secret's values.
        let stored: Stored =
            serde_json::from_str(trimmed).map_err(|e| KeyringError::Malformed(e.to_string()))?;
        Self::new(stored.current, stored.salts)
    }

    /// Builds a keyring, checking that every version is decimal and the current one exists.
    pub fn new(current: String, salts: BTreeMap<String, String>) -> Result<Self, KeyringError> {
        if salts.is_empty() {
            return Err(KeyringError::Empty);
        }
        if !salts.keys().chain([&current]).all(|v| is_version(v)) {
            return Err(KeyringError::BadVersion);
        }
        if salts.values().any(String::is_empty) {
            return Err(KeyringError::EmptySalt);
        }
        if !salts.contains_key(&current) {
            return Err(KeyringError::CurrentMissing(current));
        }
        Ok(Self { current, salts })
    }

    /// The version new hashes use.
    pub fn current_version(&self) -> &str {
        &self.current
    }

    /// The salt new hashes use.
    pub fn current_salt(&self) -> &str {
        // `new` guarantees the current version is present.
        self.salts.get(&self.current).map_or("", String::as_str)
    }

    /// The salt of `version`, if the keyring still holds it.
    pub fn salt(&self, version: &str) -> Option<&str> {
        self.salts.get(version).map(String::as_str)
    }

    /// Versions held, oldest first (numeric order).
    pub fn versions(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.salts.keys().map(String::as_str).collect();
        v.sort_by_key(|s| (s.len(), *s));
        v
    }

    /// The SecretString form of this keyring.
    pub fn to_secret_string(&self) -> String {
        serde_json::json!({"current": self.current, "salts": self.salts}).to_string()
    }
}

/// A version id is a decimal string without leading zeros (so numeric and text order agree
/// once length is compared first).
fn is_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 19
        && v.bytes().all(|b| b.is_ascii_digit())
        && (v == "0" || !v.starts_with('0'))
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("versions", &self.versions())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyring_object_gives_every_version_and_the_current_one() {
        let k = Keyring::parse(r#"{"current":"3","salts":{"3":"new","2":"old"}}"#).unwrap();
        assert_eq!(k.current_version(), "3");
        assert_eq!(k.current_salt(), "new");
        assert_eq!(k.salt("2"), Some("old"));
        assert_eq!(k.salt("1"), None);
        assert_eq!(k.versions(), ["2", "3"]);
    }

    #[test]
    fn a_plain_string_is_the_legacy_salt_version_zero() {
        for plain in ["s3cr3t", "{not json", "\"quoted\"", "12345", "[1,2]"] {
            let k = Keyring::parse(plain).unwrap();
            assert_eq!(k.current_version(), "0");
            assert_eq!(k.salt("0"), Some(plain));
        }
    }

    #[test]
    fn a_broken_keyring_object_is_an_error_not_a_legacy_salt() {
        for bad in [
            r#"{"current":"3","salts":{"2":"old"}}"#,
            r#"{"current":"3"}"#,
            r#"{"current":"x","salts":{"x":"a"}}"#,
            r#"{"current":"03","salts":{"03":"a"}}"#,
            r#"{"current":"1","salts":{}}"#,
            r#"{"current":"1","salts":{"1":""}}"#,
            r#"{"current":1,"salts":{"1":"a"}}"#,
        ] {
            assert!(Keyring::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Keyring::parse(""), Err(KeyringError::EmptySalt));
    }

    #[test]
    fn versions_sort_numerically_and_the_secret_string_round_trips() {
        let k = Keyring::parse(r#"{"current":"10","salts":{"10":"a","9":"b","100":"c"}}"#).unwrap();
        assert_eq!(k.versions(), ["9", "10", "100"]);
        assert_eq!(Keyring::parse(&k.to_secret_string()).unwrap(), k);
    }

    #[test]
    fn debug_output_never_shows_a_salt() {
        let k = Keyring::parse(r#"{"current":"1","salts":{"1":"topsecret"}}"#).unwrap();
        assert!(!format!("{k:?}").contains("topsecret"));
    }
}
