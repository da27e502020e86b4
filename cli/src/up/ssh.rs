//! The SSH side of `ferry up`: each login becomes the Transfer Family request the identity
//! provider gets (server `s-local`, protocol SFTP, the client's address) and the answer is obeyed.
//! Key logins follow sshd: the offered key must be among those returned, and russh checks the
//! client's signature before the login counts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ferry_core::app::login::{Authenticator, Decision};
use ferry_core::domain::access::{SessionPolicy, SessionVariables};
use ferry_core::domain::password::Password;
use ferry_core::domain::protocol::Protocol;
use ferry_core::domain::transfer::{AuthRequest, AuthResponse, Credential};
use ferry_core::domain::user::Mapping;
use ferry_core::domain::username::Username;
use ferry_core::ports::ObjectStore;
use ferry_core::ports::{FailureStore, NoLegacy, PolicySource, SaltSource, UserStore};
use russh::server::{Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use tracing::{info, warn};

use super::door::Bounds;
use super::sftp::{SessionContext, SetStat, Sftp};
use ferry_core::domain::sftp_path::Namespace;

/// The server id every local login reports.
pub(crate) const SERVER_ID: &str = "s-local";

static SESSIONS: AtomicU64 = AtomicU64::new(0);

/// The ports every part of the front door is generic over: where users, salts and policies come
/// from (`A`'s three) and where objects live (`O`).
pub(crate) trait Backend: Send + Sync + 'static {
    type Users: UserStore + 'static;
    type Salts: SaltSource + 'static;
    type Policies: PolicySource + 'static;
    type Objects: ObjectStore;
    type Defender: FailureStore + 'static;
}

impl<U, S, P, O, D> Backend for (U, S, P, O, D)
where
    U: UserStore + 'static,
    S: SaltSource + 'static,
    P: PolicySource + 'static,
    O: ObjectStore,
    D: FailureStore + 'static,
{
    type Users = U;
    type Salts = S;
    type Policies = P;
    type Objects = O;
    type Defender = D;
}

type Auth_<B> = Authenticator<
    <B as Backend>::Users,
    <B as Backend>::Salts,
    <B as Backend>::Policies,
    NoLegacy,
    <B as Backend>::Defender,
>;

pub(crate) struct Server<B: Backend> {
    pub(crate) auth: Arc<Auth_<B>>,
    pub(crate) objects: Arc<B::Objects>,
    /// Where uploads are spooled (`uploads/`) and set aside (`partial/`).
    pub(crate) data: Arc<std::path::Path>,
    pub(crate) on_upload: Option<super::sftp::UploadHook>,
    pub(crate) bounds: Arc<Bounds>,
    pub(crate) setstat: SetStat,
}

impl<B: Backend> Clone for Server<B> {
    fn clone(&self) -> Self {
        Self {
            auth: Arc::clone(&self.auth),
            objects: Arc::clone(&self.objects),
            data: Arc::clone(&self.data),
            on_upload: self.on_upload.clone(),
            bounds: Arc::clone(&self.bounds),
            setstat: self.setstat,
        }
    }
}

impl<B: Backend> russh::server::Server for Server<B> {
    type Handler = Connection<B>;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Connection<B> {
        let id = SESSIONS.fetch_add(1, Ordering::Relaxed) + 1;
        let ip = peer.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |p| p.ip());
        info!(target: "ferry::session", session = id, source_ip = %ip, "CONNECTED");
        Connection {
            id,
            ip,
            auth: Arc::clone(&self.auth),
            objects: Arc::clone(&self.objects),
            data: Arc::clone(&self.data),
            on_upload: self.on_upload.clone(),
            bounds: Arc::clone(&self.bounds),
            setstat: self.setstat,
            login: None,
            logged_in: Arc::new(AtomicBool::new(false)),
            channels: HashMap::new(),
            open_sessions: std::collections::HashSet::new(),
        }
    }
}

/// One SSH connection.
pub(crate) struct Connection<B: Backend> {
    id: u64,
    ip: IpAddr,
    auth: Arc<Auth_<B>>,
    objects: Arc<B::Objects>,
    data: Arc<std::path::Path>,
    on_upload: Option<super::sftp::UploadHook>,
    bounds: Arc<Bounds>,
    setstat: SetStat,
    login: Option<(Username, AuthResponse)>,
    /// Set at login, read by the front door's grace timer.
    logged_in: Arc<AtomicBool>,
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Session channels open on this connection (Transfer Family allows 10 at once).
    open_sessions: std::collections::HashSet<ChannelId>,
}

impl<B: Backend> Drop for Connection<B> {
    fn drop(&mut self) {
        let user = self.login.as_ref().map(|(u, _)| u.to_string());
        info!(target: "ferry::session", session = self.id, user = user.as_deref(), "DISCONNECTED");
    }
}

impl<B: Backend> Connection<B> {
    /// Whether this connection has logged in (shared with the front door's grace timer).
    pub(crate) fn logged_in(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.logged_in)
    }

    async fn decide(&self, user: &str, credential: Credential) -> Option<(Username, AuthResponse)> {
        let Ok(username) = Username::parse(user) else {
            info!(target: "ferry::session", session = self.id, reason = "bad_username", "AUTH_FAILURE");
            return None;
        };
        let request = AuthRequest {
            username: username.clone(),
            credential,
            protocol: Protocol::Sftp,
            server_id: SERVER_ID.into(),
            source_ip: self.ip,
        };
        let started = std::time::Instant::now();
        let decision = self.auth.authenticate(&request).await;
        self.auth
            .audit_decision(&request, &decision, started.elapsed());
        match decision {
            Decision::Allow(response) => Some((username, response)),
            Decision::Deny(reason) => {
                info!(target: "ferry::session", session = self.id, user = %username, reason = reason.code(), "AUTH_FAILURE");
                None
            }
        }
    }

    /// Whether `key` is among the live keys the identity provider returns for `user`.
    async fn key_allowed(
        &self,
        user: &str,
        key: &russh::keys::PublicKey,
    ) -> Option<(Username, AuthResponse)> {
        let (username, response) = self.decide(user, Credential::PublicKey).await?;
        let offered = key.to_openssh().ok()?;
        let listed = response
            .public_keys
            .as_deref()
            .is_some_and(|keys| ferry_core::domain::ssh_key::key_listed(keys, &offered));
        if listed {
            Some((username, response))
        } else {
            info!(target: "ferry::session", session = self.id, user = %username, reason = "key_not_listed", "AUTH_FAILURE");
            None
        }
    }

    /// Ends an authentication attempt: a login is kept for the session, anything else rejected.
    fn settle(&mut self, login: Option<(Username, AuthResponse)>, method: &'static str) -> Auth {
        match login {
            Some(login) => {
                info!(target: "ferry::session", session = self.id, user = %login.0, method, "AUTH_SUCCESS");
                self.login = Some(login);
                self.logged_in.store(true, Ordering::Release);
                Auth::Accept
            }
            None => Auth::reject(),
        }
    }

    /// Answers a channel request `ferry up` does not serve with a failure, and logs its kind.
    fn refuse(
        &self,
        channel: ChannelId,
        request: &'static str,
        session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        let user = self.login.as_ref().map(|(u, _)| u.to_string());
        info!(target: "ferry::session", session = self.id, user = user.as_deref(), request, "REFUSED");
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn context(&self) -> Option<SessionContext> {
        let (username, response) = self.login.as_ref()?;
        let (namespace, home, vars_home) = match response.home_directory_type {
            "LOGICAL" => {
                let mappings: Vec<Mapping> =
                    serde_json::from_str(response.home_directory_details.as_deref()?).ok()?;
                // Session variables come from the mapping of "/" (a chroot) or the first target.
                let target = mappings
                    .iter()
                    .find(|m| m.entry == "/")
                    .or(mappings.first())?
                    .target
                    .clone();
                (Namespace::Logical(mappings), "/".to_owned(), target)
            }
            _ => {
                let home = response.home_directory.clone()?;
                (Namespace::Path, home.clone(), home)
            }
        };
        let vars = SessionVariables::for_home(&vars_home, username.as_str());
        let policy = match session_policy(response, &vars) {
            Ok(p) => p,
            Err(why) => {
                warn!(target: "ferry::session", session = self.id, error = %why, "refusing the session");
                return None;
            }
        };
        // Like S3 "optimized directories": the home folders exist from the first login on.
        let targets: Vec<&str> = match &namespace {
            Namespace::Path => vec![home.as_str()],
            Namespace::Logical(m) => m
                .iter()
                .filter(|m| m.kind != Some(ferry_core::domain::user::MappingType::File))
                .map(|m| m.target.as_str())
                .collect(),
        };
        for target in targets {
            let rel = target.trim_matches('/');
            let (bucket, key) = rel.split_once('/').unwrap_or((rel, ""));
            if let Err(e) = self.objects.ensure_dir(bucket, key).await {
                // The session still starts; operations there answer for themselves.
                warn!(target: "ferry::session", session = self.id, bucket, key, error = %ferry_core::ports::error_chain(&e), "home folder not created");
            }
        }
        Some(SessionContext {
            id: self.id,
            username: username.to_string(),
            home,
            namespace,
            policy,
            uploads: self.data.join("uploads"),
            partial: self.data.join("partial"),
            limits: super::sftp::SessionLimits {
                max_handles: self.bounds.max_handles,
                max_file_bytes: self.bounds.max_file_bytes,
                max_write_gap_bytes: self.bounds.max_write_gap_bytes,
            },
            on_upload: self.on_upload.clone(),
            setstat: self.setstat,
        })
    }
}

/// The policy every operation of the session is checked against. Fail closed: an answer without
/// a policy starts no session (on AWS the role alone would then decide, and `ferry up` has no
/// role to consult), and neither does a policy the evaluator cannot read.
fn session_policy(
    response: &AuthResponse,
    vars: &SessionVariables,
) -> Result<SessionPolicy, String> {
    let text = response
        .policy
        .as_deref()
        .ok_or_else(|| "the answer carries no session policy".to_owned())?;
    SessionPolicy::parse(text, vars).map_err(|e| format!("session policy unusable: {e}"))
}

impl<B: Backend> russh::server::Handler for Connection<B> {
    type Error = anyhow::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let Ok(password) = Password::parse(password) else {
            return Ok(Auth::reject());
        };
        let login = self.decide(user, Credential::Password(password)).await;
        Ok(self.settle(login, "password"))
    }

    /// PuTTY-based clients (FileZilla, WinSCP) try keyboard-interactive before `password`: one
    /// prompt, and its answer is judged exactly as a password login is (the same checks, the
    /// same single verification).
    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(mut answers) = response else {
            return Ok(Auth::Partial {
                name: "".into(),
                instructions: "".into(),
                prompts: vec![("Password: ".into(), false)].into(),
            });
        };
        let password = answers
            .next()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .and_then(|text| Password::parse(text).ok());
        let Some(password) = password else {
            return Ok(Auth::reject());
        };
        let login = self.decide(user, Credential::Password(password)).await;
        Ok(self.settle(login, "keyboard-interactive"))
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(
            if self.key_allowed(user, offer.public_key).await.is_some() {
                Auth::Accept
            } else {
                Auth::reject()
            },
        )
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        // Asked again after the signature check: the user may have changed in between.
        let login = self.key_allowed(user, key.public_key).await;
        Ok(self.settle(login, "publickey"))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.open_sessions.len() >= self.bounds.max_channels {
            info!(target: "ferry::session", session = self.id, limit = self.bounds.max_channels, "CHANNEL_REFUSED");
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
            return Ok(());
        }
        self.open_sessions.insert(channel.id());
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.open_sessions.remove(&channel);
        self.channels.remove(&channel);
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.close(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name != "sftp" {
            // The name is the client's text: only its kind is logged. The channel stays open,
            // so the client may still ask for `sftp` on it.
            return self.refuse(channel_id, "subsystem", session);
        }
        let ctx = self.context().await;
        // The channel is taken only for a session that starts: a refused one stays usable.
        let channel = ctx
            .is_some()
            .then(|| self.channels.remove(&channel_id))
            .flatten();
        match (ctx, channel) {
            (Some(ctx), Some(channel)) => {
                session.channel_success(channel_id)?;
                russh_sftp::server::run(
                    channel.into_stream(),
                    Sftp::new(Arc::new(ctx), Arc::clone(&self.objects)),
                )
                .await;
            }
            _ => session.channel_failure(channel_id)?,
        }
        Ok(())
    }

    // Transfer Family has no shell: commands, shells and terminals are refused at once. Left to
    // russh's defaults they would go unanswered, and clients that probe for a shell (rclone runs
    // `md5sum` on connect) would wait forever.

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _command: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Never the command itself: it may carry secrets (`echo PASSWORD | …`).
        self.refuse(channel, "exec", session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(channel, "shell", session)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(channel, "pty", session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(policy: Option<&str>) -> AuthResponse {
        AuthResponse {
            role: "arn:aws:iam::000000000000:role/r".into(),
            policy: policy.map(str::to_owned),
            home_directory_type: "PATH",
            home_directory: Some("/b/alice".into()),
            home_directory_details: None,
            public_keys: None,
            posix_profile: None,
        }
    }

    #[test]
    fn an_answer_without_a_usable_policy_starts_no_session() {
        let vars = SessionVariables::for_home("/b/alice", "alice");
        assert_eq!(
            session_policy(&answer(None), &vars).err().as_deref(),
            Some("the answer carries no session policy")
        );
        assert!(session_policy(&answer(Some("not json")), &vars).is_err());
        let ok = ferry_core::domain::policy::CANONICAL_SCOPE_DOWN;
        assert!(session_policy(&answer(Some(ok)), &vars).is_ok());
    }
}
