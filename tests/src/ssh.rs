//! An SSH client under a test's control (russh), for what OpenSSH's own client will not do:
//! hundreds of logins at once from one process, more channels than a server allows.

use std::sync::Arc;

use anyhow::Result;

/// Trusts any host key: the server is the test's own, on loopback.
#[derive(Debug, Clone, Copy)]
pub struct TrustingClient;

impl russh::client::Handler for TrustingClient {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// A new connection to 127.0.0.1:`port`.
pub async fn connect(port: u16) -> Result<russh::client::Handle<TrustingClient>> {
    let config = Arc::new(russh::client::Config::default());
    Ok(russh::client::connect(config, ("127.0.0.1", port), TrustingClient).await?)
}

/// A password login as `user` on a new connection: whether it was accepted, and the session.
pub async fn password_login(
    port: u16,
    user: &str,
    password: &str,
) -> Result<(bool, russh::client::Handle<TrustingClient>)> {
    let mut session = connect(port).await?;
    let ok = session
        .authenticate_password(user, password)
        .await?
        .success();
    Ok((ok, session))
}
