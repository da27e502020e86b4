//! `ferry console`: a web console for operators over the same stores and use cases as the CLI
//! (`app::admin` for users and keys, the defender's `FailureStore` for bans, the salt rotation
//! steps), served on loopback. Wiring only: this module builds the stores once and routes
//! requests; `security` guards them, `handlers` calls the use cases, `views` renders HTML.
//! `ferry up` serves it too, beside its SFTP port.

mod activity;
mod handlers;
mod security;
mod users;
mod views;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ferry_core::adapters::aws::defender::DynamoFailureStore;
use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
use ferry_core::adapters::aws::iam::IamPolicySource;
use ferry_core::adapters::aws::secretsmanager::SecretsManagerSaltSource;
use ferry_core::adapters::local::store::LocalStore;
use ferry_core::adapters::local::uploads::JsonLines;
use ferry_core::domain::audit::{AdminEvent, AuditEvent};
use ferry_core::ports::EventPublisher;

use crate::Target;
use crate::backend::{Backend, Salts, store};

pub(crate) use security::random_token;

/// Where the console listens.
#[derive(Debug, clap::Args)]
pub(crate) struct ConsoleArgs {
    /// Address to listen on (loopback unless you mean otherwise: the console changes users)
    #[arg(long, default_value = "127.0.0.1:8022")]
    listen: SocketAddr,
    /// With --aws: the folder of `ferry up`'s audit.jsonl and notifications.jsonl (the logins
    /// and uploads pages); with --local the data folder itself
    #[arg(long, default_value = ".ferry")]
    data: PathBuf,
    /// Serve users from AWS (--table, --salt-secret) instead of the data folder
    #[arg(long)]
    aws: bool,
    /// With --aws: the defender's DynamoDB table (bans are not shown without one)
    #[arg(long = "defender-table", env = "DEFENDER_TABLE")]
    defender_table: Option<String>,
}

/// The stores of one console, on either backend.
// One value per process, behind an Arc: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Wired {
    Local {
        backend: Backend<LocalStore, LocalStore, LocalStore>,
        tallies: LocalStore,
        rotation: LocalStore,
    },
    Aws {
        backend: Backend<DynamoUserStore, SecretsManagerSaltSource, IamPolicySource>,
        tallies: DynamoFailureStore,
        secrets: Option<(aws_sdk_secretsmanager::Client, String)>,
    },
}

/// Runs `$body` with `$b` bound to the backend, whichever it is (the use cases are generic over
/// the stores; axum's handlers are not).
macro_rules! with_backend {
    ($wired:expr, $b:ident => $body:expr) => {
        match $wired {
            $crate::console::Wired::Local { backend: $b, .. } => $body,
            $crate::console::Wired::Aws { backend: $b, .. } => $body,
        }
    };
}
pub(crate) use with_backend;

/// Everything a request needs.
pub(crate) struct Console {
    pub(crate) wired: Wired,
    sessions: security::Sessions,
    /// The data folder (audit events, upload notices).
    pub(crate) data: PathBuf,
    /// The `Host` headers accepted (on loopback: its own address and `localhost:PORT`; a page
    /// on another site that re-points its name at 127.0.0.1 sends its own name and is refused).
    /// Empty: any (bound to another address, the operator chose who may reach it).
    hosts: Vec<String>,
}

impl Console {
    /// Records an operator's change: an audit event in `audit.jsonl` and a log line.
    pub(crate) async fn audit(
        &self,
        operator: &str,
        action: &'static str,
        target: &str,
        outcome: &str,
    ) {
        let event = AdminEvent {
            action,
            target: target.to_owned(),
            operator: operator.to_owned(),
            outcome: outcome.to_owned(),
            at: ferry_core::app::now_epoch(),
        };
        tracing::info!(target: "ferry::console", operator, action, subject = target, outcome, "ADMIN_CHANGE");
        let file = JsonLines(self.data.join("audit.jsonl"));
        if let Err(e) = file.publish(&[AuditEvent::Admin(event)]).await {
            tracing::warn!(target: "ferry::console", error = %ferry_core::ports::error_chain(&e), "audit event not written");
        }
    }
}

/// `ferry console`: opens the stores, binds, prints the address and the sign-in token, serves.
pub(crate) async fn run(a: ConsoleArgs, target: Target) -> Result<std::process::ExitCode> {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .init();
    if a.aws && target.local.is_some() {
        anyhow::bail!("--aws and --local name different backends: choose one");
    }
    let (wired, data) = if a.aws {
        (
            aws(&target, a.defender_table.clone()).await?,
            a.data.clone(),
        )
    } else {
        let dir = target.local.clone().unwrap_or(a.data.clone());
        (local(&dir)?, dir)
    };
    let listener = bind(a.listen).await?;
    let started = start(listener, wired, data)?;
    started.await
}

/// The console over the data folder `dir` (four handles on the same SQLite file: each port
/// is its own value, as the use cases want them).
pub(crate) fn local(dir: &Path) -> Result<Wired> {
    let open = || LocalStore::open(dir).map_err(store);
    let backend = Backend {
        users: open()?,
        salts: Salts(Ok(open()?)),
        policies: open()?,
        verdicts: None,
        dynamodb: None,
        defaults: crate::backend::local_defaults(),
    };
    Ok(Wired::Local {
        backend,
        tallies: open()?,
        rotation: open()?,
    })
}

/// The console over AWS (or its emulators), as the CLI reaches it.
pub(crate) async fn aws(target: &Target, defender_table: Option<String>) -> Result<Wired> {
    let backend = crate::backend::aws(target).await?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let tallies = DynamoFailureStore::new(aws_sdk_dynamodb::Client::new(&sdk), defender_table);
    let secrets = target
        .salt_secret
        .clone()
        .map(|id| (aws_sdk_secretsmanager::Client::new(&sdk), id));
    Ok(Wired::Aws {
        backend,
        tallies,
        secrets,
    })
}

/// Binds `addr`, saying loudly when it is not loopback.
pub(crate) async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    if !addr.ip().is_loopback() {
        eprintln!(
            "ferry console: WARNING: listening on {addr}, which is NOT loopback. Anyone who can reach it and learns the token can change users; the traffic is plain HTTP. Put it behind TLS or bind 127.0.0.1."
        );
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} (console)"))
}

/// Prints the address and a fresh sign-in token, and returns the server to await.
pub(crate) fn start(
    listener: tokio::net::TcpListener,
    wired: Wired,
    data: PathBuf,
) -> Result<impl std::future::Future<Output = Result<std::process::ExitCode>>> {
    let token = random_token()?;
    let bound = listener.local_addr()?;
    eprintln!("ferry console: http://{bound}/ sign-in token {token}");
    let hosts = if bound.ip().is_loopback() {
        vec![bound.to_string(), format!("localhost:{}", bound.port())]
    } else {
        Vec::new()
    };
    let console = Arc::new(Console {
        wired,
        sessions: security::Sessions::new(token),
        data,
        hosts,
    });
    let app = router(console);
    Ok(async move {
        axum::serve(listener, app)
            .await
            .context("serving the console")?;
        Ok(std::process::ExitCode::SUCCESS)
    })
}

/// Every page and action, behind the guard.
fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/users") }))
        .route("/signin", get(handlers::signin_page).post(handlers::signin))
        .route("/signout", post(handlers::signout))
        .route("/style.css", get(handlers::stylesheet))
        // Browsers ask for it on every site; an empty answer keeps the logs free of 404s.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/users", get(users::users).post(users::add_user))
        .route("/users/new", get(users::new_user))
        .route("/users/{name}", get(users::user))
        .route("/users/{name}/edit", post(users::edit_user))
        .route("/users/{name}/status", post(users::set_status))
        .route(
            "/users/{name}/delete",
            get(users::confirm_delete).post(users::delete_user),
        )
        .route("/users/{name}/password", post(users::reset_password))
        .route("/users/{name}/keys", post(users::add_keys))
        .route("/users/{name}/keys/remove", post(users::remove_key))
        .route("/logins", get(activity::logins))
        .route("/logins/unban", post(activity::unban))
        .route("/uploads", get(activity::uploads))
        .route("/salt", get(activity::salt))
        .route("/salt/rotate", post(activity::rotate))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&console),
            guard,
        ))
        .layer(DefaultBodyLimit::max(security::MAX_BODY))
        .with_state(console)
}

/// The operator a guarded request runs as (put there by [`guard`]).
#[derive(Debug, Clone)]
pub(crate) struct Operator {
    pub(crate) name: String,
    pub(crate) csrf: String,
}

/// Every request passes here: the sign-in page and the stylesheet are open; anything else needs
/// a live session, and a POST also its CSRF token. Every answer gets the security headers and a
/// `Server-Timing` entry with the time spent serving it.
async fn guard(State(c): State<Arc<Console>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = admit(&c, req, next).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, security::CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        headers.insert("server-timing", v);
    }
    response
}

async fn admit(c: &Console, req: Request, next: Next) -> Response {
    if !c.hosts.is_empty() {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        if !host.is_some_and(|h| c.hosts.iter().any(|ok| ok == h)) {
            return (StatusCode::MISDIRECTED_REQUEST, "unexpected Host header").into_response();
        }
    }
    let path = req.uri().path();
    if matches!(path, "/signin" | "/style.css" | "/favicon.ico") {
        return next.run(req).await;
    }
    let session = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(security::session_cookie)
        .and_then(|id| c.sessions.get(id).map(|s| (id.to_owned(), s)));
    let Some((id, session)) = session else {
        if req.method() == Method::GET {
            return Redirect::to("/signin").into_response();
        }
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    let (mut parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, security::MAX_BODY).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response();
        };
        let carried = security::csrf_field(&bytes).unwrap_or_default();
        if !security::same_secret(&carried, &session.csrf) {
            tracing::warn!(target: "ferry::console", path = %parts.uri.path(), "CSRF_REFUSED");
            return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
        }
        Body::from(bytes)
    } else {
        body
    };
    parts.extensions.insert(Operator {
        name: session.operator,
        csrf: session.csrf,
    });
    parts.extensions.insert(SessionId(id));
    next.run(Request::from_parts(parts, body)).await
}

/// The session id of a guarded request (for signing out).
#[derive(Debug, Clone)]
pub(crate) struct SessionId(pub(crate) String);

impl Console {
    pub(crate) fn sessions(&self) -> &security::Sessions {
        &self.sessions
    }
}
