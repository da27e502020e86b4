//! Directory identity sources (LDAP, Active Directory) as data: a source's configuration parsed
//! and checked once, the escaping that keeps a username a literal in a filter (RFC 4515) and in a
//! DN (RFC 4514), Active Directory's account-control bits, the attribute mapping, and the record
//! a source's default profile makes for a directory user who has none in the users table.
//!
//! Nothing here talks to a directory: `crate::ports::IdentitySource` is the seam and
//! `crate::adapters::ldap` the client. Secrets (the service account's password, the CA bundle)
//! are named here by reference ([`SecretRef`]), never held: a source's configuration may sit in a
//! file or an environment variable, its secrets may not.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::user::{PosixProfile, RecordError, StoredRecord, UserRecord};
use crate::domain::username::Username;

/// The placeholder a default profile's home template replaces with the username, as in Transfer
/// Family's own scope-down policies.
pub const USERNAME_PLACEHOLDER: &str = "${transfer:UserName}";

/// Active Directory's `userAccountControl` bit for a disabled account (`ACCOUNTDISABLE`).
pub const UAC_ACCOUNT_DISABLED: u32 = 0x2;
/// Active Directory's `userAccountControl` bit for a locked-out account (`LOCKOUT`).
pub const UAC_LOCKED_OUT: u32 = 0x10;

/// Active Directory's matching rule for "member of, through any depth of nesting"
/// (`LDAP_MATCHING_RULE_IN_CHAIN`).
pub const MATCHING_RULE_IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// Escapes a value for an LDAP search filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL become
/// `\2a`, `\28`, `\29`, `\5c`, `\00`, so that a username can only ever be a literal (`*` would be
/// a wildcard, `)(uid=*` a second clause).
pub fn filter_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value for one attribute value of a DN (RFC 4514 §2.4): `"`, `+`, `,`, `;`, `<`, `>`,
/// `\` (and `=`, which RFC 4514 allows escaped and some servers want) are backslash-escaped, NUL
/// becomes `\00`, and a leading `#` or space and a trailing space are escaped.
pub fn dn_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

/// What a `userAccountControl` value says about the account; `None` for anything that is not a
/// number (an account whose state cannot be read is not taken as active: the caller refuses).
pub fn account_control(value: &str) -> Option<AccountState> {
    account_control_bits(value).map(account_state_of)
}

/// The bits of an account-control value; `None` for anything that is not a number.
fn account_control_bits(value: &str) -> Option<u32> {
    // AD writes it as a signed 32-bit decimal; bits are what matter.
    value
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|v| u32::try_from(v & 0xFFFF_FFFF).ok())
}

fn account_state_of(bits: u32) -> AccountState {
    if bits & UAC_ACCOUNT_DISABLED != 0 {
        AccountState::Disabled
    } else if bits & UAC_LOCKED_OUT != 0 {
        AccountState::Locked
    } else {
        AccountState::Active
    }
}

/// An account's state in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Active,
    Disabled,
    Locked,
}

/// A source's name: what a user record's `identitySource` names. 1–64 of `[a-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceName(String);

impl SourceName {
    pub fn parse(raw: &str) -> Result<Self, DirectoryConfigError> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(bad("name must be 1 to 64 of a-z, 0-9, '-' and '_'"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a secret is: an AWS Secrets Manager ARN (the auth Lambda), or for `ferry up` and the
/// tests a file (`file:PATH`) or an environment variable (`env:NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    SecretsManager(String),
    File(String),
    Env(String),
}

impl SecretRef {
    pub fn parse(raw: &str) -> Result<Self, DirectoryConfigError> {
        if let Some(path) = raw.strip_prefix("file:").filter(|p| !p.is_empty()) {
            Ok(Self::File(path.to_owned()))
        } else if let Some(name) = raw.strip_prefix("env:").filter(|n| !n.is_empty()) {
            Ok(Self::Env(name.to_owned()))
        } else if raw.starts_with("arn:") && raw.contains(":secretsmanager:") {
            Ok(Self::SecretsManager(raw.to_owned()))
        } else {
            Err(bad(
                "a secret must be a Secrets Manager ARN, file:PATH or env:NAME",
            ))
        }
    }
}

/// How membership of the allowed groups is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupCheck {
    /// The user's `memberOf` values (Active Directory, or OpenLDAP with the memberof overlay):
    /// direct membership only.
    MemberOf,
    /// Active Directory's nested rule: a base search of the user with
    /// `(memberOf:1.2.840.113556.1.4.1941:=<group>)`.
    InChain,
    /// Walks `member` upwards from the user, group by group (nested groups on any server).
    MemberSearch,
}

/// Which directory attribute holds each mapped value (`None`: not mapped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeMap {
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub role: Option<String>,
    pub policy: Option<String>,
    /// A home prefix inside the profile's bucket (leading and trailing `/` dropped).
    pub home: Option<String>,
    pub public_keys: Option<String>,
    /// Attributes with Active Directory's account-control bits (disabled, locked out), one name
    /// or several, their bits taken together: AD keeps "disabled" in `userAccountControl` but
    /// reports a lockout only in the computed `msDS-User-Account-Control-Computed`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub account_control: Vec<String>,
}

/// One attribute name, or a list of them.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(name) => vec![name],
        OneOrMany::Many(names) => names,
    })
}

impl AttributeMap {
    /// Every attribute a user search asks for.
    pub fn requested(&self) -> Vec<String> {
        [
            &self.uid,
            &self.gid,
            &self.role,
            &self.policy,
            &self.home,
            &self.public_keys,
        ]
        .into_iter()
        .flatten()
        .chain(&self.account_control)
        .cloned()
        .collect()
    }
}

/// The profile a source gives its users who have no record in the users table. Without one, a
/// source serves only users whose record names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultProfile {
    pub bucket: String,
    /// The home prefix inside the bucket; `${transfer:UserName}` is replaced by the username.
    pub home: String,
    pub iam_policy_arn: String,
    #[serde(default)]
    pub role_arn: Option<String>,
    /// A chroot (one LOGICAL mapping of `/`), as a record's `chroot`.
    #[serde(default)]
    pub chroot: bool,
}

impl DefaultProfile {
    /// The home prefix for `username`.
    pub fn home_for(&self, username: &Username) -> String {
        self.home.replace(USERNAME_PLACEHOLDER, username.as_str())
    }
}

/// One directory source, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryConfig {
    pub name: SourceName,
    /// `ldaps://host:port` or `ldap://host:port` (then StartTLS is required).
    pub url: String,
    pub starttls: bool,
    /// The PEM bundle of the CAs the server's certificate must chain to; `None`: the system's.
    pub ca_bundle: Option<SecretRef>,
    /// Where users are searched (subtree).
    pub base_dn: String,
    /// The attribute a username is matched against (`uid`, `sAMAccountName`).
    pub user_attribute: String,
    /// A further filter every user must match, e.g. `(objectClass=person)`.
    pub user_filter: Option<String>,
    /// The service account that searches.
    pub bind_dn: String,
    /// Its password (the secret's whole value, or its `password` field when it is JSON).
    pub bind_password: SecretRef,
    /// Users must be in one of these groups (DNs); empty: no group restriction.
    pub allowed_groups: Vec<String>,
    pub group_check: GroupCheck,
    /// Where [`GroupCheck::MemberSearch`] looks for groups (default: the base DN).
    pub group_base_dn: Option<String>,
    pub attributes: AttributeMap,
    pub default_profile: Option<DefaultProfile>,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    /// Certificate verification; only `false` in a configuration that says so in so many words.
    pub tls_verify: bool,
}

impl DirectoryConfig {
    /// The longest a login may wait on this source: a connection for the search, the search, the
    /// group check and the user's bind on a second connection, each bounded.
    pub fn deadline(&self) -> Duration {
        self.connect_timeout * 2 + self.operation_timeout * 3
    }

    /// The filter that finds `username` (escaped) under the base DN.
    pub fn user_search_filter(&self, username: &str) -> String {
        let mine = format!("({}={})", self.user_attribute, filter_escape(username));
        match &self.user_filter {
            Some(extra) => format!("(&{mine}{extra})"),
            None => mine,
        }
    }

    /// Active Directory's nested-membership filter for the allowed groups.
    pub fn in_chain_filter(&self) -> String {
        let clauses: String = self
            .allowed_groups
            .iter()
            .map(|g| format!("(memberOf:{MATCHING_RULE_IN_CHAIN}:={})", filter_escape(g)))
            .collect();
        format!("(|{clauses})")
    }
}

/// The sources file (or `DIRECTORY_SOURCES` value): `{"sources": [ … ]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    sources: Vec<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSource {
    name: String,
    url: String,
    #[serde(default)]
    starttls: bool,
    #[serde(default)]
    ca_bundle: Option<String>,
    base_dn: String,
    #[serde(default)]
    user_attribute: Option<String>,
    #[serde(default)]
    user_filter: Option<String>,
    bind_dn: String,
    bind_password: String,
    #[serde(default)]
    allowed_groups: Vec<String>,
    #[serde(default)]
    group_check: Option<GroupCheck>,
    #[serde(default)]
    group_base_dn: Option<String>,
    #[serde(default)]
    attributes: AttributeMap,
    #[serde(default)]
    default_profile: Option<DefaultProfile>,
    #[serde(default)]
    connect_timeout_ms: Option<u64>,
    #[serde(default)]
    operation_timeout_ms: Option<u64>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

/// Why a sources configuration cannot be used. Names the field, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("directory source configuration is invalid: {0}")]
pub struct DirectoryConfigError(pub String);

fn bad(msg: impl Into<String>) -> DirectoryConfigError {
    DirectoryConfigError(msg.into())
}

/// Default timeouts: short, because a login waits for them and Transfer Family gives the
/// identity provider a few seconds in all.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);

/// Parses a sources document (JSON) and checks every source.
pub fn parse_sources(json: &str) -> Result<Vec<DirectoryConfig>, DirectoryConfigError> {
    // serde's messages name the field; they quote values only for enum variants.
    let raw: RawFile = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let mut out: Vec<DirectoryConfig> = Vec::with_capacity(raw.sources.len());
    for source in raw.sources {
        let config = check_source(source)?;
        if out.iter().any(|c| c.name == config.name) {
            return Err(bad(format!("source {} is named twice", config.name)));
        }
        out.push(config);
    }
    Ok(out)
}

fn check_source(raw: RawSource) -> Result<DirectoryConfig, DirectoryConfigError> {
    let name = SourceName::parse(&raw.name)?;
    let at = |msg: &str| bad(format!("source {name}: {msg}"));
    let starttls = match raw.url.split_once("://").map(|(s, _)| s) {
        Some("ldaps") if !raw.starttls => false,
        Some("ldaps") => return Err(at("starttls is for ldap:// URLs, not ldaps://")),
        // Plain LDAP would send every password in clear: StartTLS is required.
        Some("ldap") if raw.starttls => true,
        Some("ldap") => return Err(at("an ldap:// URL needs starttls: true")),
        _ => return Err(at("url must be ldaps://host[:port] or ldap://host[:port]")),
    };
    let host = raw.url.split_once("://").map_or("", |(_, r)| r);
    if host.is_empty() || host.starts_with(['/', ':', '?']) || host.contains(char::is_whitespace) {
        return Err(at("url must be ldaps://host[:port] or ldap://host[:port]"));
    }
    for (field, value) in [("baseDn", &raw.base_dn), ("bindDn", &raw.bind_dn)] {
        if !looks_like_dn(value) {
            return Err(at(&format!("{field} is not a DN")));
        }
    }
    if raw.allowed_groups.iter().any(|g| !looks_like_dn(g)) {
        return Err(at("allowedGroups holds something that is not a DN"));
    }
    let user_attribute = raw.user_attribute.unwrap_or_else(|| "uid".to_owned());
    if !is_attribute_name(&user_attribute) {
        return Err(at("userAttribute is not an attribute name"));
    }
    let mapped = raw.attributes.requested();
    if mapped.iter().any(|a| !is_attribute_name(a)) {
        return Err(at(
            "attributes holds something that is not an attribute name",
        ));
    }
    if let Some(filter) = &raw.user_filter
        && !balanced_filter(filter)
    {
        return Err(at("userFilter must be one parenthesised, balanced filter"));
    }
    if let Some(profile) = &raw.default_profile {
        check_profile(profile).map_err(|e| at(&e))?;
    }
    let ms = |v: Option<u64>, default: Duration| -> Result<Duration, DirectoryConfigError> {
        match v {
            None => Ok(default),
            Some(ms @ 1..=30_000) => Ok(Duration::from_millis(ms)),
            Some(_) => Err(at("timeouts must be 1 to 30000 ms")),
        }
    };
    Ok(DirectoryConfig {
        url: raw.url,
        starttls,
        ca_bundle: raw.ca_bundle.as_deref().map(SecretRef::parse).transpose()?,
        base_dn: raw.base_dn,
        user_attribute,
        user_filter: raw.user_filter,
        bind_dn: raw.bind_dn,
        bind_password: SecretRef::parse(&raw.bind_password)?,
        group_check: raw.group_check.unwrap_or(GroupCheck::MemberOf),
        allowed_groups: raw.allowed_groups,
        group_base_dn: raw.group_base_dn,
        attributes: raw.attributes,
        default_profile: raw.default_profile,
        connect_timeout: ms(raw.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT)?,
        operation_timeout: ms(raw.operation_timeout_ms, DEFAULT_OPERATION_TIMEOUT)?,
        tls_verify: !raw.insecure_skip_tls_verify,
        name,
    })
}

/// A default profile must make a valid record for any username: checked with a sample one, by
/// the same parser that judges stored records.
fn check_profile(profile: &DefaultProfile) -> Result<(), String> {
    let sample = Username::parse("sample-user").map_err(|e| e.to_string())?;
    profile_record(profile, &sample, None, &DirectoryUser::default())
        .map(|_| ())
        .map_err(|e| format!("defaultProfile: {e}"))
}

fn looks_like_dn(s: &str) -> bool {
    !s.is_empty() && s.contains('=') && !s.contains('\0')
}

fn is_attribute_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphabetic()
}

fn balanced_filter(f: &str) -> bool {
    let mut depth = 0i32;
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 || (depth == 0 && i != f.len() - 1) {
                    return false;
                }
            }
            _ if depth == 0 => return false,
            _ => {}
        }
    }
    depth == 0 && f.starts_with('(')
}

/// What a directory says about one user: the entry's DN and its mapped attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub role_arn: Option<String>,
    pub policy_arn: Option<String>,
    pub home: Option<String>,
    pub public_keys: Vec<String>,
}

/// Why a directory entry's attributes cannot be used. Names the attribute, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("directory attribute {0} is not usable")]
pub struct AttributeError(pub String);

impl DirectoryUser {
    /// Maps an entry's attributes (names matched without regard to case, as LDAP does).
    pub fn from_attributes(
        dn: String,
        attrs: &BTreeMap<String, Vec<String>>,
        map: &AttributeMap,
    ) -> Result<Self, AttributeError> {
        let get = |name: &Option<String>| -> Option<&Vec<String>> {
            let name = name.as_deref()?;
            attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let single = |name: &Option<String>| get(name).and_then(|v| v.first()).cloned();
        let number = |name: &Option<String>| -> Result<Option<u32>, AttributeError> {
            single(name)
                .map(|v| {
                    v.trim()
                        .parse::<u32>()
                        .map_err(|_| AttributeError(name.clone().unwrap_or_default()))
                })
                .transpose()
        };
        Ok(Self {
            dn,
            uid: number(&map.uid)?,
            gid: number(&map.gid)?,
            role_arn: single(&map.role),
            policy_arn: single(&map.policy),
            home: single(&map.home),
            public_keys: get(&map.public_keys)
                .map(|keys| keys.iter().map(|k| k.trim().to_owned()).collect())
                .unwrap_or_default(),
        })
    }

    /// The account state the account-control attributes give together, if any is mapped and
    /// present; `None` when none is (a server that keeps no such attribute for the entry).
    pub fn account_state(
        attrs: &BTreeMap<String, Vec<String>>,
        map: &AttributeMap,
    ) -> Result<Option<AccountState>, AttributeError> {
        let mut bits = None;
        for name in &map.account_control {
            let Some(value) = attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first())
            else {
                continue;
            };
            let these =
                account_control_bits(value).ok_or_else(|| AttributeError(name.to_owned()))?;
            bits = Some(bits.unwrap_or(0) | these);
        }
        Ok(bits.map(account_state_of))
    }
}

/// The record a source's default profile makes for a directory user with no record of their own:
/// the profile, with the directory's mapped role, policy, home and POSIX ids over it, judged by
/// the parser every stored record goes through. It names the source, holds no password and no
/// keys (the directory has them).
pub fn profile_record(
    profile: &DefaultProfile,
    username: &Username,
    source: Option<&SourceName>,
    user: &DirectoryUser,
) -> Result<UserRecord, RecordError> {
    let home = match &user.home {
        Some(h) => h.trim_matches('/').to_owned(),
        None => profile.home_for(username),
    };
    let posix_profile = match (user.uid, user.gid) {
        (Some(uid), Some(gid)) => Some(PosixProfile {
            uid,
            gid,
            secondary_gids: Vec::new(),
        }),
        _ => None,
    };
    let mut extra = BTreeMap::new();
    if let Some(source) = source {
        extra.insert(
            crate::domain::user::attr::IDENTITY_SOURCE.to_owned(),
            serde_json::Value::String(source.as_str().to_owned()),
        );
    }
    UserRecord::from_stored(StoredRecord {
        username: username.as_str().to_owned(),
        bucket: Some(profile.bucket.clone()),
        home: Some(home),
        iam_policy_arn: Some(
            user.policy_arn
                .clone()
                .unwrap_or_else(|| profile.iam_policy_arn.clone()),
        ),
        role_arn: user.role_arn.clone().or_else(|| profile.role_arn.clone()),
        chroot: profile.chroot.then_some(true),
        posix_profile,
        extra,
        ..StoredRecord::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_escaping_turns_every_rfc_4515_special_into_its_hex_pair() {
        assert_eq!(filter_escape("*"), "\\2a");
        assert_eq!(filter_escape(")(uid=*"), "\\29\\28uid=\\2a");
        assert_eq!(filter_escape("a\0b"), "a\\00b");
        assert_eq!(filter_escape("back\\slash"), "back\\5cslash");
        assert_eq!(filter_escape("plain.user@corp"), "plain.user@corp");
        // Non-ASCII is left as UTF-8, which RFC 4515 allows as is.
        assert_eq!(filter_escape("jöns"), "jöns");
    }

    #[test]
    fn dn_escaping_follows_rfc_4514() {
        assert_eq!(dn_escape("Doe, Jane"), "Doe\\, Jane");
        assert_eq!(
            dn_escape("a+b\"c<d>e;f\\g=h"),
            "a\\+b\\\"c\\<d\\>e\\;f\\\\g\\=h"
        );
        assert_eq!(dn_escape("#lead"), "\\#lead");
        assert_eq!(dn_escape(" both "), "\\ both\\ ");
        assert_eq!(dn_escape("mid#dle"), "mid#dle");
        assert_eq!(dn_escape("nul\0"), "nul\\00");
    }

    #[test]
    fn a_username_in_a_search_filter_is_always_one_literal_value() {
        let config = sample_config();
        assert_eq!(
            config.user_search_filter("alice"),
            "(&(uid=alice)(objectClass=person))"
        );
        assert_eq!(
            config.user_search_filter("*)(uid=*"),
            "(&(uid=\\2a\\29\\28uid=\\2a)(objectClass=person))"
        );
    }

    #[test]
    fn the_nested_group_filter_uses_the_in_chain_rule_with_escaped_group_dns() {
        let mut config = sample_config();
        config.allowed_groups = vec!["CN=sftp (ext),OU=Groups,DC=corp".into()];
        assert_eq!(
            config.in_chain_filter(),
            "(|(memberOf:1.2.840.113556.1.4.1941:=CN=sftp \\28ext\\29,OU=Groups,DC=corp))"
        );
    }

    #[test]
    fn account_control_bit_2_is_disabled_and_bit_16_locked() {
        assert_eq!(account_control("512"), Some(AccountState::Active));
        assert_eq!(account_control("514"), Some(AccountState::Disabled));
        assert_eq!(account_control("528"), Some(AccountState::Locked));
        assert_eq!(account_control("530"), Some(AccountState::Disabled));
        // AD may print the value signed.
        assert_eq!(account_control("-2147483646"), Some(AccountState::Disabled));
        assert_eq!(account_control("lots"), None);
        assert_eq!(account_control(""), None);
    }

    #[test]
    fn the_home_template_takes_the_username() {
        let profile = sample_profile();
        let user = Username::parse("Alice").unwrap();
        assert_eq!(profile.home_for(&user), "home/alice");
    }

    #[test]
    fn a_profile_record_takes_the_directory_attributes_over_the_profile() {
        let profile = sample_profile();
        let user = Username::parse("alice").unwrap();
        let name = SourceName::parse("corp").unwrap();
        let plain =
            profile_record(&profile, &user, Some(&name), &DirectoryUser::default()).unwrap();
        assert_eq!(plain.home_prefix, "home/alice");
        assert_eq!(plain.policy_arn, "arn:aws:iam::123456789012:policy/sftp");
        assert_eq!(plain.posix_profile, None);
        assert_eq!(plain.identity_source(), Some("corp"));
        let mapped = DirectoryUser {
            dn: "uid=alice,dc=x".into(),
            uid: Some(7),
            gid: Some(8),
            role_arn: Some("arn:aws:iam::123456789012:role/other".into()),
            policy_arn: Some("arn:aws:iam::123456789012:policy/other".into()),
            home: Some("/elsewhere/alice/".into()),
            public_keys: vec![],
        };
        let record = profile_record(&profile, &user, Some(&name), &mapped).unwrap();
        assert_eq!(record.home_prefix, "elsewhere/alice");
        assert_eq!(record.policy_arn, "arn:aws:iam::123456789012:policy/other");
        assert_eq!(
            record.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/other")
        );
        assert_eq!(record.posix_profile.map(|p| (p.uid, p.gid)), Some((7, 8)));
    }

    #[test]
    fn a_directory_attribute_that_breaks_the_record_rules_is_refused() {
        let profile = sample_profile();
        let user = Username::parse("alice").unwrap();
        let bad_policy = DirectoryUser {
            policy_arn: Some("not-an-arn".into()),
            ..DirectoryUser::default()
        };
        assert!(profile_record(&profile, &user, None, &bad_policy).is_err());
        let escape = DirectoryUser {
            home: Some("../other".into()),
            ..DirectoryUser::default()
        };
        assert!(profile_record(&profile, &user, None, &escape).is_err());
    }

    #[test]
    fn attributes_are_mapped_without_regard_to_case() {
        let map = AttributeMap {
            uid: Some("uidNumber".into()),
            gid: Some("gidNumber".into()),
            public_keys: Some("sshPublicKey".into()),
            account_control: vec!["userAccountControl".into()],
            ..AttributeMap::default()
        };
        let attrs: BTreeMap<String, Vec<String>> = [
            ("uidnumber".to_owned(), vec!["2001".to_owned()]),
            ("GIDNUMBER".to_owned(), vec!["3001".to_owned()]),
            (
                "sshPublicKey".to_owned(),
                vec![" ssh-ed25519 AAAA x ".to_owned()],
            ),
            ("userAccountControl".to_owned(), vec!["514".to_owned()]),
        ]
        .into();
        let user = DirectoryUser::from_attributes("uid=a".into(), &attrs, &map).unwrap();
        assert_eq!((user.uid, user.gid), (Some(2001), Some(3001)));
        assert_eq!(user.public_keys, vec!["ssh-ed25519 AAAA x"]);
        assert_eq!(
            DirectoryUser::account_state(&attrs, &map),
            Ok(Some(AccountState::Disabled))
        );
        let broken: BTreeMap<String, Vec<String>> =
            [("uidNumber".to_owned(), vec!["-1".to_owned()])].into();
        assert_eq!(
            DirectoryUser::from_attributes("uid=a".into(), &broken, &map),
            Err(AttributeError("uidNumber".into()))
        );
    }

    #[test]
    fn account_control_bits_of_several_attributes_are_taken_together() {
        let map: AttributeMap = serde_json::from_str(
            r#"{"accountControl": ["userAccountControl", "msDS-User-Account-Control-Computed"]}"#,
        )
        .unwrap();
        let state = |uac: &str, computed: Option<&str>| {
            let mut attrs: BTreeMap<String, Vec<String>> =
                [("userAccountControl".to_owned(), vec![uac.to_owned()])].into();
            if let Some(c) = computed {
                attrs.insert(
                    "msDS-User-Account-Control-Computed".into(),
                    vec![c.to_owned()],
                );
            }
            DirectoryUser::account_state(&attrs, &map)
        };
        assert_eq!(state("512", Some("0")), Ok(Some(AccountState::Active)));
        // AD reports a lockout only in the computed attribute.
        assert_eq!(state("512", Some("16")), Ok(Some(AccountState::Locked)));
        assert_eq!(state("514", Some("16")), Ok(Some(AccountState::Disabled)));
        assert_eq!(state("512", None), Ok(Some(AccountState::Active)));
        assert_eq!(
            state("512", Some("x")),
            Err(AttributeError("msDS-User-Account-Control-Computed".into()))
        );
        let one: AttributeMap =
            serde_json::from_str(r#"{"accountControl": "userAccountControl"}"#).unwrap();
        assert_eq!(one.account_control, vec!["userAccountControl"]);
        assert_eq!(
            AttributeMap::default().account_control,
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_sources_file_is_parsed_and_checked() {
        let sources = parse_sources(&sample()).unwrap();
        assert_eq!(sources.len(), 1);
        let s = &sources[0];
        assert_eq!(s.name.as_str(), "corp");
        assert!(!s.starttls && s.tls_verify);
        assert_eq!(s.group_check, GroupCheck::MemberSearch);
        assert_eq!(
            s.bind_password,
            SecretRef::SecretsManager(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:ldap-bind".into()
            )
        );
        assert_eq!(
            s.ca_bundle,
            Some(SecretRef::File("/etc/ferry/ca.pem".into()))
        );
        assert_eq!(s.operation_timeout, Duration::from_millis(800));
        assert_eq!(s.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    }

    #[test]
    fn each_bad_sources_file_names_its_fault() {
        let cases: [(&str, &str, &str); 10] = [
            ("\"name\": \"corp\"", "\"name\": \"Corp!\"", "name must be"),
            ("ldaps://ldap.corp.example", "http://x", "url must be"),
            ("ldaps://ldap.corp.example", "ldaps://", "url must be"),
            (
                "ldaps://ldap.corp.example",
                "ldap://ldap.corp.example",
                "needs starttls",
            ),
            (
                "\"baseDn\": \"ou=people,dc=corp\"",
                "\"baseDn\": \"people\"",
                "baseDn is not a DN",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:ldap-bind",
                "hunter2",
                "a secret must be",
            ),
            (
                "\"userFilter\": \"(objectClass=person)\"",
                "\"userFilter\": \"(a=b))(c=d\"",
                "userFilter",
            ),
            (
                "\"operationTimeoutMs\": 800",
                "\"operationTimeoutMs\": 0",
                "timeouts",
            ),
            (
                "arn:aws:iam::123456789012:policy/sftp",
                "nope",
                "defaultProfile",
            ),
            (
                "\"uid\": \"uidNumber\"",
                "\"uid\": \"uid Number\"",
                "attribute name",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(sample().contains(from), "{from}");
            let err = parse_sources(&sample().replace(from, to)).unwrap_err();
            assert!(err.to_string().contains(expected), "{to}: {err}");
            // Never the bad value itself (a mistyped secret stays out of logs).
            assert!(!err.to_string().contains("hunter2"));
        }
        let twice = format!("{{\"sources\": [{0}, {0}]}}", SAMPLE_SOURCE);
        assert!(
            parse_sources(&twice)
                .unwrap_err()
                .to_string()
                .contains("named twice")
        );
    }

    const SAMPLE_SOURCE: &str = r#"{
        "name": "corp",
        "url": "ldaps://ldap.corp.example",
        "caBundle": "file:/etc/ferry/ca.pem",
        "baseDn": "ou=people,dc=corp",
        "userFilter": "(objectClass=person)",
        "bindDn": "cn=svc,dc=corp",
        "bindPassword": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ldap-bind",
        "allowedGroups": ["cn=sftp,ou=groups,dc=corp"],
        "groupCheck": "memberSearch",
        "attributes": {"uid": "uidNumber", "gid": "gidNumber", "publicKeys": "sshPublicKey"},
        "defaultProfile": {
            "bucket": "transfer-bucket",
            "home": "home/${transfer:UserName}",
            "iamPolicyArn": "arn:aws:iam::123456789012:policy/sftp"
        },
        "operationTimeoutMs": 800
    }"#;

    fn sample() -> String {
        format!("{{\"sources\": [{SAMPLE_SOURCE}]}}")
    }

    fn sample_profile() -> DefaultProfile {
        DefaultProfile {
            bucket: "transfer-bucket".into(),
            home: "home/${transfer:UserName}".into(),
            iam_policy_arn: "arn:aws:iam::123456789012:policy/sftp".into(),
            role_arn: None,
            chroot: false,
        }
    }

    fn sample_config() -> DirectoryConfig {
        parse_sources(&sample()).unwrap().remove(0)
    }
}
