//! The upload processor's rules: which keys are incoming, what a file must be to pass (size,
//! emptiness, extension, content that matches its name), a user's own rules over the configured
//! ones, and the tags that record a verdict. Pure: reading the bytes happens in the use case.

use serde_json::Value;

/// The tag names the processor writes.
pub const TAG_SHA256: &str = "ferry-sha256";
pub const TAG_VERDICT: &str = "ferry-verdict";
pub const TAG_REASON: &str = "ferry-reason";
pub const TAG_ETAG: &str = "ferry-etag";
/// The key the verdict was made for (hex SHA-256 of it: keys are longer than a tag value may
/// be). A copy carries its source's tags, ETag included: without this, a file renamed on S3
/// (a copy) would look processed under its new name and never be judged there.
pub const TAG_KEY: &str = "ferry-key";

/// What happens to the user's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAction {
    /// Copied to its area, then deleted where the user put it.
    Move,
    /// Copied to its area; the user's file stays, tagged with the verdict.
    Copy,
}

/// The processor's configuration (environment variables, see the data model doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadConfig {
    /// Keys processed: only those under one of these prefixes (`INCOMING_PREFIXES`).
    pub incoming_prefixes: Vec<String>,
    pub processed_prefix: String,
    pub quarantine_prefix: String,
    /// Where outputs go (`OUTPUT_BUCKET`); `None`: the source bucket.
    pub output_bucket: Option<String>,
    pub max_object_bytes: Option<u64>,
    /// Lowercase extensions without the dot; empty: any.
    pub allowed_extensions: Vec<String>,
    pub source_action: SourceAction,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            incoming_prefixes: Vec::new(),
            processed_prefix: "processed/".into(),
            quarantine_prefix: "quarantine/".into(),
            output_bucket: None,
            max_object_bytes: None,
            allowed_extensions: Vec::new(),
            source_action: SourceAction::Move,
        }
    }
}

/// One user's own rules (the `uploadRules` attribute of their record), over the configured ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserRules {
    pub max_object_bytes: Option<u64>,
    pub allowed_extensions: Option<Vec<String>>,
    #[serde(default)]
    pub allow_empty: bool,
}

/// Reads `uploadRules` from a user record as plain JSON; a malformed value is an error, so a
/// broken override never silently loosens or tightens the rules.
pub fn user_rules(record: &Value) -> Result<Option<UserRules>, serde_json::Error> {
    match record.get("uploadRules") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some),
    }
}

/// What the single pass over the bytes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub size: u64,
    pub sha256: String,
    pub detected: &'static str,
}

/// Sniffs a content type from the first bytes.
pub fn sniff(head: &[u8]) -> &'static str {
    const MAGIC: [(&[u8], &str); 8] = [
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"\x7fELF", "application/x-executable"),
    ];
    if head.is_empty() {
        return "application/x-empty";
    }
    for (magic, kind) in MAGIC {
        if head.starts_with(magic) {
            return kind;
        }
    }
    // Text: no NUL, and valid UTF-8 apart from a character cut at the sample's end.
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if valid && !head.contains(&0) {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

impl UploadConfig {
    /// The incoming prefix `key` lies under, if any. Output areas are never incoming, so the
    /// processor cannot trigger itself.
    pub fn incoming<'a>(&'a self, key: &str) -> Option<&'a str> {
        if key.starts_with(&self.processed_prefix) || key.starts_with(&self.quarantine_prefix) {
            return None;
        }
        if self.incoming_prefixes.is_empty() {
            return Some("");
        }
        self.incoming_prefixes
            .iter()
            .find(|p| key.starts_with(p.as_str()))
            .map(String::as_str)
    }

    /// The rules: `Err(reason)` quarantines.
    pub fn judge(&self, key: &str, scan: &Scan) -> Result<(), String> {
        self.judge_for(key, scan, None)
    }

    /// The rules, with a user's own rules over the configured ones.
    pub fn judge_for(
        &self,
        key: &str,
        scan: &Scan,
        user: Option<&UserRules>,
    ) -> Result<(), String> {
        let allow_empty = user.is_some_and(|u| u.allow_empty);
        if scan.size == 0 && !allow_empty {
            return Err("empty file".into());
        }
        let max = user
            .and_then(|u| u.max_object_bytes)
            .or(self.max_object_bytes);
        let own_extensions: Option<Vec<String>> =
            user.and_then(|u| u.allowed_extensions.as_ref()).map(|l| {
                l.iter()
                    .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                    .collect()
            });
        let allowed = own_extensions.as_ref().unwrap_or(&self.allowed_extensions);
        if let Some(max) = max
            && scan.size > max
        {
            return Err(format!("{} bytes, over the {max}-byte limit", scan.size));
        }
        let name = key.rsplit('/').next().unwrap_or(key);
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if !allowed.is_empty() && !allowed.contains(&ext) {
            return Err(format!("extension .{ext} is not allowed"));
        }
        let claims = match ext.as_str() {
            "pdf" => Some("application/pdf"),
            "zip" => Some("application/zip"),
            "gz" | "tgz" => Some("application/gzip"),
            "png" => Some("image/png"),
            "jpg" | "jpeg" => Some("image/jpeg"),
            "gif" => Some("image/gif"),
            "csv" | "txt" | "json" | "xml" => Some("text/plain"),
            _ => None,
        };
        if let Some(claimed) = claims
            && claimed != scan.detected
            && !(scan.size == 0 && allow_empty)
        {
            return Err(format!(
                "content is {} but the name says .{ext}",
                scan.detected
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(size: u64, detected: &'static str) -> Scan {
        Scan {
            size,
            sha256: String::new(),
            detected,
        }
    }

    #[test]
    fn content_is_sniffed_from_its_first_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff(b"PK\x03\x04rest"), "application/zip");
        assert_eq!(sniff(b"id,name\n1,\xc3\xbc"), "text/plain");
        assert_eq!(sniff(b"cut at \xc3"), "text/plain");
        assert_eq!(sniff(b"bin\x00ary"), "application/octet-stream");
        assert_eq!(sniff(b""), "application/x-empty");
    }

    #[test]
    fn outputs_are_never_inputs_and_rules_quarantine_with_a_reason() {
        let config = UploadConfig {
            incoming_prefixes: vec!["home/".into()],
            max_object_bytes: Some(10),
            allowed_extensions: vec!["csv".into(), "pdf".into()],
            ..UploadConfig::default()
        };
        assert_eq!(config.incoming("home/a/x.csv"), Some("home/"));
        assert_eq!(config.incoming("processed/a/x.csv"), None);
        assert_eq!(config.incoming("elsewhere/x.csv"), None);
        let everything = UploadConfig::default();
        assert_eq!(everything.incoming("a/x.csv"), Some(""));
        assert_eq!(everything.incoming("quarantine/x.csv"), None);
        assert!(config.judge("home/a/x.csv", &scan(4, "text/plain")).is_ok());
        assert!(config.judge("home/a/x.CSV", &scan(4, "text/plain")).is_ok());
        for (key, s, why) in [
            ("home/a/x.csv", scan(0, "application/x-empty"), "empty"),
            ("home/a/x.csv", scan(11, "text/plain"), "limit"),
            ("home/a/x.exe", scan(4, "application/octet-stream"), ".exe"),
            ("home/a/noext", scan(4, "text/plain"), "extension"),
            ("home/a/x.pdf", scan(4, "text/plain"), "name says .pdf"),
        ] {
            let err = config.judge(key, &s).unwrap_err();
            assert!(err.contains(why), "{key}: {err}");
        }
    }
}
