//! The console's read-mostly pages: logins (the newest audit events, per user and per source,
//! and the defender's running locks with unban), uploads (the processor's newest notices and
//! the quarantine), and the salt keyring (versions, users per version, rotation).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use ferry_core::adapters::local::uploads::JsonLines;
use ferry_core::app::now_epoch;
use ferry_core::app::rotation::{Step, run_step};
use ferry_core::domain::dates::format_date;
use ferry_core::domain::defender::{DefenderKey, Standing};
use ferry_core::domain::source::SourceKey;
use ferry_core::domain::username::Username;
use ferry_core::ports::{FailureStore, SaltSource, SaltUsage, error_chain};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::handlers::{html, tail_json};
use super::views::{self, Flash, Nav, csrf};
use super::{Console, Operator, Wired, with_backend};
use crate::defender::{Lifts, lift};

/// Decisions listed one by one.
const RECENT: usize = 100;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn when(v: &Value) -> String {
    v.get("at")
        .and_then(Value::as_i64)
        .map_or_else(String::new, format_date)
}

/// Allowed and denied decisions of one user or source, and the newest.
#[derive(Debug, Default)]
struct Tally {
    allowed: usize,
    denied: usize,
    last: String,
    last_reason: String,
}

pub(crate) async fn logins(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
) -> Response {
    logins_page(&c, &op, Vec::new()).await
}

async fn logins_page(c: &Console, op: &Operator, mut flash: Vec<Flash>) -> Response {
    let events = tail_json(&c.data.join("audit.jsonl"));
    let decisions: Vec<&Value> = events
        .iter()
        .filter(|e| s(e, "detailType") == "ferry login")
        .filter_map(|e| e.get("detail"))
        .collect();
    let mut per_user: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut per_source: BTreeMap<&str, Tally> = BTreeMap::new();
    for d in &decisions {
        for (map, key) in [
            (&mut per_user, s(d, "username")),
            (&mut per_source, s(d, "sourceIp")),
        ] {
            if key.is_empty() {
                continue;
            }
            let t = map.entry(key).or_default();
            if s(d, "outcome") == "allow" {
                t.allowed += 1;
            } else {
                t.denied += 1;
            }
            // Newest first: the first seen is the latest.
            if t.last.is_empty() {
                t.last = when(d);
                t.last_reason = s(d, "reason").to_owned();
            }
        }
    }
    let locked = match &c.wired {
        Wired::Local { tallies, .. } => tallies.locked(now_epoch()).await,
        Wired::Aws { tallies, .. } => tallies.locked(now_epoch()).await,
    };
    let locked = locked.unwrap_or_else(|e| {
        flash.push(Flash::Error(format!(
            "The defender's locks could not be read: {}",
            error_chain(&e)
        )));
        Vec::new()
    });
    let now = now_epoch();
    let body = html! {
        h2 { "Locks now" }
        @if locked.is_empty() {
            p.empty { "No source is banned, no user throttled or slowed." }
        } @else {
            table.list {
                thead { tr { th { "Key" } th { "Standing" } th { "Until" } th { "Strikes" } th { span.sr { "Lift" } } } }
                tbody {
                    @for (key, t) in &locked {
                        tr {
                            td { code { (key.to_string()) } }
                            td { (Standing::of(key.kind(), Some(t), now).code()) }
                            td { (format_date(t.until)) }
                            td { (t.strikes) }
                            td { (lift_form(op, key)) }
                        }
                    }
                }
            }
        }
        h2 { "Recent decisions" }
        @if decisions.is_empty() {
            p.empty { "No login recorded yet (the audit events of ferry up, in audit.jsonl)." }
        } @else {
            table.list #decisions {
                thead { tr { th { "When" } th { "User" } th { "Source" } th { "Outcome" } th { "Reason" } th { "Flow" } } }
                tbody {
                    @for d in decisions.iter().take(RECENT) {
                        tr {
                            td { (when(d)) }
                            td { (s(d, "username")) }
                            td { (s(d, "sourceIp")) }
                            td { span class={ "badge " (s(d, "outcome")) } { (s(d, "outcome")) } }
                            td { code { (s(d, "reason")) } }
                            td { (s(d, "flow")) }
                        }
                    }
                }
            }
            div.columns {
                section { h2 { "Per user" } (tally_table("User", &per_user)) }
                section { h2 { "Per source" } (tally_table("Source", &per_source)) }
            }
        }
    };
    html(
        StatusCode::OK,
        views::page("Logins", Nav::Logins, Some(op), &flash, body),
    )
}

fn tally_table(what: &str, map: &BTreeMap<&str, Tally>) -> Markup {
    html! {
        table.list {
            thead { tr { th { (what) } th { "Allowed" } th { "Denied" } th { "Latest" } } }
            tbody {
                @for (k, t) in map {
                    tr { td { (k) } td { (t.allowed) } td { (t.denied) } td { (t.last) " " code { (t.last_reason) } } }
                }
            }
        }
    }
}

/// Unban for a source, unlock for a user (an account or one of their pairs).
fn lift_form(op: &Operator, key: &DefenderKey) -> Markup {
    let (what, label) = match key {
        DefenderKey::Source(src) => (format!("source:{src}"), "Unban source"),
        DefenderKey::Pair(user, _) | DefenderKey::Account(user) => {
            (format!("user:{}", user.as_str()), "Unlock user")
        }
    };
    html! {
        form method="post" action="/logins/unban" {
            (csrf(op))
            input type="hidden" name="what" value=(what);
            button.link type="submit" { (label) }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct UnbanForm {
    #[serde(default)]
    what: String,
}

/// Lifts a source's ban (with its pairs) or a user's slowdown (with theirs), as
/// `ferry defender unban|unlock` does, each lift an audit event.
pub(crate) async fn unban(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
    Form(f): Form<UnbanForm>,
) -> Response {
    let events = Lifts::File(JsonLines(c.data.join("audit.jsonl")));
    let now = now_epoch();
    let result = match f.what.split_once(':') {
        Some(("source", src)) => match SourceKey::parse(src) {
            Ok(source) => {
                let also =
                    move |k: &DefenderKey| matches!(k, DefenderKey::Pair(_, s) if *s == source);
                match &c.wired {
                    Wired::Local { tallies, .. } => {
                        lift(tallies, &events, now, DefenderKey::Source(source), also).await
                    }
                    Wired::Aws { tallies, .. } => {
                        lift(tallies, &events, now, DefenderKey::Source(source), also).await
                    }
                }
            }
            Err(e) => Err(anyhow::anyhow!("{e}")),
        },
        Some(("user", name)) => match Username::parse(name) {
            Ok(user) => {
                let u = user.clone();
                let also = move |k: &DefenderKey| matches!(k, DefenderKey::Pair(n, _) if *n == u);
                match &c.wired {
                    Wired::Local { tallies, .. } => {
                        lift(tallies, &events, now, DefenderKey::Account(user), also).await
                    }
                    Wired::Aws { tallies, .. } => {
                        lift(tallies, &events, now, DefenderKey::Account(user), also).await
                    }
                }
            }
            Err(e) => Err(anyhow::anyhow!("{e}")),
        },
        _ => Err(anyhow::anyhow!("nothing to lift")),
    };
    let (flash, outcome) = match result {
        Ok(n) => (Flash::Ok(format!("{n} lock(s) lifted.")), "ok".to_owned()),
        Err(e) => (Flash::Error(format!("Not lifted: {e:#}")), format!("{e:#}")),
    };
    c.audit(&op.name, "defender.lift", &f.what, &outcome).await;
    logins_page(&c, &op, vec![flash]).await
}

pub(crate) async fn uploads(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
) -> Response {
    let notices = tail_json(&c.data.join("notifications.jsonl"));
    let quarantined: Vec<&Value> = notices
        .iter()
        .filter(|n| s(n, "verdict") == "quarantined")
        .collect();
    let body = html! {
        h2 { "Quarantine" }
        @if quarantined.is_empty() {
            p.empty { "Nothing quarantined." }
        } @else {
            (notice_table(quarantined.iter().copied()))
        }
        h2 { "Recent notices" }
        @if notices.is_empty() {
            p.empty { "No upload processed yet (the notices of ferry up, in notifications.jsonl)." }
        } @else {
            (notice_table(notices.iter().take(RECENT)))
        }
    };
    html(
        StatusCode::OK,
        views::page("Uploads", Nav::Uploads, Some(&op), &[], body),
    )
}

fn notice_table<'a>(rows: impl Iterator<Item = &'a Value>) -> Markup {
    html! {
        table.list {
            thead { tr { th { "File" } th { "User" } th { "Verdict" } th { "Reason" } th { "Size" } th { "SHA-256" } th { "Now at" } } }
            tbody {
                @for n in rows {
                    tr {
                        td { code { (s(n, "sourceKey")) } }
                        td { (s(n, "user")) }
                        td { span class={ "badge " (s(n, "verdict")) } { (s(n, "verdict")) } }
                        td { (s(n, "reason")) }
                        td { (n.get("size").and_then(Value::as_u64).map_or_else(String::new, |b| b.to_string())) }
                        td { code.fp { (s(n, "sha256")) } }
                        td { code { (s(n, "destinationKey")) } }
                    }
                }
            }
        }
    }
}

pub(crate) async fn salt(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
) -> Response {
    salt_page(&c, &op, Vec::new()).await
}

async fn salt_page(c: &Console, op: &Operator, mut flash: Vec<Flash>) -> Response {
    let rows = with_backend!(&c.wired, b => {
        match b.salts.load_keyring().await {
            Ok(ring) => {
                let mut rows = Vec::new();
                for v in ring.versions() {
                    let users = b.users.count(v).await.map_or_else(|e| error_chain(&e), |n| n.to_string());
                    rows.push((v.to_owned(), v == ring.current_version(), users));
                }
                rows
            }
            Err(e) => {
                flash.push(Flash::Error(format!("The keyring could not be read: {}", error_chain(&e))));
                Vec::new()
            }
        }
    });
    let body = html! {
        p.hint { "Versions only: a salt's value is never shown." }
        table.list {
            thead { tr { th { "Version" } th { "Current" } th { "Users on it" } } }
            tbody {
                @for (v, current, users) in &rows {
                    tr { td { code { (v) } } td { @if *current { "current" } } td { (users) } }
                }
            }
        }
        form.card.narrow method="post" action="/salt/rotate" {
            (csrf(op))
            p { "A rotation makes a new current salt; users move to it at their next password login." }
            button.warn type="submit" { "Start a rotation" }
        }
    };
    html(
        StatusCode::OK,
        views::page("Salt", Nav::Salt, Some(op), &flash, body),
    )
}

/// Starts a rotation as `ferry salt rotate` does: the four steps here on the data folder,
/// RotateSecret on AWS.
pub(crate) async fn rotate(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
) -> Response {
    let result: anyhow::Result<String> = match &c.wired {
        Wired::Local {
            rotation, backend, ..
        } => {
            async {
                let token = super::random_token()?;
                rotation
                    .begin_rotation(&token)
                    .map_err(crate::backend::store)?;
                for step in [Step::Create, Step::Set, Step::Test, Step::Finish] {
                    run_step(rotation, &backend.users, step, &token)
                        .await
                        .map_err(|e| {
                            anyhow::anyhow!("{} failed: {}", step.as_str(), error_chain(&e))
                        })?;
                }
                let ring = rotation
                    .load_keyring()
                    .await
                    .map_err(crate::backend::store)?;
                Ok(format!(
                    "Salt rotated: version {} is current.",
                    ring.current_version()
                ))
            }
            .await
        }
        Wired::Aws {
            secrets: Some((client, id)),
            ..
        } => client
            .rotate_secret()
            .secret_id(id)
            .send()
            .await
            .map(|_| {
                "Rotation started: the salt-rotation function makes the new version current."
                    .to_owned()
            })
            .map_err(|e| anyhow::anyhow!("RotateSecret failed: {}", error_chain(&e))),
        Wired::Aws { secrets: None, .. } => Err(anyhow::anyhow!("no salt secret configured")),
    };
    let (flash, outcome) = match result {
        Ok(m) => (Flash::Ok(m), "ok".to_owned()),
        Err(e) => (Flash::Error(format!("{e:#}")), format!("{e:#}")),
    };
    c.audit(&op.name, "salt.rotate", "keyring", &outcome).await;
    salt_page(&c, &op, vec![flash]).await
}
