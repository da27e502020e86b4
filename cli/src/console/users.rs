//! The console's users and keys: search and paging over the store's sorted, prefix-filtered
//! listing, and every change through `app::admin` (so the record parser judges it, as it judges
//! the CLI's), followed by the policy validator's verdict on what was stored. Never shows a
//! hash, a salt, or a password other than the one just generated.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ferry_core::app::admin::{AdminError, Changes, KeyRef, PasswordChange};
use ferry_core::app::verdicts::judge_record;
use ferry_core::domain::dates;
use ferry_core::domain::password::{Password, generate_password};
use ferry_core::domain::policy_checks::RecordRules;
use ferry_core::domain::ssh_key::fingerprint;
use ferry_core::domain::user::{KeyEntry, Status, attr};
use ferry_core::domain::username::Username;
use ferry_core::ports::{PolicySource, SaltSource, UserAdmin, UserStore, error_chain};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::handlers::html;
use super::views::{self, Flash, Nav, csrf};
use super::{Console, Operator, with_backend};
use crate::backend::Backend;

/// Users per page.
const PAGE: usize = 50;

/// A value inside a link's query string.
fn query_value(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: Option<String>,
}

/// `/users?q=PREFIX&after=NAME`: one page of users whose names start with the prefix.
pub(crate) async fn users(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
    Query(q): Query<ListQuery>,
) -> Response {
    // Names are stored lowercase; a prefix longer than any name finds nothing anyway.
    let prefix: String = q.q.trim().to_ascii_lowercase().chars().take(100).collect();
    let after = q.after.filter(|a| !a.is_empty());
    let page = with_backend!(&c.wired, b => b.users.find_users(&prefix, after.clone(), PAGE).await);
    let (rows, next, flash) = match page {
        Ok(p) => (p.users, p.next, Vec::new()),
        Err(e) => (
            Vec::new(),
            None,
            vec![Flash::Error(format!(
                "The users could not be read: {}",
                error_chain(&e)
            ))],
        ),
    };
    let body = html! {
        div.toolbar {
            form.search method="get" action="/users" role="search" {
                label for="q" { "Username starts with" }
                input #q type="search" name="q" value=(prefix) maxlength="100";
                button type="submit" { "Search" }
            }
            a.button href="/users/new" { "Add user" }
        }
        @if rows.is_empty() {
            p.empty { "No users" @if !prefix.is_empty() { " starting with " code { (prefix) } } "." }
        } @else {
            table.list {
                thead { tr { th { "Username" } th { "Status" } th { "Password" } th { "Keys" } th { "Last login" } th { "Home" } } }
                tbody {
                    @for u in &rows {
                        @if let Value::Object(m) = u { (user_row(m)) }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if after.is_some() {
                a href={ "/users?q=" (query_value(&prefix)) } { "First page" }
            }
            @if let Some(n) = &next {
                a href={ "/users?q=" (query_value(&prefix)) "&after=" (query_value(n)) } rel="next" { "Next page" }
            }
        }
    };
    html(
        StatusCode::OK,
        views::page("Users", Nav::Users, Some(&op), &flash, body),
    )
}

fn text<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

fn date_of(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_i64).map(dates::format_date)
}

fn status_of(m: &Map<String, Value>) -> &str {
    // No status attribute reads as active, as the record parser reads it.
    match text(m, attr::STATUS) {
        "" => Status::Active.as_str(),
        s => s,
    }
}

fn user_row(m: &Map<String, Value>) -> Markup {
    let name = text(m, attr::USERNAME);
    let keys = m
        .get(attr::PUBLIC_KEYS)
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    html! {
        tr {
            td { a href={ "/users/" (name) } { (name) } }
            td { span class={ "badge " (status_of(m)) } { (status_of(m)) } }
            td { @if m.contains_key(attr::PASSWORD_HASH) { "set" } @else { "none" } }
            td { (keys) }
            td { (date_of(m, attr::LAST_LOGIN_AT).unwrap_or_else(|| "never".into())) }
            td { code { "/" (text(m, attr::BUCKET)) "/" (text(m, attr::HOME).trim_matches('/')) } }
        }
    }
}

/// The attributes an operator types, for adding and editing.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct UserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    home: String,
    #[serde(default)]
    policy_arn: String,
    #[serde(default)]
    role_arn: String,
    #[serde(default)]
    chroot: Option<String>,
    #[serde(default)]
    allowed_ips: String,
    #[serde(default)]
    servers: String,
    #[serde(default)]
    protocols: String,
    #[serde(default)]
    expires: String,
    /// `generate` (a password, shown once) or `keys` (keys only).
    #[serde(default)]
    credential: String,
    #[serde(default)]
    keys: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A list as typed: separated by commas, spaces or new lines.
fn list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// OpenSSH public keys, one a line; a line that is no key is refused by its number.
fn keys_of(text: &str) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if fingerprint(line).is_none() || line.split_ascii_whitespace().count() < 2 {
            return Err(format!("line {} is not an OpenSSH public key", i + 1));
        }
        keys.push(line.to_owned());
    }
    Ok(keys)
}

fn changes_of(f: &UserForm, edit: bool) -> Result<Changes, String> {
    let expires_at = match opt(&f.expires) {
        Some(d) => Some(dates::parse_date(&d).map_err(|e| format!("expiry: {e}"))?),
        None => None,
    };
    Ok(Changes {
        bucket: opt(&f.bucket),
        home: opt(&f.home),
        policy_arn: opt(&f.policy_arn),
        role_arn: opt(&f.role_arn),
        // A form sends a checkbox only when it is ticked: on an edit, absent means off.
        chroot: if edit {
            Some(f.chroot.is_some())
        } else {
            f.chroot.is_some().then_some(true)
        },
        keys: if edit { Vec::new() } else { keys_of(&f.keys)? },
        allowed_ips: list(&f.allowed_ips),
        servers: list(&f.servers),
        protocols: list(&f.protocols),
        expires_at,
        disable_after_inactive_days: None,
        password_max_age_days: None,
        // The edit form shows every list as stored: an emptied field means none.
        replace_lists: edit,
    })
}

fn refusal(e: &AdminError) -> String {
    match e {
        AdminError::Store(s) => error_chain(s),
        other => other.to_string(),
    }
}

pub(crate) async fn new_user(Extension(op): Extension<Operator>) -> Response {
    html(
        StatusCode::OK,
        new_user_page(&op, &UserForm::default(), &[]),
    )
}

fn new_user_page(op: &Operator, f: &UserForm, flash: &[Flash]) -> Markup {
    let keys_only = f.credential == "keys";
    let body = html! {
        form.card method="post" action="/users" {
            (csrf(op))
            label for="username" { "Username" }
            input #username type="text" name="username" value=(f.username) required minlength="3" maxlength="100" pattern="[A-Za-z0-9_@.\\-]+" autofocus;
            (attribute_fields(f))
            fieldset {
                legend { "Credential" }
                label.inline { input type="radio" name="credential" value="generate" checked[!keys_only]; " Generate a password (shown once)" }
                label.inline { input type="radio" name="credential" value="keys" checked[keys_only]; " Keys only" }
            }
            label for="keys" { "Public keys (OpenSSH, one a line; optional with a password)" }
            textarea #keys name="keys" rows="3" { (f.keys) }
            button type="submit" { "Add user" }
        }
    };
    views::page("Add user", Nav::Users, Some(op), flash, body)
}

/// The fields adding and editing share.
fn attribute_fields(f: &UserForm) -> Markup {
    html! {
        div.grid {
            div { label for="bucket" { "Bucket" } input #bucket type="text" name="bucket" value=(f.bucket) placeholder="default"; }
            div { label for="home" { "Home (prefix in the bucket)" } input #home type="text" name="home" value=(f.home); }
            div { label for="policy_arn" { "Scope-down policy ARN" } input #policy_arn type="text" name="policy_arn" value=(f.policy_arn) placeholder="default"; }
            div { label for="role_arn" { "Role ARN" } input #role_arn type="text" name="role_arn" value=(f.role_arn) placeholder="the auth function's default"; }
            div { label for="allowed_ips" { "Allowed sources (addresses or CIDRs)" } input #allowed_ips type="text" name="allowed_ips" value=(f.allowed_ips) placeholder="any"; }
            div { label for="servers" { "Allowed server ids" } input #servers type="text" name="servers" value=(f.servers) placeholder="any"; }
            div { label for="protocols" { "Protocols (SFTP, FTPS, FTP)" } input #protocols type="text" name="protocols" value=(f.protocols) placeholder="any"; }
            div { label for="expires" { "Account expiry (YYYY-MM-DD or RFC 3339)" } input #expires type="text" name="expires" value=(f.expires); }
        }
        label.inline { input type="checkbox" name="chroot" checked[f.chroot.is_some()]; " Lock the user into their home (chroot)" }
    }
}

/// `POST /users`: adds a user; a generated password is shown on the answer and nowhere else.
pub(crate) async fn add_user(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
    Form(f): Form<UserForm>,
) -> Response {
    let refuse = |why: String| {
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            new_user_page(&op, &f, &[Flash::Error(why)]),
        )
    };
    let username = match Username::parse(f.username.trim()) {
        Ok(u) => u,
        Err(e) => return refuse(e.to_string()),
    };
    let changes = match changes_of(&f, false) {
        Ok(ch) => ch,
        Err(why) => return refuse(why),
    };
    let generated = (f.credential != "keys").then(generate_password);
    let password = match &generated {
        Some(p) => match Password::parse(p.clone()) {
            Ok(p) => PasswordChange::Set(p),
            Err(e) => return refuse(e.to_string()),
        },
        None => PasswordChange::Remove,
    };
    let written =
        with_backend!(&c.wired, b => b.admin().add(&username, changes, password, false).await);
    if let Err(e) = written {
        c.audit(&op.name, "user.add", username.as_str(), &refusal(&e))
            .await;
        return refuse(refusal(&e));
    }
    c.audit(&op.name, "user.add", username.as_str(), "ok").await;
    let mut flash = vec![Flash::Ok(format!("User {username} created."))];
    if let Some(p) = &generated {
        flash.push(Flash::Ok(format!(
            "Password (shown once, copy it now): {p}"
        )));
    }
    user_page(&c, &op, &username, flash, generated.as_deref()).await
}

/// `/users/NAME`: the record (no hash), the validator's verdict, the forms that change it.
pub(crate) async fn user(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
    UserInPath(username): UserInPath,
) -> Response {
    user_page(&c, &op, &username, Vec::new(), None).await
}

async fn user_page(
    c: &Console,
    op: &Operator,
    username: &Username,
    flash: Vec<Flash>,
    generated: Option<&str>,
) -> Response {
    let logins = recent_logins(&c.data, username.as_str());
    with_backend!(&c.wired, b => render_user(b, op, username, flash, generated, logins).await)
}

/// Decisions about one user listed on their page.
const USER_LOGINS: usize = 10;

/// The newest login decisions about `name` in the data folder's audit events.
fn recent_logins(data: &std::path::Path, name: &str) -> Markup {
    let events = super::handlers::tail_json(&data.join("audit.jsonl"));
    let mine: Vec<&Value> = events
        .iter()
        .filter(|e| e.get("detailType").and_then(Value::as_str) == Some("ferry login"))
        .filter_map(|e| e.get("detail"))
        .filter(|d| d.get("username").and_then(Value::as_str) == Some(name))
        .take(USER_LOGINS)
        .collect();
    let s = |d: &Value, k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    html! {
        @if mine.is_empty() {
            p.empty { "No login recorded." }
        } @else {
            table.list {
                thead { tr { th { "When" } th { "Source" } th { "Outcome" } th { "Reason" } th { "Flow" } } }
                tbody {
                    @for d in &mine {
                        tr {
                            td { (d.get("at").and_then(Value::as_i64).map_or_else(String::new, dates::format_date)) }
                            td { (s(d, "sourceIp")) }
                            td { span class={ "badge " (s(d, "outcome")) } { (s(d, "outcome")) } }
                            td { code { (s(d, "reason")) } }
                            td { (s(d, "flow")) }
                        }
                    }
                }
            }
            p { a href="/logins" { "All logins and locks" } }
        }
    }
}

async fn render_user<U, S, P>(
    b: &Backend<U, S, P>,
    op: &Operator,
    username: &Username,
    mut flash: Vec<Flash>,
    generated: Option<&str>,
    logins: Markup,
) -> Response
where
    U: UserAdmin + UserStore,
    S: SaltSource,
    P: PolicySource,
{
    let raw = match b.users.get_raw(username).await {
        Ok(Some(Value::Object(m))) => m,
        Ok(_) => {
            return html(
                StatusCode::NOT_FOUND,
                views::message(
                    "No such user",
                    Some(op),
                    &format!("There is no user {username}."),
                ),
            );
        }
        Err(e) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                views::message("Store unavailable", Some(op), &error_chain(&e)),
            );
        }
    };
    let verdict = match judge_record(
        Value::Object(raw.clone()),
        &b.policies,
        &RecordRules::default(),
    )
    .await
    {
        Ok(Ok(())) => Flash::Ok("Validator: the record passes every check.".into()),
        Ok(Err(reason)) => Flash::Error(format!("Validator: {reason}")),
        Err(e) => Flash::Error(format!("Validator could not run: {}", error_chain(&e))),
    };
    flash.push(verdict);
    let name = username.as_str();
    let keys: Vec<KeyEntry> = raw
        .get(attr::PUBLIC_KEYS)
        .and_then(Value::as_array)
        .map(|ks| {
            ks.iter()
                .map(|k| {
                    serde_json::from_value(k.clone())
                        .unwrap_or_else(|_| KeyEntry::new(String::new(), None))
                })
                .collect()
        })
        .unwrap_or_default();
    let joined = |k: &str| {
        raw.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let form = UserForm {
        bucket: text(&raw, attr::BUCKET).to_owned(),
        home: text(&raw, attr::HOME).to_owned(),
        policy_arn: text(&raw, attr::IAM_POLICY_ARN).to_owned(),
        role_arn: text(&raw, attr::ROLE_ARN).to_owned(),
        chroot: (raw.get(attr::CHROOT) == Some(&Value::Bool(true))).then(|| "on".to_owned()),
        allowed_ips: joined(attr::ALLOWED_IPS),
        servers: joined(attr::ALLOWED_SERVERS),
        protocols: joined(attr::PROTOCOLS),
        expires: date_of(&raw, attr::EXPIRES_AT).unwrap_or_default(),
        ..UserForm::default()
    };
    let status = status_of(&raw).to_owned();
    let body = html! {
        @if let Some(p) = generated {
            div.card.secret {
                label for="generated-password" { "Generated password for " (name) " (shown once)" }
                output #generated-password { (p) }
            }
        }
        dl.facts {
            dt { "Status" } dd { span class={ "badge " (status) } { (status) } @if let Some(r) = raw.get(attr::STATUS_REASON).and_then(Value::as_str) { " " small { (r) } } }
            dt { "Password" } dd { @if raw.contains_key(attr::PASSWORD_HASH) { "set" } @else { "none (keys only)" } }
            dt { "Salt version" } dd { (text(&raw, attr::SALT_VERSION)) }
            dt { "Last login" } dd { (date_of(&raw, attr::LAST_LOGIN_AT).unwrap_or_else(|| "never".into())) }
            dt { "Password set" } dd { (date_of(&raw, attr::PASSWORD_CHANGED_AT).unwrap_or_else(|| "-".into())) }
        }
        div.actions {
            form method="post" action={ "/users/" (name) "/status" } {
                (csrf(op))
                @if status == Status::Disabled.as_str() {
                    input type="hidden" name="to" value="enable";
                    button type="submit" { "Enable" }
                } @else {
                    input type="hidden" name="to" value="disable";
                    button.warn type="submit" { "Disable" }
                }
            }
            form method="post" action={ "/users/" (name) "/password" } {
                (csrf(op))
                button type="submit" { "Reset password" }
            }
            a.button.danger href={ "/users/" (name) "/delete" } { "Delete…" }
        }
        h2 { "Recent logins" }
        (logins)
        h2 { "Public keys" }
        @if keys.is_empty() {
            p.empty { "No keys." }
        } @else {
            table.list {
                thead { tr { th { "#" } th { "Type" } th { "Fingerprint" } th { "Comment" } th { "Expires" } th { span.sr { "Remove" } } } }
                tbody {
                    @for (i, k) in keys.iter().enumerate() {
                        @let fp = fingerprint(k.key()).unwrap_or_else(|| "(unreadable key)".into());
                        tr {
                            td { (i + 1) }
                            td { (k.key().split_ascii_whitespace().next().unwrap_or("?")) }
                            td { code.fp { (fp) } }
                            td { (k.key().split_ascii_whitespace().nth(2).unwrap_or("")) }
                            td { (k.expires_at().map_or_else(|| "never".into(), dates::format_date)) }
                            td {
                                form method="post" action={ "/users/" (name) "/keys/remove" } {
                                    (csrf(op))
                                    input type="hidden" name="number" value=(i + 1);
                                    button.link type="submit" aria-label={ "Remove key " (i + 1) } { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form.card method="post" action={ "/users/" (name) "/keys" } {
            (csrf(op))
            label for="newkeys" { "Add public keys (OpenSSH, one a line)" }
            textarea #newkeys name="keys" rows="3" required {}
            label for="keyexpires" { "Expiry of these keys (optional, YYYY-MM-DD)" }
            input #keyexpires type="text" name="expires";
            button type="submit" { "Add keys" }
        }
        h2 { "Attributes" }
        form.card method="post" action={ "/users/" (name) "/edit" } {
            (csrf(op))
            p.hint { "An empty bucket, home, policy, role or expiry keeps what is stored; an empty list (sources, servers, protocols) means any." }
            (attribute_fields(&form))
            button type="submit" { "Save" }
        }
    };
    html(
        StatusCode::OK,
        views::page(name, Nav::Users, Some(op), &flash, body),
    )
}

/// The username in a path, or the answer that says it is not one.
/// The username of a `/users/{name}/…` path, parsed before the handler runs: a name that
/// cannot be a username is the "no such user" page, whatever the handler.
pub(crate) struct UserInPath(Username);

impl<S: Send + Sync> FromRequestParts<S> for UserInPath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Username::parse(&name).map(Self).map_err(|_| {
            let op = parts.extensions.get::<Operator>();
            html(
                StatusCode::NOT_FOUND,
                views::message("No such user", op, "That is not a username."),
            )
        })
    }
}

/// Writes the audit event of a change, then shows the user with how it went.
async fn after(
    c: &Console,
    op: &Operator,
    username: &Username,
    action: &'static str,
    result: Result<String, AdminError>,
) -> Response {
    let flash = match &result {
        Ok(m) => Flash::Ok(m.clone()),
        Err(e) => Flash::Error(refusal(e)),
    };
    let outcome = result.as_ref().map_or_else(refusal, |_| "ok".to_owned());
    c.audit(&op.name, action, username.as_str(), &outcome).await;
    user_page(c, op, username, vec![flash], None).await
}

pub(crate) async fn edit_user(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
    UserInPath(username): UserInPath,
    Form(f): Form<UserForm>,
) -> Response {
    let changes = match changes_of(&f, true) {
        Ok(ch) => ch,
        Err(why) => return user_page(&c, &op, &username, vec![Flash::Error(why)], None).await,
    };
    let result = with_backend!(&c.wired, b => b.admin().add(&username, changes, PasswordChange::Keep, true).await);
    after(
        &c,
        &op,
        &username,
        "user.update",
        result.map(|_| "Saved.".to_owned()),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    to: String,
}

pub(crate) async fn set_status(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
    UserInPath(username): UserInPath,
    Form(f): Form<StatusForm>,
) -> Response {
    if f.to == "enable" {
        let result = with_backend!(&c.wired, b => b.admin().enable(&username, &b.policies, &RecordRules::default()).await);
        after(
            &c,
            &op,
            &username,
            "user.enable",
            result.map(|()| "Enabled.".to_owned()),
        )
        .await
    } else {
        let result =
            with_backend!(&c.wired, b => b.admin().set_status(&username, Status::Disabled).await);
        after(
            &c,
            &op,
            &username,
            "user.disable",
            result.map(|()| "Disabled: every login is refused from now on.".to_owned()),
        )
        .await
    }
}

pub(crate) async fn reset_password(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
    UserInPath(username): UserInPath,
) -> Response {
    let generated = generate_password();
    let result = match Password::parse(generated.clone()) {
        Ok(p) => with_backend!(&c.wired, b => b.admin().set_password(&username, &p).await),
        Err(e) => Err(AdminError::Unreadable {
            user: username.clone(),
            reason: e.to_string(),
        }),
    };
    match result {
        Ok(()) => {
            c.audit(&op.name, "user.password", username.as_str(), "ok")
                .await;
            let flash = vec![Flash::Ok("Password reset.".into())];
            user_page(&c, &op, &username, flash, Some(&generated)).await
        }
        Err(e) => after(&c, &op, &username, "user.password", Err(e)).await,
    }
}

pub(crate) async fn confirm_delete(
    Extension(op): Extension<Operator>,
    UserInPath(username): UserInPath,
) -> Response {
    let body = html! {
        form.card.narrow method="post" action={ "/users/" (username.as_str()) "/delete" } {
            (csrf(&op))
            p { "Delete " strong { (username.as_str()) } "? Their record goes; their files stay in the bucket." }
            button.danger type="submit" { "Delete " (username.as_str()) }
            " "
            a href={ "/users/" (username.as_str()) } { "Cancel" }
        }
    };
    html(
        StatusCode::OK,
        views::page("Delete user", Nav::Users, Some(&op), &[], body),
    )
}

pub(crate) async fn delete_user(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
    UserInPath(username): UserInPath,
) -> Response {
    let result = with_backend!(&c.wired, b => b.admin().remove(&username).await);
    let outcome = result.as_ref().map_or_else(refusal, |()| "ok".to_owned());
    c.audit(&op.name, "user.delete", username.as_str(), &outcome)
        .await;
    let text = match result {
        Ok(()) => format!("User {username} deleted."),
        Err(e) => format!("Not deleted: {}", refusal(&e)),
    };
    html(
        StatusCode::OK,
        views::message("Delete user", Some(&op), &text),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeysForm {
    #[serde(default)]
    keys: String,
    #[serde(default)]
    expires: String,
}

pub(crate) async fn add_keys(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
    UserInPath(username): UserInPath,
    Form(f): Form<KeysForm>,
) -> Response {
    let parsed = keys_of(&f.keys).and_then(|k| {
        let expires = match opt(&f.expires) {
            Some(d) => Some(dates::parse_date(&d).map_err(|e| format!("expiry: {e}"))?),
            None => None,
        };
        if k.is_empty() {
            return Err("no key given".to_owned());
        }
        Ok((k, expires))
    });
    let (keys, expires) = match parsed {
        Ok(p) => p,
        Err(why) => return user_page(&c, &op, &username, vec![Flash::Error(why)], None).await,
    };
    let result = with_backend!(&c.wired, b => b.admin().add_keys(&username, &keys, expires).await);
    let result = result.map(|a| format!("{} key(s) added, {} already there.", a.added, a.skipped));
    after(&c, &op, &username, "key.add", result).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct RemoveKeyForm {
    #[serde(default)]
    number: usize,
}

pub(crate) async fn remove_key(
    State(c): State<Arc<Console>>,
    Extension(op): Extension<Operator>,
    UserInPath(username): UserInPath,
    Form(f): Form<RemoveKeyForm>,
) -> Response {
    let result = with_backend!(&c.wired, b => b.admin().remove_key(&username, &KeyRef::Number(f.number)).await);
    after(
        &c,
        &op,
        &username,
        "key.remove",
        result.map(|()| "Key removed.".to_owned()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_prefix_cannot_add_to_the_next_page_link() {
        assert_eq!(query_value("a&after=z#x"), "a%26after%3Dz%23x");
        assert_eq!(query_value("bob.smith"), "bob%2Esmith");
    }

    #[test]
    fn a_typed_list_splits_on_commas_spaces_and_lines() {
        assert_eq!(
            list("10.0.0.0/8, 192.0.2.1\n198.51.100.0/24"),
            ["10.0.0.0/8", "192.0.2.1", "198.51.100.0/24"]
        );
        assert!(list("  ").is_empty());
    }

    #[test]
    fn a_line_that_is_no_key_is_refused_by_its_number() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b";
        assert_eq!(keys_of(&format!("# comment\n{key}\n")).unwrap(), [key]);
        assert_eq!(
            keys_of("hello world!").unwrap_err(),
            "line 1 is not an OpenSSH public key"
        );
    }
}
