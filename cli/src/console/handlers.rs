//! The console's open pages (sign-in, the stylesheet) and what every page shares: turning a
//! page into an answer, reading the newest lines of the data folder's JSON-lines files.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, body::Body};
use maud::Markup;
use serde::Deserialize;

use super::security::{self, SignInError};
use super::views;
use super::{Console, Operator, SessionId};

/// An HTML page with a status.
pub(crate) fn html(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

pub(crate) async fn signin_page() -> Response {
    html(StatusCode::OK, views::signin(None))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    token: String,
}

/// Checks the token; on success sets the session cookie. A wrong token costs the client half a
/// second, so guessing stays slow even over loopback (the token has 256 bits anyway).
pub(crate) async fn signin(State(c): State<Arc<Console>>, Form(f): Form<SignInForm>) -> Response {
    match c.sessions().sign_in(&f.name, &f.token) {
        Ok(id) => {
            tracing::info!(target: "ferry::console", operator = %f.name.trim(), "SIGNED_IN");
            let mut r = Redirect::to("/users").into_response();
            if let Ok(v) = HeaderValue::from_str(&security::set_cookie(&id)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            let why = match e {
                SignInError::WrongToken => {
                    tracing::warn!(target: "ferry::console", "SIGN_IN_REFUSED");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    "That is not the sign-in token."
                }
                SignInError::BadName => {
                    "Give your name: letters, digits, spaces, . _ @ - (up to 64)."
                }
                SignInError::Full => "No session could be opened; try again.",
            };
            html(StatusCode::UNAUTHORIZED, views::signin(Some(why)))
        }
    }
}

pub(crate) async fn signout(
    State(c): State<Arc<Console>>,
    Extension(id): Extension<SessionId>,
) -> Response {
    c.sessions().sign_out(&id.0);
    let mut r = Redirect::to("/signin").into_response();
    if let Ok(v) = HeaderValue::from_str(&security::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub(crate) async fn stylesheet() -> Response {
    let mut r = Response::new(Body::from(views::STYLE));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r
}

pub(crate) async fn not_found(op: Option<Extension<Operator>>) -> Response {
    html(
        StatusCode::NOT_FOUND,
        views::message(
            "Not found",
            op.as_ref().map(|o| &o.0),
            "There is no such page.",
        ),
    )
}

/// How much of the end of a JSON-lines file a page reads: the newest events, in bounded time
/// whatever the file's size.
const TAIL_BYTES: u64 = 2 * 1024 * 1024;

/// The newest whole lines of `path` parsed as JSON, newest first (a missing file: none).
pub(crate) fn tail_json(path: &Path) -> Vec<serde_json::Value> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let from = len.saturating_sub(TAIL_BYTES);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if f.take(TAIL_BYTES).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    // Cut where a line may be partial: before the first newline when starting mid-file, and
    // after the last one (a writer may be appending).
    let start = if from > 0 {
        text.find('\n').map_or(text.len(), |i| i + 1)
    } else {
        0
    };
    let end = text.rfind('\n').map_or(0, |i| i + 1);
    if end <= start {
        return Vec::new();
    }
    let mut lines: Vec<serde_json::Value> = text[start..end]
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    lines.reverse();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_skips_partial_lines_and_comes_newest_first() {
        let dir = std::env::temp_dir().join(format!("ferry-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.jsonl");
        std::fs::write(&path, "{\"n\":1}\nnot json\n{\"n\":2}\n{\"n\":3").unwrap();
        let lines = tail_json(&path);
        assert_eq!(
            lines,
            [serde_json::json!({"n": 2}), serde_json::json!({"n": 1})]
        );
        assert!(tail_json(&dir.join("missing.jsonl")).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
