//! The console's HTML, rendered at compile time by maud (every value is escaped): one layout
//! with the navigation, and the pages. No inline script or style anywhere: the CSP forbids both.

use maud::{DOCTYPE, Markup, html};

use super::Operator;

/// The stylesheet, in the binary.
pub(crate) const STYLE: &str = include_str!("style.css");

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Users,
    Logins,
    Uploads,
    Salt,
    None,
}

/// A message at the top of a page.
#[derive(Debug, Clone)]
pub(crate) enum Flash {
    Ok(String),
    Error(String),
}

pub(crate) fn page(
    title: &str,
    nav: Nav,
    op: Option<&Operator>,
    flash: &[Flash],
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ferry console" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header.top {
                    a.brand href="/users" { "ferry" span { "console" } }
                    @if let Some(op) = op {
                        nav aria-label="Main" {
                            (nav_link("/users", "Users", nav == Nav::Users))
                            (nav_link("/logins", "Logins", nav == Nav::Logins))
                            (nav_link("/uploads", "Uploads", nav == Nav::Uploads))
                            (nav_link("/salt", "Salt", nav == Nav::Salt))
                        }
                        form.signout method="post" action="/signout" {
                            (csrf(op))
                            span.who { (op.name) }
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @for f in flash {
                        @match f {
                            Flash::Ok(m) => p.flash.ok role="status" { (m) },
                            Flash::Error(m) => p.flash.error role="alert" { (m) },
                        }
                    }
                    (body)
                }
            }
        }
    }
}

fn nav_link(href: &str, label: &str, current: bool) -> Markup {
    html! {
        @if current {
            a href=(href) aria-current="page" { (label) }
        } @else {
            a href=(href) { (label) }
        }
    }
}

/// The hidden field every form of a session carries.
pub(crate) fn csrf(op: &Operator) -> Markup {
    html! { input type="hidden" name="csrf" value=(op.csrf); }
}

pub(crate) fn signin(error: Option<&str>) -> Markup {
    let flash: Vec<Flash> = error
        .map(|e| Flash::Error(e.to_owned()))
        .into_iter()
        .collect();
    page(
        "Sign in",
        Nav::None,
        None,
        &flash,
        html! {
            form.card.narrow method="post" action="/signin" {
                p.hint { "Use the token " code { "ferry console" } " or " code { "ferry up" } " printed when it started." }
                label for="name" { "Your name (for the audit log)" }
                input #name type="text" name="name" required autocomplete="username" maxlength="64" autofocus;
                label for="token" { "Sign-in token" }
                input #token type="password" name="token" required autocomplete="current-password";
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// Plain text for an error page.
pub(crate) fn message(title: &str, op: Option<&Operator>, text: &str) -> Markup {
    page(
        title,
        Nav::None,
        op,
        &[],
        html! { p { (text) } p { a href="/users" { "Back to users" } } },
    )
}
