//! Session (scope-down) policies: IAM hands documents back percent-encoded; Transfer takes them
//! as a minified JSON string of at most 2,048 characters.

/// Transfer Family's limit on the `Policy` string.
pub const MAX_SESSION_POLICY_CHARS: usize = 2048;

/// A policy document, decoded and minified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy document is not valid percent-encoded UTF-8")]
    Encoding,
    #[error("policy document is not a JSON object: {0}")]
    NotJson(String),
    #[error("policy document is {0} characters once minified, over the 2,048 Transfer allows")]
    TooLarge(usize),
}

impl PolicyDocument {
    /// Decodes a document as IAM's GetPolicyVersion returns it (RFC 3986 percent-encoding; moto
    /// returns plain JSON, which decodes to itself unless it holds a literal `%XX`).
    pub fn from_iam(encoded: &str) -> Result<Self, PolicyError> {
        // Plain JSON first: a document that already parses must not be decoded again, or a
        // literal "%41" inside it would change meaning.
        if let Ok(doc) = Self::from_json(encoded) {
            return Ok(doc);
        }
        let decoded = percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .map_err(|_| PolicyError::Encoding)?;
        Self::from_json(&decoded)
    }

    /// Parses and minifies a JSON document.
    pub fn from_json(json: &str) -> Result<Self, PolicyError> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| PolicyError::NotJson(e.to_string()))?;
        if !value.is_object() {
            return Err(PolicyError::NotJson("top level is not an object".into()));
        }
        Ok(Self(value.to_string()))
    }

    /// The minified JSON.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length in characters, as Transfer counts it.
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }

    /// The document as a session policy, if it fits Transfer's limit.
    pub fn as_session_policy(&self) -> Result<&str, PolicyError> {
        match self.chars() {
            n if n > MAX_SESSION_POLICY_CHARS => Err(PolicyError::TooLarge(n)),
            _ => Ok(&self.0),
        }
    }
}

/// The canonical Transfer Family scope-down policy: list and object access under the user's
/// home folder only.
pub const CANONICAL_SCOPE_DOWN: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"List","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}","Condition":{"StringLike":{"s3:prefix":["${transfer:HomeFolder}/*","${transfer:HomeFolder}"]}}},{"Sid":"Objects","Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:DeleteObject","s3:DeleteObjectVersion","s3:GetObjectVersion","s3:GetObjectACL","s3:PutObjectACL"],"Resource":"arn:aws:s3:::${transfer:HomeDirectory}/*"}]}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iam_encoded_document_is_decoded_and_minified() {
        let encoded = "%7B%0A%20%20%22Version%22%3A%20%222012-10-17%22%2C%0A%20%20%22Statement%22%3A%20%5B%5D%0A%7D";
        let doc = PolicyDocument::from_iam(encoded).unwrap();
        assert_eq!(doc.as_str(), r#"{"Version":"2012-10-17","Statement":[]}"#);
    }

    #[test]
    fn plain_json_is_taken_as_is_even_with_a_literal_percent_sequence() {
        let doc = PolicyDocument::from_iam(r#"{ "Sid" : "100%41" }"#).unwrap();
        assert_eq!(doc.as_str(), r#"{"Sid":"100%41"}"#);
    }

    #[test]
    fn minifying_keeps_key_order_and_whitespace_inside_strings() {
        let doc = PolicyDocument::from_json("{\n  \"b\": \"x y\",\n  \"a\": 1\n}").unwrap();
        assert_eq!(doc.as_str(), r#"{"b":"x y","a":1}"#);
    }

    #[test]
    fn the_canonical_policy_fits_and_an_oversized_one_is_refused() {
        let doc = PolicyDocument::from_json(CANONICAL_SCOPE_DOWN).unwrap();
        assert!(doc.as_session_policy().is_ok());
        let big = format!(r#"{{"Sid":"{}"}}"#, "x".repeat(2100));
        let doc = PolicyDocument::from_json(&big).unwrap();
        assert_eq!(doc.as_session_policy(), Err(PolicyError::TooLarge(2110)));
    }

    #[test]
    fn the_limit_is_measured_after_minifying_and_in_characters() {
        // 2,048 characters exactly, padded with whitespace that minifying removes.
        let inner = "\u{e9}".repeat(2048 - 10);
        let exact = format!("{{  \"Sid\" :   \"{inner}\" }}");
        let doc = PolicyDocument::from_json(&exact).unwrap();
        assert_eq!(doc.chars(), 2048);
        assert!(doc.as_session_policy().is_ok());
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in ["", "%", "%FF%FE", "[1]", "not json", "%7B"] {
            assert!(PolicyDocument::from_iam(bad).is_err(), "{bad:?}");
        }
    }
}
