//! LDAP escaping and directory answers: any value escaped for a filter (RFC 4515) or a DN
//! (RFC 4514) is a literal that reads back to itself, with no character left that could end or
//! widen a filter; any sources file is read or refused; any account-control value is a state
//! or unreadable.
#![no_main]

use ferry_core::domain::directory::{account_control, dn_escape, filter_escape, parse_sources};
use libfuzzer_sys::fuzz_target;

/// Reads `\XX` hex escapes back (RFC 4515's only escape form).
fn filter_unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("an escape is two hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("an escape is two hex digits"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Reads RFC 4514 escapes back: `\` before a special character, `\00` for NUL.
fn dn_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next().expect("a backslash escapes something") {
            '0' => {
                assert_eq!(chars.next(), Some('0'), "only \\00 is a hex escape here");
                out.push('\0');
            }
            c => out.push(c),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let escaped = filter_escape(text);
    assert!(
        !escaped.contains(['*', '(', ')', '\0']),
        "a filter metacharacter survived: {escaped:?}"
    );
    assert_eq!(filter_unescape(&escaped), text.as_bytes());
    let dn = dn_escape(text);
    assert!(!dn.contains('\0'));
    assert_eq!(dn_unescape(&dn), text);
    let _ = account_control(text);
    let _ = parse_sources(text);
});
