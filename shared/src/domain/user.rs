//! A user record: the data model of `docs/data-model.md`, parsed once into types the
//! authenticator can trust.
//!
//! Stores hand over a record as plain JSON (the DynamoDB adapter converts attribute values first),
//! so one parser serves every backend and is tested without any service.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

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

/// A list attribute that may arrive as a list or (for strings) a set; both become arrays in JSON.
#[derive(Deserialize)]
#[serde(untagged)]
enum KeyEntry {
    Plain(String),
    WithExpiry {
        key: String,
        #[serde(rename = "expiresAt", default)]
        expires_at: Option<i64>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    username: String,
    password_hash: Option<String>,
    salt_version: Option<String>,
    bucket: Option<String>,
    home: Option<String>,
    iam_policy_arn: Option<String>,
    role_arn: Option<String>,
    home_directory_type: Option<String>,
    home_directory_details: Option<Vec<Mapping>>,
    chroot: Option<bool>,
    #[serde(default)]
    public_keys: Vec<KeyEntry>,
    #[serde(default)]
    allowed_ips: Vec<String>,
    #[serde(default)]
    allowed_servers: Vec<String>,
    #[serde(default)]
    protocols: Vec<String>,
    posix_profile: Option<PosixProfile>,
    status: Option<Status>,
    expires_at: Option<i64>,
}

impl UserRecord {
    /// Parses a record given as a JSON object of its attributes (see the module docs).
    pub fn from_json(value: serde_json::Value) -> Result<Self, RecordError> {
        // serde's messages name the field and expected type; they quote values only for enum
        // variants (status, Type), which hold no secrets.
        let raw: Raw = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
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
        if !policy_arn.starts_with("arn:") || !policy_arn.contains(":policy/") {
            return Err(bad("iamPolicyArn is not an IAM policy ARN"));
        }
        if let Some(role) = &raw.role_arn
            && (!role.starts_with("arn:") || !role.contains(":role/"))
        {
            return Err(bad("roleArn is not an IAM role ARN"));
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
        })
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

    #[test]
    fn contradictory_or_unsafe_home_settings_are_refused() {
        for extra in [
            json!({"homeDirectoryType": "LOGICAL"}),
            json!({"homeDirectoryType": "PATH", "chroot": true}),
            json!({"homeDirectoryType": "PATH", "homeDirectoryDetails": [{"Entry": "/", "Target": "/b/x"}]}),
            json!({"homeDirectoryType": "WEIRD"}),
            json!({"chroot": true, "homeDirectoryType": "LOGICAL", "homeDirectoryDetails": [{"Entry": "/", "Target": "/b/x"}]}),
            json!({"homeDirectoryType": "LOGICAL", "homeDirectoryDetails": []}),
            json!({"homeDirectoryType": "LOGICAL", "homeDirectoryDetails": [{"Entry": "/", "Target": "/b/../etc"}]}),
            json!({"homeDirectoryType": "LOGICAL", "homeDirectoryDetails": [{"Entry": "x", "Target": "/b"}]}),
            json!({"home": "a/../../b"}),
            json!({"home": "a//b"}),
            json!({"bucket": "Bad_Bucket"}),
            json!({"home": "x".repeat(1100)}),
        ] {
            assert!(with(extra.clone()).is_err(), "{extra}");
        }
    }

    #[test]
    fn required_attributes_and_their_types_are_checked() {
        for field in ["bucket", "home", "iamPolicyArn", "username"] {
            let mut v = base();
            v.as_object_mut().unwrap().remove(field);
            assert!(UserRecord::from_json(v).is_err(), "missing {field}");
        }
        assert!(with(json!({"saltVersion": null})).is_err());
        assert!(with(json!({"iamPolicyArn": "not-an-arn"})).is_err());
        assert!(with(json!({"roleArn": "arn:aws:iam::1:user/x"})).is_err());
        assert!(with(json!({"username": "Alice"})).is_err());
        assert!(with(json!({"expiresAt": "tomorrow"})).is_err());
        assert!(with(json!({"status": "banned"})).is_err());
        assert!(with(json!({"allowedIps": ["10.0.0.0/33"]})).is_err());
        assert!(with(json!({"protocols": ["SCP"]})).is_err());
        assert!(with(json!({"publicKeys": ["not a key"]})).is_err());
        assert!(UserRecord::from_json(json!([1, 2])).is_err());
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
