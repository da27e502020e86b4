//! The front door's bounds: how many connections `ferry up` holds (in all and per source
//! address), how long a connection may take to log in, how long it may sit idle or unresponsive,
//! and an accept loop that outlives running out of file descriptors. Hitting a bound refuses one
//! connection (or one request) and never stops the server. Defaults follow Transfer Family where
//! it has a number and a careful operator's choice where it has none; `docs/local-stack.md`
//! lists them all.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::domain::source::SourceKey;
use russh::server::Server as _;
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::ssh::{Backend, Server};

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// Every bound a remote party meets, with its command-line flag.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Bounds {
    /// Most connections held at once, logged in or not
    #[arg(long, default_value_t = 512)]
    pub(crate) max_connections: usize,
    /// Most connections at once from one source address (IPv6: from one /64)
    #[arg(long, default_value_t = 16)]
    pub(crate) max_connections_per_source: usize,
    /// Seconds a connection has to log in before it is closed
    #[arg(long, default_value_t = 60)]
    pub(crate) login_grace_seconds: u64,
    /// Seconds without traffic before a connection is closed (Transfer Family: 1800)
    #[arg(long, default_value_t = 1800)]
    pub(crate) idle_timeout_seconds: u64,
    /// Seconds a client may leave the server's keepalives unanswered (Transfer Family: 300)
    #[arg(long, default_value_t = 300)]
    pub(crate) unresponsive_seconds: u64,
    /// SFTP sessions (channels) per connection (Transfer Family: 10)
    #[arg(long, default_value_t = 10)]
    pub(crate) max_channels: usize,
    /// Open file and folder handles per SFTP session
    #[arg(long, default_value_t = 64)]
    pub(crate) max_handles: usize,
    /// Largest file a client may write, in bytes
    #[arg(long, default_value_t = 50 * GIB)]
    pub(crate) max_file_bytes: u64,
    /// Largest gap one write may leave past what a file holds, in bytes
    #[arg(long, default_value_t = 64 * MIB)]
    pub(crate) max_write_gap_bytes: u64,
    /// Password checks at once, each holding 19 MiB (0: one per core)
    #[arg(long, default_value_t = 0)]
    pub(crate) parallel_password_checks: usize,
}

impl Bounds {
    /// Keepalives go out every `unresponsive / 5` seconds; five unanswered end the connection.
    pub(crate) fn keepalive(&self) -> (Duration, usize) {
        let every = (self.unresponsive_seconds / 5).max(1);
        (Duration::from_secs(every), 5)
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    SourceFull,
}

impl Refusal {
    fn code(self) -> &'static str {
        match self {
            Self::Full => "max_connections",
            Self::SourceFull => "max_connections_per_source",
        }
    }
}

/// The connection counts: in all, and per source as the defender groups them ([`SourceKey`]: an
/// IPv4 address, or the /64 an IPv6 address is in, since counting single v6 addresses would let
/// one host open millions).
#[derive(Debug)]
pub(crate) struct Gate {
    max_total: usize,
    max_per_source: usize,
    counts: Mutex<(usize, HashMap<SourceKey, usize>)>,
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    source: SourceKey,
}

impl Gate {
    pub(crate) fn new(max_total: usize, max_per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_source,
            counts: Mutex::new((0, HashMap::new())),
        })
    }

    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let source = SourceKey::of(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_source) = &mut *counts;
        if *total >= self.max_total {
            return Err(Refusal::Full);
        }
        let here = per_source.entry(source).or_insert(0);
        if *here >= self.max_per_source {
            return Err(Refusal::SourceFull);
        }
        *here += 1;
        *total += 1;
        Ok(Ticket {
            gate: Arc::clone(self),
            source,
        })
    }

    pub(crate) fn held(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.gate.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_source) = &mut *counts;
        *total = total.saturating_sub(1);
        if let Some(n) = per_source.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_source.remove(&self.source);
            }
        }
    }
}

/// How long to stop accepting after `accept` itself failed (out of descriptors, most often):
/// the waiting connection stays in the kernel's queue, and retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections for ever, each on its own task, within the bounds.
pub(crate) async fn accept_loop<B: Backend>(
    mut server: Server<B>,
    config: Arc<russh::server::Config>,
    listener: TcpListener,
    bounds: &Bounds,
) {
    let gate = Gate::new(bounds.max_connections, bounds.max_connections_per_source);
    let grace = Duration::from_secs(bounds.login_grace_seconds);
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ECONNABORTED…: refuse for a moment, never stop.
                warn!(target: "ferry::session", error = %e, held = gate.held(), "accept failed; pausing new connections");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let ticket = match gate.admit(peer.ip()) {
            Ok(t) => t,
            Err(refusal) => {
                info!(target: "ferry::session", source_ip = %peer.ip(), reason = refusal.code(), "REFUSED");
                drop(socket);
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let handler = server.new_client(Some(peer));
        let logged_in = handler.logged_in();
        let config = Arc::clone(&config);
        tokio::spawn(async move {
            serve_one(config, socket, handler, logged_in, grace, peer).await;
            drop(ticket);
        });
    }
}

/// One connection: closed if it has not logged in when the grace time is over.
async fn serve_one<H>(
    config: Arc<russh::server::Config>,
    socket: tokio::net::TcpStream,
    handler: H,
    logged_in: Arc<AtomicBool>,
    grace: Duration,
    peer: SocketAddr,
) where
    H: russh::server::Handler + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + grace;
    // The greeting and key exchange happen inside run_stream: a client that sends nothing is
    // held only until the deadline.
    let session = match tokio::time::timeout_at(
        deadline,
        russh::server::run_stream(config, socket, handler),
    )
    .await
    {
        Ok(Ok(session)) => session,
        Ok(Err(_)) => return,
        Err(_) => {
            info!(target: "ferry::session", source_ip = %peer.ip(), reason = "login_grace", "CLOSED");
            return;
        }
    };
    let handle = session.handle();
    tokio::pin!(session);
    tokio::select! {
        _ = &mut session => {}
        () = tokio::time::sleep_until(deadline) => {
            if logged_in.load(Ordering::Acquire) {
                let _ = (&mut session).await;
            } else {
                info!(target: "ferry::session", source_ip = %peer.ip(), reason = "login_grace", "CLOSED");
                let _ = handle
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        "login took too long".into(),
                        "en".into(),
                    )
                    .await;
                // The session ends on the disconnect; do not hold the place for ever if not.
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut session).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_in_all_and_per_source_and_given_back_on_drop() {
        let gate = Gate::new(3, 2);
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refusal::SourceFull);
        let _third = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).unwrap_err(), Refusal::Full);
        drop(first);
        assert_eq!(gate.held(), 2);
        assert!(gate.admit(a).is_ok(), "a place given back is free again");
    }

    #[test]
    fn ipv6_sources_are_grouped_by_their_64_and_mapped_v4_is_v4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other_host: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let gate = Gate::new(10, 1);
        let _held = gate.admit(one).unwrap();
        assert_eq!(gate.admit(other_host).unwrap_err(), Refusal::SourceFull);
        let _other = gate.admit(other_net).unwrap();
        let _v4 = gate.admit(v4).unwrap();
        assert_eq!(gate.admit(mapped).unwrap_err(), Refusal::SourceFull);
    }

    #[test]
    fn keepalives_add_up_to_the_unresponsive_timeout() {
        let b = Bounds {
            max_connections: 1,
            max_connections_per_source: 1,
            login_grace_seconds: 1,
            idle_timeout_seconds: 1,
            unresponsive_seconds: 300,
            max_channels: 1,
            max_handles: 1,
            max_file_bytes: 1,
            max_write_gap_bytes: 1,
            parallel_password_checks: 0,
        };
        let (every, count) = b.keepalive();
        assert_eq!(every * count as u32, Duration::from_secs(300));
    }
}
