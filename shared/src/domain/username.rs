//! The username newtype: validated once at the boundary, lowercase ever after.

use std::fmt;

/// Shortest and longest username Transfer Family accepts.
const MIN_LEN: usize = 3;
const MAX_LEN: usize = 100;

/// A Transfer Family username: 3–100 characters of `[A-Za-z0-9_@.-]`, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

/// Why a string is not a username. Carries no copy of the input: it may be a mistyped password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username must be {MIN_LEN} to {MAX_LEN} characters long")]
    Length,
    #[error("username may only contain letters, digits, '_', '@', '.' and '-'")]
    Character,
}

impl Username {
    /// Validates and lowercases `raw`.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        // Length before anything else, so a huge input costs nothing.
        if raw.len() < MIN_LEN || raw.len() > MAX_LEN {
            return Err(UsernameError::Length);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'.' | b'-'))
        {
            return Err(UsernameError::Character);
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_name_is_lowercased() {
        assert_eq!(
            Username::parse("Alice.B-2@Example_X").unwrap().as_str(),
            "alice.b-2@example_x"
        );
    }

    #[test]
    fn names_outside_three_to_a_hundred_characters_are_refused() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(""), Err(UsernameError::Length));
        assert!(Username::parse(&"a".repeat(100)).is_ok());
        assert_eq!(
            Username::parse(&"a".repeat(101)),
            Err(UsernameError::Length)
        );
    }

    #[test]
    fn names_with_other_characters_are_refused() {
        for bad in [
            "al ice",
            "al/ice",
            "alice%40x",
            "al\u{e9}ce",
            "ali\0ce",
            "al*ce",
            "../etc",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_multibyte_name_of_few_characters_is_refused_by_characters_not_length() {
        assert_eq!(
            Username::parse("\u{e9}\u{e9}"),
            Err(UsernameError::Character)
        );
    }
}
