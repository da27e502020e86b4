//! The LDAP and Active Directory identity source (cargo feature `ldap`): `crate::ports::IdentitySource`
//! over `ldap3`, TLS by rustls with certificate verification on (LDAPS, or StartTLS on an
//! `ldap://` URL; plain LDAP is refused by the configuration's parser).
//!
//! A login searches the user under the base DN with the service account, on a connection kept
//! across logins (a warm Lambda reuses it; it is made again after any error), reads the account
//! state and checks the groups with it, then binds as the user's DN on a connection of its own
//! (rebinding the shared one would race with other logins' searches). Every connection and every
//! operation has a timeout, and the login use case bounds the whole call again. No password is
//! ever logged: errors carry ldap3's messages, which quote result codes and the server's text,
//! never the credentials sent.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions, StdStream,
};
use tokio::sync::Mutex;
use tracing::{instrument, warn};

use crate::domain::directory::{
    AccountState, DirectoryConfig, DirectoryUser, GroupCheck, SecretRef, filter_escape,
};
use crate::domain::password::Password;
use crate::ports::{
    DirectoryAnswer, DirectoryFuture, DirectoryRefusal, DirectorySource, IdentitySource, StoreError,
};

/// LDAP result codes this adapter tells apart (RFC 4511 appendix A).
const SUCCESS: u32 = 0;
const SIZE_LIMIT_EXCEEDED: u32 = 4;
const INVALID_CREDENTIALS: u32 = 49;

/// Groups are followed upwards at most this many levels (a cycle, or a very deep tree, ends).
const MAX_GROUP_DEPTH: usize = 8;

/// Why a directory source could not be set up. Names the part, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum LdapSetupError {
    #[error("directory source {source_name}: the CA bundle holds no usable certificate")]
    NoCertificate { source_name: String },
    #[error("directory source {source_name}: the CA bundle cannot be read as PEM: {reason}")]
    BadCertificate { source_name: String, reason: String },
    #[error("directory source {source_name}: TLS set-up failed: {reason}")]
    Tls { source_name: String, reason: String },
    #[error("secret {what} cannot be read: {reason}")]
    Secret { what: String, reason: String },
}

/// One LDAP or Active Directory server.
pub struct LdapDirectory {
    config: DirectoryConfig,
    bind_password: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The service account's connection, bound, kept across logins.
    service: Mutex<Option<Ldap>>,
    /// Connections opened so far (service and user binds).
    opened: AtomicUsize,
}

impl fmt::Debug for LdapDirectory {
    // Hand-written so that the service account's password never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapDirectory")
            .field("source", &self.config.name)
            .field("url", &self.config.url)
            .field("base_dn", &self.config.base_dn)
            .finish_non_exhaustive()
    }
}

/// The user the search found: the entry's DN, its mapped attributes and its account state.
struct Found {
    user: DirectoryUser,
    state: Option<AccountState>,
    member_of: Vec<String>,
}

impl LdapDirectory {
    /// A source from its configuration, the service account's password (the secret's value:
    /// the whole string, or its `password` field when it is a JSON object) and the CA bundle
    /// (PEM; `None`: the system's roots). Connects lazily, at the first login.
    pub fn new(
        config: DirectoryConfig,
        bind_secret: &str,
        ca_pem: Option<&str>,
    ) -> Result<Self, LdapSetupError> {
        let tls = match ca_pem {
            Some(pem) => Some(Arc::new(client_config(&config, pem)?)),
            None => None,
        };
        Ok(Self {
            bind_password: password_of(bind_secret),
            config,
            tls,
            service: Mutex::new(None),
            opened: AtomicUsize::new(0),
        })
    }

    /// The source as the login use case takes it.
    pub fn into_source(self) -> DirectorySource {
        DirectorySource {
            name: self.config.name.clone(),
            default_profile: self.config.default_profile.clone(),
            deadline: self.config.deadline(),
            directory: Arc::new(self),
        }
    }

    /// How many connections this source has opened: one kept for the service account's
    /// searches (again after the server closed it), and one per password check.
    pub fn connections_opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    async fn connect(&self) -> Result<Ldap, LdapError> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        // Our own TCP connection, with Nagle's algorithm off: ldap3 leaves it on, and a bind's
        // small writes right after the TLS handshake then wait for the server's delayed ACK
        // (40 ms on Linux), which doubled a password login's time.
        let address = host_port(&self.config.url, self.config.starttls);
        let tcp = tokio::time::timeout(
            self.config.connect_timeout,
            tokio::net::TcpStream::connect(address),
        )
        .await
        .map_err(|_| LdapError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
        tcp.set_nodelay(true)?;
        let mut settings = LdapConnSettings::new()
            .set_std_stream(StdStream::Tcp(tcp.into_std()?))
            .set_conn_timeout(self.config.connect_timeout)
            .set_starttls(self.config.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(Arc::clone(tls));
        }
        if !self.config.tls_verify {
            settings = settings.set_no_tls_verify(true);
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.config.url).await?;
        let source = self.config.name.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                warn!(source = %source, error = %e, "directory connection ended");
            }
        });
        Ok(ldap)
    }

    /// The service account's connection: the kept one while it is open, else a new one, bound.
    /// `true` with it when it was kept from an earlier login.
    async fn service(&self) -> Result<(Ldap, bool), LdapError> {
        let mut slot = self.service.lock().await;
        if let Some(ldap) = slot.as_mut()
            && !ldap.is_closed()
        {
            return Ok((ldap.clone(), true));
        }
        *slot = None;
        let mut ldap = self.connect().await?;
        ldap.with_timeout(self.config.operation_timeout)
            .simple_bind(&self.config.bind_dn, &self.bind_password)
            .await?
            .success()?;
        *slot = Some(ldap.clone());
        Ok((ldap, false))
    }

    async fn forget_service(&self) {
        if let Some(mut ldap) = self.service.lock().await.take() {
            let _ = ldap.unbind().await;
        }
    }

    /// Searches the user and checks their state and groups with the service account. A kept
    /// connection that fails is dropped and the work done once more on a fresh one (a server
    /// that closed an idle connection is the common case after a warm Lambda's pause).
    async fn find_and_check(
        &self,
        username: &str,
    ) -> Result<Result<Found, DirectoryRefusal>, LdapError> {
        let (mut ldap, kept) = self.service().await?;
        match self.find_and_check_on(&mut ldap, username).await {
            Ok(found) => Ok(found),
            Err(e) => {
                self.forget_service().await;
                if !kept {
                    return Err(e);
                }
                let (mut ldap, _) = self.service().await?;
                let out = self.find_and_check_on(&mut ldap, username).await;
                if out.is_err() {
                    self.forget_service().await;
                }
                out
            }
        }
    }

    async fn find_and_check_on(
        &self,
        ldap: &mut Ldap,
        username: &str,
    ) -> Result<Result<Found, DirectoryRefusal>, LdapError> {
        let found = match self.find(ldap, username).await? {
            Ok(found) => found,
            Err(refusal) => return Ok(Err(refusal)),
        };
        match found.state {
            Some(AccountState::Disabled) => return Ok(Err(DirectoryRefusal::Disabled)),
            Some(AccountState::Locked) => return Ok(Err(DirectoryRefusal::Locked)),
            Some(AccountState::Active) | None => {}
        }
        if !self.in_allowed_group(ldap, &found).await? {
            return Ok(Err(DirectoryRefusal::NotInGroup));
        }
        Ok(Ok(found))
    }

    async fn find(
        &self,
        ldap: &mut Ldap,
        username: &str,
    ) -> Result<Result<Found, DirectoryRefusal>, LdapError> {
        let filter = self.config.user_search_filter(username);
        let mut attrs = self.config.attributes.requested();
        if self.config.group_check == GroupCheck::MemberOf {
            attrs.push("memberOf".to_owned());
        }
        if attrs.is_empty() {
            // RFC 4511: "1.1" asks for no attributes (an empty list would mean all of them).
            attrs.push("1.1".to_owned());
        }
        let result = ldap
            .with_timeout(self.config.operation_timeout)
            .with_search_options(SearchOptions::new().sizelimit(2))
            .search(&self.config.base_dn, Scope::Subtree, &filter, attrs)
            .await?;
        let ldap3::SearchResult(entries, outcome) = result;
        let entries: Vec<_> = entries.into_iter().filter(|e| !e.is_ref()).collect();
        if outcome.rc == SIZE_LIMIT_EXCEEDED || entries.len() > 1 {
            return Ok(Err(DirectoryRefusal::Ambiguous));
        }
        if outcome.rc != SUCCESS {
            outcome.success()?;
        }
        let Some(entry) = entries.into_iter().next() else {
            return Ok(Err(DirectoryRefusal::UnknownUser));
        };
        let entry = SearchEntry::construct(entry);
        let mut attrs: BTreeMap<String, Vec<String>> = entry.attrs.into_iter().collect();
        let map = &self.config.attributes;
        if !map.account_control.is_empty() {
            // Read again with a base search: AD computes msDS-User-Account-Control-Computed
            // (its only report of a lockout) for base searches alone.
            let ldap3::SearchResult(state, outcome) = ldap
                .with_timeout(self.config.operation_timeout)
                .search(
                    &entry.dn,
                    Scope::Base,
                    "(objectClass=*)",
                    map.account_control.clone(),
                )
                .await?;
            outcome.success()?;
            for found in state.into_iter().filter(|e| !e.is_ref()) {
                attrs.extend(SearchEntry::construct(found).attrs);
            }
        }
        let user = DirectoryUser::from_attributes(entry.dn, &attrs, map).map_err(unusable)?;
        // An account-control value that cannot be read is taken as disabled: never as active.
        let state =
            DirectoryUser::account_state(&attrs, map).unwrap_or(Some(AccountState::Disabled));
        let member_of = attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("memberOf"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Ok(Ok(Found {
            user,
            state,
            member_of,
        }))
    }

    async fn in_allowed_group(&self, ldap: &mut Ldap, found: &Found) -> Result<bool, LdapError> {
        let allowed: Vec<String> = self
            .config
            .allowed_groups
            .iter()
            .map(|g| normalise_dn(g))
            .collect();
        if allowed.is_empty() {
            return Ok(true);
        }
        let op = self.config.operation_timeout;
        match self.config.group_check {
            GroupCheck::MemberOf => Ok(found
                .member_of
                .iter()
                .any(|g| allowed.contains(&normalise_dn(g)))),
            GroupCheck::InChain => {
                let filter = self.config.in_chain_filter();
                let ldap3::SearchResult(entries, outcome) = ldap
                    .with_timeout(op)
                    .search(&found.user.dn, Scope::Base, &filter, vec!["1.1"])
                    .await?;
                outcome.success()?;
                Ok(entries.iter().any(|e| !e.is_ref()))
            }
            GroupCheck::MemberSearch => {
                let base = self
                    .config
                    .group_base_dn
                    .as_deref()
                    .unwrap_or(&self.config.base_dn);
                let mut seen: Vec<String> = Vec::new();
                let mut frontier = vec![found.user.dn.clone()];
                for _ in 0..MAX_GROUP_DEPTH {
                    if frontier.is_empty() {
                        break;
                    }
                    let clauses: String = frontier
                        .iter()
                        .map(|dn| format!("(member={})", filter_escape(dn)))
                        .collect();
                    let ldap3::SearchResult(entries, outcome) = ldap
                        .with_timeout(op)
                        .search(base, Scope::Subtree, &format!("(|{clauses})"), vec!["1.1"])
                        .await?;
                    outcome.success()?;
                    let mut next = Vec::new();
                    for entry in entries.into_iter().filter(|e| !e.is_ref()) {
                        let dn = SearchEntry::construct(entry).dn;
                        let key = normalise_dn(&dn);
                        if allowed.contains(&key) {
                            return Ok(true);
                        }
                        if !seen.contains(&key) {
                            seen.push(key);
                            next.push(dn);
                        }
                    }
                    frontier = next;
                }
                Ok(false)
            }
        }
    }

    /// Binds as `dn` with `password` on a connection of its own: `true` for a right password.
    async fn bind_as(&self, dn: &str, password: &Password) -> Result<bool, LdapError> {
        let mut ldap = self.connect().await?;
        let result = ldap
            .with_timeout(self.config.operation_timeout)
            .simple_bind(dn, password.expose())
            .await;
        let _ = ldap.unbind().await;
        let result = result?;
        match result.rc {
            SUCCESS => Ok(true),
            INVALID_CREDENTIALS => Ok(false),
            _ => result.success().map(|_| false),
        }
    }

    #[instrument(skip(self, password), fields(source = %self.config.name))]
    async fn verify(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<DirectoryAnswer, StoreError> {
        // RFC 4513 §5.1.2: a simple bind with an empty password is an unauthenticated bind, which
        // many servers answer with success. `Password` cannot be empty; this holds regardless.
        if password.expose().is_empty() {
            return Ok(DirectoryAnswer::Refused(DirectoryRefusal::WrongPassword));
        }
        let found = match self.find_and_check(username).await.map_err(unavailable)? {
            Ok(found) => found,
            Err(refusal) => return Ok(DirectoryAnswer::Refused(refusal)),
        };
        if self
            .bind_as(&found.user.dn, password)
            .await
            .map_err(unavailable)?
        {
            Ok(DirectoryAnswer::Verified(found.user))
        } else {
            Ok(DirectoryAnswer::Refused(DirectoryRefusal::WrongPassword))
        }
    }

    #[instrument(skip(self), fields(source = %self.config.name))]
    async fn look(&self, username: &str) -> Result<DirectoryAnswer, StoreError> {
        Ok(
            match self.find_and_check(username).await.map_err(unavailable)? {
                Ok(found) => DirectoryAnswer::Verified(found.user),
                Err(refusal) => DirectoryAnswer::Refused(refusal),
            },
        )
    }
}

impl IdentitySource for LdapDirectory {
    fn verify_password<'a>(
        &'a self,
        username: &'a str,
        password: &'a Password,
    ) -> DirectoryFuture<'a> {
        Box::pin(self.verify(username, password))
    }

    fn look_up<'a>(&'a self, username: &'a str) -> DirectoryFuture<'a> {
        Box::pin(self.look(username))
    }
}

fn unavailable(e: LdapError) -> StoreError {
    StoreError::Unavailable {
        what: "directory",
        source: Box::new(e),
    }
}

fn unusable(e: crate::domain::directory::AttributeError) -> LdapError {
    // Carried as an LDAP error so that it takes the same path (denied, logged) as any failure.
    LdapError::from(std::io::Error::other(e))
}

/// `host:port` of an `ldaps://` or `ldap://` URL (the configuration's parser admitted only
/// those), with the scheme's port when none is given.
fn host_port(url: &str, starttls: bool) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    // A port is a colon after the host (after the closing bracket of an IPv6 literal).
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    if authority[host_end..].contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:{}", if starttls { 389 } else { 636 })
    }
}

/// A DN as compared here: lowercase, without the spaces RFC 4514 allows around separators
/// (servers print the same group as `CN=Sftp, OU=Groups` and `cn=sftp,ou=groups`).
fn normalise_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// The password in a bind secret: the `password` field of a JSON object, else the whole value.
fn password_of(secret: &str) -> String {
    serde_json::from_str::<serde_json::Value>(secret)
        .ok()
        .and_then(|v| {
            v.get("password")
                .and_then(|p| p.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| secret.trim_end_matches(['\r', '\n']).to_owned())
}

/// A rustls client configuration that trusts exactly the CAs in `pem`.
fn client_config(
    config: &DirectoryConfig,
    pem: &str,
) -> Result<rustls::ClientConfig, LdapSetupError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let source_name = config.name.to_string();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| LdapSetupError::BadCertificate {
            source_name: source_name.clone(),
            reason: e.to_string(),
        })?;
        roots
            .add(cert)
            .map_err(|e| LdapSetupError::BadCertificate {
                source_name: source_name.clone(),
                reason: e.to_string(),
            })?;
    }
    if roots.is_empty() {
        return Err(LdapSetupError::NoCertificate { source_name });
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapSetupError::Tls {
            source_name,
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Reads a secret kept outside AWS (`file:` or `env:`); `Ok(None)` for a Secrets Manager ARN,
/// which the caller reads with its client.
pub fn read_local_secret(secret: &SecretRef) -> Result<Option<String>, LdapSetupError> {
    match secret {
        SecretRef::SecretsManager(_) => Ok(None),
        SecretRef::File(path) => {
            std::fs::read_to_string(path)
                .map(Some)
                .map_err(|e| LdapSetupError::Secret {
                    what: format!("file:{path}"),
                    reason: e.to_string(),
                })
        }
        SecretRef::Env(name) => std::env::var(name)
            .map(Some)
            .map_err(|e| LdapSetupError::Secret {
                what: format!("env:{name}"),
                reason: e.to_string(),
            }),
    }
}

/// Builds every source of a configuration whose secrets are all local (`ferry up`, `ferry
/// login`, the tests).
pub fn local_sources(
    configs: Vec<DirectoryConfig>,
) -> Result<Vec<DirectorySource>, LdapSetupError> {
    configs
        .into_iter()
        .map(|config| {
            let what = |r: &SecretRef| LdapSetupError::Secret {
                what: format!("{r:?}"),
                reason: "a Secrets Manager secret needs --aws".to_owned(),
            };
            let password = read_local_secret(&config.bind_password)?
                .ok_or_else(|| what(&config.bind_password))?;
            let ca = match &config.ca_bundle {
                Some(r) => Some(read_local_secret(r)?.ok_or_else(|| what(r))?),
                None => None,
            };
            Ok(LdapDirectory::new(config, &password, ca.as_deref())?.into_source())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_filter_escape_agrees_with_ldap3s() {
        for s in [
            "*",
            ")(uid=*",
            "a\0b",
            "back\\slash",
            "plain",
            "(x)",
            "jöns*",
        ] {
            assert_eq!(
                crate::domain::directory::filter_escape(s),
                ldap3::ldap_escape(s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_address_takes_the_schemes_port_when_the_url_has_none() {
        assert_eq!(host_port("ldaps://ldap.corp", false), "ldap.corp:636");
        assert_eq!(host_port("ldap://ldap.corp/", true), "ldap.corp:389");
        assert_eq!(host_port("ldaps://127.0.0.1:1636", false), "127.0.0.1:1636");
        assert_eq!(host_port("ldaps://[::1]", false), "[::1]:636");
        assert_eq!(host_port("ldaps://[::1]:1636/", false), "[::1]:1636");
    }

    #[test]
    fn dns_compare_without_case_or_spaces_around_separators() {
        assert_eq!(
            normalise_dn("CN=Sftp Users, OU=Groups , DC=corp"),
            "cn=sftp users,ou=groups,dc=corp"
        );
    }

    #[test]
    fn a_bind_secret_is_its_password_field_or_the_whole_value() {
        assert_eq!(
            password_of(r#"{"password":"s3cret","username":"svc"}"#),
            "s3cret"
        );
        assert_eq!(password_of("s3cret\n"), "s3cret");
    }
}
