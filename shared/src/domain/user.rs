//! A user record: the data model of `docs/data-model.md`, parsed once into types the
//! authenticator can trust.
//!
//! Stores read and write [`StoredRecord`] (SQLite as JSON, DynamoDB items through
//! `serde_dynamo`), and [`UserRecord::from_stored`] judges it, so one parser serves every backend
//! and is tested without any service; [`UserRecord::to_stored`] is its inverse for writes.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::protocol::Protocol;
use crate::domain::username::Username;

/// Longest `HomeDirectory`, `Entry` or `Target` Transfer Family accepts.
pub const MAX_PATH_CHARS: usize = 1024;

/// Account state. Anything but `active` refuses every login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Disabled,
    /// Set by the policy validator when a record fails its checks.
    Invalid,
}

impl Status {
    /// Reads a stored value; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Disabled, Self::Invalid]
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// The stored value (`active`, `disabled`, `invalid`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Invalid => "invalid",
        }
    }
}

/// One `HomeDirectoryDetails` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    #[serde(rename = "Entry")]
    pub entry: String,
    #[serde(rename = "Target")]
    pub target: String,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none", default)]
    pub kind: Option<MappingType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MappingType {
    File,
    Directory,
}

/// Where the user lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// `HomeDirectoryType: PATH`, `HomeDirectory: /<bucket>/<home>`.
    Path(String),
    /// `HomeDirectoryType: LOGICAL` with its mappings (a chroot is one mapping of `/`).
    Logical(Vec<Mapping>),
}

/// `PosixProfile`, passed through to Transfer (required for EFS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PosixProfile {
    #[serde(rename = "Uid")]
    pub uid: u32,
    #[serde(rename = "Gid")]
    pub gid: u32,
    #[serde(rename = "SecondaryGids", default)]
    pub secondary_gids: Vec<u32>,
}

/// An SSH public key with an optional expiry (epoch seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key: String,
    pub expires_at: Option<i64>,
}

/// A validated user record.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: Username,
    pub password_hash: Option<String>,
    pub salt_version: Option<String>,
    pub bucket: String,
    pub home_prefix: String,
    pub policy_arn: String,
    pub role_arn: Option<String>,
    pub home: Home,
    pub public_keys: Vec<PublicKey>,
    pub allowed_ips: Vec<IpNet>,
    pub allowed_servers: Vec<String>,
    pub protocols: Vec<Protocol>,
    pub posix_profile: Option<PosixProfile>,
    pub status: Status,
    pub expires_at: Option<i64>,
    /// The last recorded login (epoch seconds; coarse: see `crate::domain::lifecycle`).
    pub last_login_at: Option<i64>,
    /// When a password was last set by an operator or a migration (not by a re-hash, which keeps
    /// the same password).
    pub password_changed_at: Option<i64>,
    /// When an operator created or last enabled the user.
    pub enabled_at: Option<i64>,
    /// This user's inactivity limit in days, over the default (`0`: none).
    pub disable_after_inactive_days: Option<u32>,
    /// This user's password maximum age in days, over the default (`0`: none).
    pub password_max_age_days: Option<u32>,
    /// Whether the home is a chroot (one mapping of `/`), as opposed to explicit mappings.
    pub chroot: bool,
    /// Attributes outside the model, kept so that rewriting a record never drops them.
    pub extra: BTreeMap<String, Value>,
}

impl fmt::Debug for UserRecord {
    // Hand-written so that the hash can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("username", &self.username)
            .field("has_password", &self.password_hash.is_some())
            .field("salt_version", &self.salt_version)
            .field("bucket", &self.bucket)
            .field("home", &self.home)
            .field("status", &self.status)
            .field("keys", &self.public_keys.len())
            .field("last_login_at", &self.last_login_at)
            .finish_non_exhaustive()
    }
}

/// Why a stored record cannot be used. Names the attribute, never a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user record is invalid: {0}")]
pub struct RecordError(pub String);

fn bad(msg: impl Into<String>) -> RecordError {
    RecordError(msg.into())
}

/// A `publicKeys` entry as stored: the OpenSSH text alone, or with an expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyEntry {
    Plain(String),
    WithExpiry {
        key: String,
        #[serde(rename = "expiresAt", default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
    },
}

impl KeyEntry {
    pub fn new(key: String, expires_at: Option<i64>) -> Self {
        match expires_at {
            None => Self::Plain(key),
            Some(t) => Self::WithExpiry {
                key,
                expires_at: Some(t),
            },
        }
    }

    /// The OpenSSH text of the key.
    pub fn key(&self) -> &str {
        match self {
            Self::Plain(key) | Self::WithExpiry { key, .. } => key,
        }
    }

    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Self::Plain(_) => None,
            Self::WithExpiry { expires_at, .. } => *expires_at,
        }
    }
}

/// A record exactly as stores hold it: every attribute of the data model, by its stored name,
/// loosely typed (what a store may hold, not what a login may trust). This struct is the one
/// place the attribute names are spelled (serde's camelCase of the field names); stores read
/// and write it (SQLite as JSON, DynamoDB through `serde_dynamo`), and [`UserRecord::from_stored`]
/// turns it into a record the authenticator can trust. Attributes the model does not know
/// (`uploadRules`, the validator's `statusReason` and `validatedAt`, an operator's own) are kept
/// in `extra`, so that rewriting a record never drops them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRecord {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_policy_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_directory_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_directory_details: Option<Vec<Mapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chroot: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<KeyEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posix_profile: Option<PosixProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_changed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_after_inactive_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_max_age_days: Option<u32>,
    /// Every other attribute, kept as it was.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Attribute names that code outside serde needs as strings (key schemas, condition
/// expressions, the validator's list of watched fields). Each equals the serde name of the
/// matching [`StoredRecord`] field; a test holds them together.
pub mod attr {
    pub const USERNAME: &str = "username";
    pub const PASSWORD_HASH: &str = "passwordHash";
    pub const SALT_VERSION: &str = "saltVersion";
    pub const BUCKET: &str = "bucket";
    pub const HOME: &str = "home";
    pub const IAM_POLICY_ARN: &str = "iamPolicyArn";
    pub const ROLE_ARN: &str = "roleArn";
    pub const HOME_DIRECTORY_TYPE: &str = "homeDirectoryType";
    pub const HOME_DIRECTORY_DETAILS: &str = "homeDirectoryDetails";
    pub const CHROOT: &str = "chroot";
    pub const PUBLIC_KEYS: &str = "publicKeys";
    pub const ALLOWED_IPS: &str = "allowedIps";
    pub const ALLOWED_SERVERS: &str = "allowedServers";
    pub const PROTOCOLS: &str = "protocols";
    pub const EXPIRES_AT: &str = "expiresAt";
    pub const POSIX_PROFILE: &str = "posixProfile";
    pub const STATUS: &str = "status";
    /// The account lifecycle (`crate::domain::lifecycle`): the last recorded login (written by
    /// logins, conditionally, at most once an hour), when a password was last set, when an
    /// operator created or enabled the user, and the user's own limits.
    pub const LAST_LOGIN_AT: &str = "lastLoginAt";
    pub const PASSWORD_CHANGED_AT: &str = "passwordChangedAt";
    pub const ENABLED_AT: &str = "enabledAt";
    pub const DISABLE_AFTER_INACTIVE_DAYS: &str = "disableAfterInactiveDays";
    pub const PASSWORD_MAX_AGE_DAYS: &str = "passwordMaxAgeDays";
    /// Written by the policy validator (kept in [`super::StoredRecord::extra`]).
    pub const STATUS_REASON: &str = "statusReason";
    pub const VALIDATED_AT: &str = "validatedAt";
    /// A user's own upload rules (kept in `extra`; read by the upload processor).
    pub const UPLOAD_RULES: &str = "uploadRules";
    /// A record made for a seed-design user who was disabled before their first login (kept in
    /// `extra`): their old password may still set its first hash.
    pub const LEGACY_PENDING: &str = "legacyPending";
    /// The directory source (`crate::domain::directory`) that verifies this user's password and
    /// account state (kept in `extra`); absent: ferry's own password hash.
    pub const IDENTITY_SOURCE: &str = "identitySource";
}

impl UserRecord {
    /// Parses a record given as a JSON object of its attributes (see the module docs).
    pub fn from_json(value: serde_json::Value) -> Result<Self, RecordError> {
        // serde's messages name the field and expected type; they quote values only for enum
        // variants (status, Type), which hold no secrets.
        let raw: StoredRecord = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        Self::from_stored(raw)
    }

    /// Judges a stored record by the data model's rules.
    pub fn from_stored(raw: StoredRecord) -> Result<Self, RecordError> {
        let username = Username::parse(&raw.username).map_err(|e| bad(e.to_string()))?;
        if username.as_str() != raw.username {
            return Err(bad("username key is not stored lowercase"));
        }
        let bucket = raw.bucket.ok_or_else(|| bad("bucket is missing"))?;
        if !is_bucket_name(&bucket) {
            return Err(bad("bucket is not a valid S3 bucket name"));
        }
        let home_prefix = raw.home.ok_or_else(|| bad("home is missing"))?;
        let home_prefix = home_prefix.trim_matches('/').to_owned();
        if !is_clean_path(&home_prefix) {
            return Err(bad(
                "home must be a plain prefix without '.', '..' or empty segments",
            ));
        }
        let policy_arn = raw
            .iam_policy_arn
            .ok_or_else(|| bad("iamPolicyArn is missing"))?;
        // The one ARN parser, so that login and the validator agree on what an ARN is.
        if let Err(e) = crate::domain::arn::Arn::iam_policy(&policy_arn) {
            return Err(bad(format!("iamPolicyArn is not an IAM policy ARN: {e}")));
        }
        if let Some(role) = &raw.role_arn
            && let Err(e) = crate::domain::arn::Arn::iam_role(role)
        {
            return Err(bad(format!("roleArn is not an IAM role ARN: {e}")));
        }
        if raw.password_hash.is_some() && raw.salt_version.is_none() {
            return Err(bad("passwordHash without saltVersion"));
        }

        let path_home = if home_prefix.is_empty() {
            format!("/{bucket}")
        } else {
            format!("/{bucket}/{home_prefix}")
        };
        if path_home.chars().count() > MAX_PATH_CHARS {
            return Err(bad("home directory is longer than 1024 characters"));
        }
        let chroot = raw.chroot == Some(true);
        let home = match (
            raw.home_directory_type.as_deref(),
            raw.chroot,
            raw.home_directory_details,
        ) {
            (Some("LOGICAL") | None, Some(true), None) => Home::Logical(vec![Mapping {
                entry: "/".into(),
                target: path_home,
                kind: None,
            }]),
            (_, Some(true), Some(_)) => {
                return Err(bad(
                    "chroot and homeDirectoryDetails are mutually exclusive",
                ));
            }
            (Some("PATH"), Some(true), None) => {
                return Err(bad("chroot requires homeDirectoryType LOGICAL"));
            }
            (Some("LOGICAL"), _, Some(details)) => Home::Logical(check_mappings(details)?),
            (Some("LOGICAL"), _, None) => {
                return Err(bad(
                    "homeDirectoryType LOGICAL needs homeDirectoryDetails or chroot",
                ));
            }
            (Some("PATH") | None, _, None) => Home::Path(path_home),
            (Some("PATH") | None, _, Some(_)) => {
                return Err(bad(
                    "homeDirectoryDetails requires homeDirectoryType LOGICAL",
                ));
            }
            (Some(_), _, _) => return Err(bad("homeDirectoryType must be PATH or LOGICAL")),
        };

        let mut public_keys = Vec::with_capacity(raw.public_keys.len());
        for entry in raw.public_keys {
            let (key, expires_at) = match entry {
                KeyEntry::Plain(key) => (key, None),
                KeyEntry::WithExpiry { key, expires_at } => (key, expires_at),
            };
            let key = key.trim().to_owned();
            if !looks_like_openssh_key(&key) {
                return Err(bad(
                    "publicKeys holds something that is not an OpenSSH public key",
                ));
            }
            public_keys.push(PublicKey { key, expires_at });
        }
        if let Some(source) = raw.extra.get(attr::IDENTITY_SOURCE) {
            let name = source.as_str().unwrap_or_default();
            if crate::domain::directory::SourceName::parse(name).is_err() {
                return Err(bad("identitySource is not a source name"));
            }
        }
        let allowed_ips = raw
            .allowed_ips
            .iter()
            .map(|s| parse_cidr(s))
            .collect::<Result<Vec<_>, _>>()?;
        let protocols = raw
            .protocols
            .iter()
            .map(|p| Protocol::parse(p).ok_or_else(|| bad("protocols holds an unknown protocol")))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Self {
            username,
            password_hash: raw.password_hash,
            salt_version: raw.salt_version,
            bucket,
            home_prefix,
            policy_arn,
            role_arn: raw.role_arn,
            home,
            public_keys,
            allowed_ips,
            allowed_servers: raw.allowed_servers,
            protocols,
            posix_profile: raw.posix_profile,
            status: raw.status.unwrap_or(Status::Active),
            expires_at: raw.expires_at,
            last_login_at: raw.last_login_at,
            password_changed_at: raw.password_changed_at,
            enabled_at: raw.enabled_at,
            disable_after_inactive_days: raw.disable_after_inactive_days,
            password_max_age_days: raw.password_max_age_days,
            chroot,
            extra: raw.extra,
        })
    }

    /// The record as stores hold it; `from_stored(to_stored())` gives the same record back.
    pub fn to_stored(&self) -> StoredRecord {
        let (home_directory_type, home_directory_details) = match &self.home {
            Home::Logical(_) if self.chroot => (None, None),
            Home::Logical(mappings) => (Some("LOGICAL".to_owned()), Some(mappings.clone())),
            Home::Path(_) => (None, None),
        };
        StoredRecord {
            username: self.username.as_str().to_owned(),
            password_hash: self.password_hash.clone(),
            salt_version: self.salt_version.clone(),
            bucket: Some(self.bucket.clone()),
            home: Some(self.home_prefix.clone()),
            iam_policy_arn: Some(self.policy_arn.clone()),
            role_arn: self.role_arn.clone(),
            home_directory_type,
            home_directory_details,
            chroot: self.chroot.then_some(true),
            public_keys: self
                .public_keys
                .iter()
                .map(|k| match k.expires_at {
                    None => KeyEntry::Plain(k.key.clone()),
                    Some(t) => KeyEntry::WithExpiry {
                        key: k.key.clone(),
                        expires_at: Some(t),
                    },
                })
                .collect(),
            allowed_ips: self.allowed_ips.iter().map(ToString::to_string).collect(),
            allowed_servers: self.allowed_servers.clone(),
            protocols: self
                .protocols
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            posix_profile: self.posix_profile.clone(),
            status: Some(self.status),
            expires_at: self.expires_at,
            last_login_at: self.last_login_at,
            password_changed_at: self.password_changed_at,
            enabled_at: self.enabled_at,
            disable_after_inactive_days: self.disable_after_inactive_days,
            password_max_age_days: self.password_max_age_days,
            extra: self.extra.clone(),
        }
    }

    /// The record as the data model's JSON object.
    pub fn to_json(&self) -> Value {
        // A struct of strings, numbers, lists and maps always serialises.
        serde_json::to_value(self.to_stored()).unwrap_or(Value::Null)
    }

    /// Whether the account has expired at `now` (epoch seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// The keys still valid at `now`.
    pub fn live_keys(&self, now: i64) -> Vec<String> {
        self.public_keys
            .iter()
            .filter(|k| k.expires_at.is_none_or(|t| t > now))
            .map(|k| k.key.clone())
            .collect()
    }

    /// Whether `ip` may log in (an empty list allows every address).
    /// The directory source that verifies this user, when the record names one.
    pub fn identity_source(&self) -> Option<&str> {
        self.extra
            .get(attr::IDENTITY_SOURCE)
            .and_then(Value::as_str)
    }

    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is the IPv4 client it stands for.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|net| net.contains(&ip))
    }

    pub fn server_allowed(&self, server_id: &str) -> bool {
        self.allowed_servers.is_empty() || self.allowed_servers.iter().any(|s| s == server_id)
    }

    pub fn protocol_allowed(&self, protocol: Protocol) -> bool {
        self.protocols.is_empty() || self.protocols.contains(&protocol)
    }
}

fn check_mappings(details: Vec<Mapping>) -> Result<Vec<Mapping>, RecordError> {
    if details.is_empty() {
        return Err(bad("homeDirectoryDetails is empty"));
    }
    for m in &details {
        if !m.entry.starts_with('/') || !m.target.starts_with('/') {
            return Err(bad(
                "homeDirectoryDetails Entry and Target must start with '/'",
            ));
        }
        if m.entry.chars().count() > MAX_PATH_CHARS || m.target.chars().count() > MAX_PATH_CHARS {
            return Err(bad(
                "homeDirectoryDetails Entry or Target is longer than 1024 characters",
            ));
        }
        if !is_clean_path(m.entry.trim_matches('/')) || !is_clean_path(m.target.trim_matches('/')) {
            return Err(bad(
                "homeDirectoryDetails holds '.', '..' or empty path segments",
            ));
        }
    }
    Ok(details)
}

/// A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (a single host).
fn parse_cidr(s: &str) -> Result<IpNet, RecordError> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| bad("allowedIps holds something that is not a CIDR or an IP address"))
}

/// S3's bucket naming rules (3–63 of lowercase letters, digits, '.', '-'; letter or digit at
/// both ends).
fn is_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && b.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
        && !b.contains("..")
}

/// A relative path whose segments are non-empty and not `.` or `..` (the empty path is fine).
fn is_clean_path(p: &str) -> bool {
    p.is_empty()
        || p.split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('\0'))
}

/// A cheap shape check: `<type> <base64> [comment]` with a known key type.
fn looks_like_openssh_key(key: &str) -> bool {
    let mut parts = key.split_ascii_whitespace();
    let (Some(kind), Some(body)) = (parts.next(), parts.next()) else {
        return false;
    };
    let known = kind.starts_with("ssh-")
        || kind.starts_with("ecdsa-sha2-")
        || kind.starts_with("sk-ssh-")
        || kind.starts_with("sk-ecdsa-");
    known
        && body.len() >= 16
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";

    fn base() -> serde_json::Value {
        json!({
            "username": "alice",
            "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB",
            "saltVersion": "1",
            "bucket": "ferry-data",
            "home": "partners/alice",
            "iamPolicyArn": "arn:aws:iam::123456789012:policy/ferry-scope-down"
        })
    }

    fn with(extra: serde_json::Value) -> Result<UserRecord, RecordError> {
        let mut v = base();
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        UserRecord::from_json(v)
    }

    #[test]
    fn a_minimal_record_is_an_active_path_user() {
        let u = UserRecord::from_json(base()).unwrap();
        assert_eq!(u.home, Home::Path("/ferry-data/partners/alice".into()));
        assert_eq!(u.status, Status::Active);
        assert!(u.ip_allowed("198.51.100.1".parse().unwrap()));
        assert!(u.server_allowed("s-any"));
        assert!(u.protocol_allowed(Protocol::Ftp));
    }

    #[test]
    fn chroot_is_one_logical_mapping_of_root_to_the_home() {
        let u = with(json!({"chroot": true, "home": "/partners/alice/"})).unwrap();
        assert_eq!(
            u.home,
            Home::Logical(vec![Mapping {
                entry: "/".into(),
                target: "/ferry-data/partners/alice".into(),
                kind: None
            }])
        );
    }

    #[test]
    fn explicit_logical_mappings_are_kept() {
        let u = with(json!({
            "homeDirectoryType": "LOGICAL",
            "homeDirectoryDetails": [{"Entry": "/in", "Target": "/b1/x/in", "Type": "DIRECTORY"}, {"Entry": "/out", "Target": "/b2/y"}]
        }))
        .unwrap();
        let Home::Logical(m) = u.home else {
            panic!("not logical")
        };
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].kind, Some(MappingType::Directory));
    }

    /// The reason a record is refused, or a note that it was accepted.
    fn refusal(v: serde_json::Value) -> String {
        match UserRecord::from_json(v) {
            Ok(_) => "accepted".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn contradictory_or_unsafe_home_settings_are_refused_with_their_reason() {
        for (extra, reason) in [
            (
                json!({"homeDirectoryType": "LOGICAL"}),
                "homeDirectoryType LOGICAL needs homeDirectoryDetails or chroot",
            ),
            (
                json!({"homeDirectoryType": "PATH", "chroot": true}),
                "chroot requires homeDirectoryType LOGICAL",
            ),
            (
                json!({"homeDirectoryType": "PATH", "homeDirectoryDetails": [{"Entry": "/", "Target": "/b/x"}]}),
                "homeDirectoryDetails requires homeDirectoryType LOGICAL",
            ),
            (
                json!({"homeDirectoryType": "WEIRD"}),
                "homeDirectoryType must be PATH or LOGICAL",
            ),
            (
                json!({"chroot": true, "homeDirectoryType": "LOGICAL", "homeDirectoryDetails": [{"Entry": "/", "Target": "/b/x"}]}),
                "chroot and homeDirectoryDetails are mutually exclusive",
            ),
            (
                json!({"homeDirectoryType": "LOGICAL", "homeDirectoryDetails": []}),
                "homeDirectoryDetails is empty",
            ),
            (
                json!({"homeDirectoryType": "LOGICAL", "homeDirectoryDetails": [{"Entry": "/", "Target": "/b/../etc"}]}),
                "homeDirectoryDetails holds '.', '..' or empty path segments",
            ),
            (
                json!({"homeDirectoryType": "LOGICAL", "homeDirectoryDetails": [{"Entry": "x", "Target": "/b"}]}),
                "homeDirectoryDetails Entry and Target must start with '/'",
            ),
            (
                json!({"home": "a/../../b"}),
                "home must be a plain prefix without '.', '..' or empty segments",
            ),
            (
                json!({"home": "a//b"}),
                "home must be a plain prefix without '.', '..' or empty segments",
            ),
            (
                json!({"bucket": "Bad_Bucket"}),
                "bucket is not a valid S3 bucket name",
            ),
            (
                json!({"home": "x".repeat(1100)}),
                "home directory is longer than 1024 characters",
            ),
        ] {
            let mut v = base();
            for (k, val) in extra.as_object().unwrap() {
                v[k] = val.clone();
            }
            assert_eq!(
                refusal(v),
                format!("user record is invalid: {reason}"),
                "{extra}"
            );
        }
    }

    #[test]
    fn required_attributes_and_their_types_are_checked_with_their_reason() {
        for field in ["bucket", "home", "iamPolicyArn"] {
            let mut v = base();
            v.as_object_mut().unwrap().remove(field);
            assert_eq!(
                refusal(v),
                format!("user record is invalid: {field} is missing")
            );
        }
        let mut v = base();
        v.as_object_mut().unwrap().remove("username");
        assert!(refusal(v).contains("missing field `username`"));
        for (extra, reason) in [
            (
                json!({"saltVersion": null}),
                "passwordHash without saltVersion",
            ),
            (
                json!({"iamPolicyArn": "not-an-arn"}),
                "iamPolicyArn is not an IAM policy ARN",
            ),
            (
                json!({"roleArn": "arn:aws:iam::1:user/x"}),
                "roleArn is not an IAM role ARN",
            ),
            (
                json!({"username": "Alice"}),
                "username key is not stored lowercase",
            ),
            (json!({"expiresAt": "tomorrow"}), "expected i64"),
            (json!({"lastLoginAt": "yesterday"}), "expected i64"),
            (
                json!({"disableAfterInactiveDays": -1}),
                "invalid value: integer `-1`, expected u32",
            ),
            (json!({"passwordMaxAgeDays": 1.5}), "expected u32"),
            (json!({"status": "banned"}), "unknown variant `banned`"),
            (
                json!({"allowedIps": ["10.0.0.0/33"]}),
                "allowedIps holds something that is not a CIDR or an IP address",
            ),
            (
                json!({"protocols": ["SCP"]}),
                "protocols holds an unknown protocol",
            ),
            (
                json!({"publicKeys": ["not a key"]}),
                "publicKeys holds something that is not an OpenSSH public key",
            ),
        ] {
            let mut v = base();
            for (k, val) in extra.as_object().unwrap() {
                v[k] = val.clone();
            }
            let got = refusal(v);
            assert!(
                got.starts_with("user record is invalid: ") && got.contains(reason),
                "{extra}: {got}"
            );
        }
        assert!(refusal(json!([1, 2])).contains("expected struct StoredRecord"));
    }

    #[test]
    fn a_record_survives_being_stored_and_read_back() {
        for extra in [
            json!({}),
            json!({"chroot": true, "status": "disabled", "expiresAt": 5, "uploadRules": {"maxObjectBytes": 3}}),
            json!({"lastLoginAt": 1_800_000_000, "passwordChangedAt": 1_700_000_000, "enabledAt": 1_600_000_000,
                   "disableAfterInactiveDays": 90, "passwordMaxAgeDays": 0}),
            json!({"homeDirectoryType": "LOGICAL", "homeDirectoryDetails": [{"Entry": "/in", "Target": "/b1/x/in", "Type": "DIRECTORY"}],
                   "allowedIps": ["10.1.2.3/16", "192.0.2.7"], "allowedServers": ["s-1"], "protocols": ["sftp"],
                   "publicKeys": [KEY, {"key": KEY, "expiresAt": 9}], "roleArn": "arn:aws:iam::123456789012:role/r",
                   "posixProfile": {"Uid": 1, "Gid": 2}}),
        ] {
            let user = with(extra.clone()).unwrap();
            let again = UserRecord::from_json(user.to_json()).unwrap();
            assert_eq!(again, user, "{extra}");
            assert_eq!(UserRecord::from_stored(user.to_stored()).unwrap(), user);
        }
    }

    #[test]
    fn the_attribute_names_are_the_stored_record_s_own() {
        let user = with(json!({"chroot": true, "expiresAt": 5, "allowedIps": ["10.0.0.0/8"], "allowedServers": ["s"],
            "protocols": ["SFTP"], "publicKeys": [KEY], "roleArn": "arn:aws:iam::123456789012:role/r",
            "posixProfile": {"Uid": 1, "Gid": 2}, "lastLoginAt": 7, "passwordChangedAt": 6, "enabledAt": 5,
            "disableAfterInactiveDays": 90, "passwordMaxAgeDays": 30})).unwrap();
        let json = user.to_json();
        for name in [
            attr::USERNAME,
            attr::PASSWORD_HASH,
            attr::SALT_VERSION,
            attr::BUCKET,
            attr::HOME,
            attr::IAM_POLICY_ARN,
            attr::ROLE_ARN,
            attr::CHROOT,
            attr::PUBLIC_KEYS,
            attr::ALLOWED_IPS,
            attr::ALLOWED_SERVERS,
            attr::PROTOCOLS,
            attr::POSIX_PROFILE,
            attr::STATUS,
            attr::EXPIRES_AT,
            attr::LAST_LOGIN_AT,
            attr::PASSWORD_CHANGED_AT,
            attr::ENABLED_AT,
            attr::DISABLE_AFTER_INACTIVE_DAYS,
            attr::PASSWORD_MAX_AGE_DAYS,
        ] {
            assert!(json.get(name).is_some(), "{name} is not a stored attribute");
        }
        let logical = with(json!({"homeDirectoryType": "LOGICAL", "homeDirectoryDetails": [{"Entry": "/", "Target": "/b/x"}]})).unwrap();
        for name in [attr::HOME_DIRECTORY_TYPE, attr::HOME_DIRECTORY_DETAILS] {
            assert!(
                logical.to_json().get(name).is_some(),
                "{name} is not a stored attribute"
            );
        }
    }

    #[test]
    fn keys_may_be_strings_or_maps_and_only_unexpired_ones_are_live() {
        let u = with(json!({"publicKeys": [KEY, {"key": KEY.replace("alice", "old"), "expiresAt": 100}, {"key": KEY.replace("alice", "new"), "expiresAt": 300}]})).unwrap();
        assert_eq!(u.public_keys.len(), 3);
        let live = u.live_keys(200);
        assert_eq!(live.len(), 2);
        assert!(live.iter().all(|k| !k.contains("old@")));
        assert_eq!(u.live_keys(300).len(), 1);
    }

    #[test]
    fn ip_lists_take_v4_and_v6_cidrs_and_bare_addresses() {
        let u = with(json!({"allowedIps": ["10.1.0.0/16", "2001:db8::/32", "192.0.2.7"]})).unwrap();
        for ok in ["10.1.200.3", "2001:db8::1", "192.0.2.7", "::ffff:10.1.0.9"] {
            assert!(u.ip_allowed(ok.parse().unwrap()), "{ok}");
        }
        for no in ["10.2.0.1", "2001:db9::1", "192.0.2.8", "::1"] {
            assert!(!u.ip_allowed(no.parse().unwrap()), "{no}");
        }
    }

    #[test]
    fn status_expiry_servers_and_protocols_are_read() {
        let u = with(json!({"status": "disabled", "expiresAt": 1000, "allowedServers": ["s-1"], "protocols": ["SFTP", "FTPS"]})).unwrap();
        assert_eq!(u.status, Status::Disabled);
        assert!(u.is_expired(1000) && !u.is_expired(999));
        assert!(u.server_allowed("s-1") && !u.server_allowed("s-2"));
        assert!(u.protocol_allowed(Protocol::Ftps) && !u.protocol_allowed(Protocol::Ftp));
    }

    #[test]
    fn debug_output_never_shows_the_hash() {
        let u = UserRecord::from_json(base()).unwrap();
        assert!(!format!("{u:?}").contains("argon2"));
    }
}
