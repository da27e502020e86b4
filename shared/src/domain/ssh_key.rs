//! OpenSSH public keys as operators handle them: the identity of a key (type and body, whatever
//! its comment), its `SHA256:` fingerprint as `ssh-keygen -l` prints it, and whether an offered
//! key is among a user's keys, compared the way sshd compares them.

use base64::Engine;
use sha2::{Digest, Sha256};

/// `SHA256:…` as `ssh-keygen -l` prints it, or `None` for a key whose body is not base64.
pub fn fingerprint(key: &str) -> Option<String> {
    let body = key.split_ascii_whitespace().nth(1)?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let digest = Sha256::digest(&blob);
    Some(format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    ))
}

/// The key type and base64 body, which identify a key whatever its comment.
pub fn key_identity(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.split_ascii_whitespace();
    Some((parts.next()?, parts.next()?))
}

/// Whether `offered` is one of `listed`, compared by type and key body as sshd compares them
/// (comments differ freely). An unreadable offered key matches nothing.
pub fn key_listed(listed: &[String], offered: &str) -> bool {
    let Some(offered) = key_identity(offered) else {
        return false;
    };
    listed.iter().any(|k| key_identity(k) == Some(offered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_matched_by_type_and_body_not_comment() {
        let listed = vec!["ssh-ed25519 AAAAbody alice@laptop".to_owned()];
        assert!(key_listed(&listed, "ssh-ed25519 AAAAbody other-comment"));
        assert!(!key_listed(&listed, "ssh-ed25519 AAAAother alice@laptop"));
        assert!(!key_listed(&listed, "ssh-rsa AAAAbody"));
        assert!(!key_listed(&listed, ""));
        assert!(!key_listed(&["garbage".to_owned()], "garbage2"));
    }

    #[test]
    fn a_fingerprint_matches_ssh_keygen() {
        // What `ssh-keygen -lf` prints for this key.
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x";
        assert_eq!(
            fingerprint(key).as_deref(),
            Some("SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU")
        );
        assert_eq!(fingerprint("ssh-ed25519 !!!"), None);
    }
}
