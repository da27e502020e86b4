//! The file transfer protocols Transfer Family serves. A type of its own, so that the login
//! request (`transfer`) and the user record (`user`) can both name it without importing each
//! other.

use std::fmt;

use serde::Serialize;

/// The file transfer protocol of a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Sftp,
    Ftps,
    Ftp,
}

impl Protocol {
    /// Parses `SFTP`, `FTPS` or `FTP` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "SFTP" => Some(Self::Sftp),
            "FTPS" => Some(Self::Ftps),
            "FTP" => Some(Self::Ftp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sftp => "SFTP",
            Self::Ftps => "FTPS",
            Self::Ftp => "FTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
