//! Amazon Resource Names: the one parser that judges every ARN ferry reads (a user's policy and
//! role, the default role, the S3 resources of a session policy).
//!
//! `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, split on the first five colons (a resource
//! may hold colons of its own). [`Arn::parse`] checks the shape every ARN shares;
//! [`Arn::iam_policy`] and [`Arn::iam_role`] add IAM's rules for the two kinds a user record
//! names. Errors say which field is wrong and never quote the input, so they are safe for logs
//! and for a record's `statusReason`.

use std::fmt;

/// Why a string is not the ARN asked for. The messages are stable: verdicts and logs quote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("does not start with arn:")]
    NotAnArn,
    #[error("has fewer than six ':'-separated fields")]
    TooFewFields,
    #[error("partition is not aws or aws-<name>")]
    Partition,
    #[error("service is not lowercase letters, digits and '-'")]
    Service,
    #[error("region is not lowercase letters, digits and '-'")]
    Region,
    /// What the account had to be: `12 digits`, …
    #[error("account is not {0}")]
    Account(&'static str),
    #[error("resource is empty")]
    EmptyResource,
    /// The service the caller asked for.
    #[error("service is not {0}")]
    WrongService(&'static str),
    #[error("region is not empty")]
    RegionNotEmpty,
    /// The resource type the caller asked for (`policy`, `role`).
    #[error("resource is not {0}/<name>")]
    WrongResourceType(&'static str),
    #[error("{0} name is empty or has a character IAM does not allow")]
    Name(&'static str),
    #[error("{0} path has a character IAM does not allow")]
    Path(&'static str),
}

/// An ARN split into its fields, borrowed from the string it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    partition: &'a str,
    service: &'a str,
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Parses the shape every ARN shares. The account may be empty (S3), 12 digits, or `aws`
    /// (AWS-managed IAM policies); the resource must not be empty.
    pub fn parse(s: &'a str) -> Result<Self, ArnError> {
        let rest = s.strip_prefix("arn:").ok_or(ArnError::NotAnArn)?;
        let mut fields = rest.splitn(5, ':');
        let (Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(ArnError::TooFewFields);
        };
        if !is_partition(partition) {
            return Err(ArnError::Partition);
        }
        if !is_label(service) {
            return Err(ArnError::Service);
        }
        if !region.is_empty() && !is_label(region) {
            return Err(ArnError::Region);
        }
        if !(account.is_empty() || account == "aws" || is_account_id(account)) {
            return Err(ArnError::Account("empty, 12 digits or aws"));
        }
        if resource.is_empty() {
            return Err(ArnError::EmptyResource);
        }
        Ok(Self {
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    /// A managed policy: `arn:<partition>:iam::<12 digits or aws>:policy/<path/>name`.
    pub fn iam_policy(s: &'a str) -> Result<IamArn<'a>, ArnError> {
        IamArn::parse(s, IamKind::Policy)
    }

    /// A role: `arn:<partition>:iam::<12 digits>:role/<path/>name`.
    pub fn iam_role(s: &'a str) -> Result<IamArn<'a>, ArnError> {
        IamArn::parse(s, IamKind::Role)
    }

    pub fn partition(&self) -> &'a str {
        self.partition
    }

    pub fn service(&self) -> &'a str {
        self.service
    }

    pub fn region(&self) -> &'a str {
        self.region
    }

    pub fn account(&self) -> &'a str {
        self.account
    }

    /// Everything after the fifth colon, colons included.
    pub fn resource(&self) -> &'a str {
        self.resource
    }
}

impl fmt::Display for Arn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

/// The two kinds of IAM ARN a user record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamKind {
    Policy,
    Role,
}

impl IamKind {
    /// The resource type in the ARN, also the word the errors use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::Role => "role",
        }
    }
}

/// An IAM policy or role ARN, with its path and name apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IamArn<'a> {
    arn: Arn<'a>,
    kind: IamKind,
    /// `/` or `/a/b/`, as IAM prints paths.
    path: &'a str,
    name: &'a str,
}

impl<'a> IamArn<'a> {
    fn parse(s: &'a str, kind: IamKind) -> Result<Self, ArnError> {
        let arn = Arn::parse(s)?;
        if arn.service != "iam" {
            return Err(ArnError::WrongService("iam"));
        }
        // IAM is global: its ARNs never name a region.
        if !arn.region.is_empty() {
            return Err(ArnError::RegionNotEmpty);
        }
        let account_ok = match kind {
            // AWS-managed policies live in the pseudo-account `aws`; roles never do.
            IamKind::Policy => arn.account == "aws" || is_account_id(arn.account),
            IamKind::Role => is_account_id(arn.account),
        };
        if !account_ok {
            return Err(ArnError::Account(match kind {
                IamKind::Policy => "12 digits or aws",
                IamKind::Role => "12 digits",
            }));
        }
        // `role/transfer/alice`: the type, then IAM's path without its leading slash, then the
        // name. Splitting after the type keeps the leading slash of the path in `qualified`.
        let qualified = arn
            .resource
            .strip_prefix(kind.as_str())
            .filter(|q| q.starts_with('/'))
            .ok_or(ArnError::WrongResourceType(kind.as_str()))?;
        // `rfind` finds an ASCII '/', so the split after it is on a character boundary.
        let cut = qualified.rfind('/').map_or(0, |i| i + 1);
        let (path, name) = qualified.split_at(cut);
        if name.is_empty() || !name.bytes().all(is_name_byte) {
            return Err(ArnError::Name(kind.as_str()));
        }
        // IAM's path pattern is `/` or `/[\x21-\x7E]+/`: any printable ASCII but space, wider
        // than the name's characters.
        if !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(ArnError::Path(kind.as_str()));
        }
        Ok(Self {
            arn,
            kind,
            path,
            name,
        })
    }

    pub fn arn(&self) -> Arn<'a> {
        self.arn
    }

    pub fn kind(&self) -> IamKind {
        self.kind
    }

    pub fn partition(&self) -> &'a str {
        self.arn.partition
    }

    /// 12 digits, or `aws` for an AWS-managed policy.
    pub fn account(&self) -> &'a str {
        self.arn.account
    }

    /// IAM's path: `/` or `/a/b/`.
    pub fn path(&self) -> &'a str {
        self.path
    }

    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Path and name together, `/transfer/alice`: what an allowed-path rule is matched against.
    pub fn path_and_name(&self) -> &'a str {
        // The resource is `<kind><path><name>`, and path and name are adjacent in it.
        self.arn
            .resource
            .strip_prefix(self.kind.as_str())
            .unwrap_or(self.arn.resource)
    }
}

/// `aws` and `aws-<name>…`. A pattern rather than a list of today's partitions (aws, aws-cn,
/// aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc): AWS opens new ones from time
/// to time, and refusing a real one would lock its users out, while IAM itself refuses a made-up
/// one at the first call. The shape check still stops typos such as `aws_cn` or `AWS`.
fn is_partition(p: &str) -> bool {
    p.strip_prefix("aws").is_some_and(|rest| {
        rest.is_empty()
            || rest.strip_prefix('-').is_some_and(|tail| {
                tail.split('-')
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
            })
    })
}

/// A service or region: lowercase letters, digits and '-', not empty.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// IAM's name characters: letters, digits and `+=,.@_-`.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTITIONS: [&str; 8] = [
        "aws",
        "aws-cn",
        "aws-us-gov",
        "aws-iso",
        "aws-iso-b",
        "aws-iso-e",
        "aws-iso-f",
        "aws-eusc",
    ];

    #[test]
    fn an_arn_splits_into_its_six_fields_and_the_resource_keeps_its_colons() {
        let arn = Arn::parse("arn:aws:logs:eu-west-1:123456789012:log-group:/ferry:*").unwrap();
        assert_eq!(arn.partition(), "aws");
        assert_eq!(arn.service(), "logs");
        assert_eq!(arn.region(), "eu-west-1");
        assert_eq!(arn.account(), "123456789012");
        assert_eq!(arn.resource(), "log-group:/ferry:*");
        assert_eq!(
            arn.to_string(),
            "arn:aws:logs:eu-west-1:123456789012:log-group:/ferry:*"
        );
        let s3 = Arn::parse("arn:aws:s3:::bucket/key").unwrap();
        assert_eq!((s3.region(), s3.account()), ("", ""));
        assert_eq!(s3.resource(), "bucket/key");
    }

    #[test]
    fn policy_and_role_arns_are_accepted_in_every_partition() {
        for p in PARTITIONS {
            for (good, path, name) in [
                (
                    format!("arn:{p}:iam::123456789012:policy/scope"),
                    "/",
                    "scope",
                ),
                (
                    format!("arn:{p}:iam::123456789012:policy/a/b-c/Scope+1"),
                    "/a/b-c/",
                    "Scope+1",
                ),
                (format!("arn:{p}:iam::aws:policy/ReadOnly"), "/", "ReadOnly"),
            ] {
                let arn = Arn::iam_policy(&good).unwrap_or_else(|e| panic!("{good}: {e}"));
                assert_eq!((arn.partition(), arn.path(), arn.name()), (p, path, name));
            }
            for (good, path_and_name) in [
                (format!("arn:{p}:iam::123456789012:role/u"), "/u"),
                (
                    format!("arn:{p}:iam::123456789012:role/transfer/alice"),
                    "/transfer/alice",
                ),
                (
                    format!("arn:{p}:iam::123456789012:role/service-role/x@y.z"),
                    "/service-role/x@y.z",
                ),
            ] {
                let arn = Arn::iam_role(&good).unwrap_or_else(|e| panic!("{good}: {e}"));
                assert_eq!(arn.account(), "123456789012");
                assert_eq!(arn.path_and_name(), path_and_name);
                assert_eq!(arn.kind(), IamKind::Role);
            }
        }
    }

    #[test]
    fn malformed_policy_and_role_arns_are_refused_with_the_field_at_fault() {
        use ArnError::*;
        for p in PARTITIONS {
            let cases = [
                (format!("arm:{p}:iam::123456789012:policy/x"), NotAnArn),
                (format!("arn:{p}:iam::123456789012"), TooFewFields),
                (format!("arn:{p}:s3:::policy/x"), WrongService("iam")),
                (
                    format!("arn:{p}:iam:us-east-1:123456789012:policy/x"),
                    RegionNotEmpty,
                ),
                (
                    format!("arn:{p}:iam::1234:policy/x"),
                    Account("empty, 12 digits or aws"),
                ),
                (
                    format!("arn:{p}:iam:::policy/x"),
                    Account("12 digits or aws"),
                ),
                (
                    format!("arn:{p}:iam::123456789012:role/x"),
                    WrongResourceType("policy"),
                ),
                (
                    format!("arn:{p}:iam::123456789012:policyx"),
                    WrongResourceType("policy"),
                ),
                (format!("arn:{p}:iam::123456789012:policy/"), Name("policy")),
                (
                    format!("arn:{p}:iam::123456789012:policy/a/"),
                    Name("policy"),
                ),
                (
                    format!("arn:{p}:iam::123456789012:policy/a b"),
                    Name("policy"),
                ),
                (
                    format!("arn:{p}:iam::123456789012:policy/a b/c"),
                    Path("policy"),
                ),
                (format!("arn:{p}:iam::123456789012:"), EmptyResource),
            ];
            for (bad, why) in cases {
                assert_eq!(Arn::iam_policy(&bad).err(), Some(why), "{bad}");
            }
            for (bad, why) in [
                (format!("arn:{p}:iam::aws:role/x"), Account("12 digits")),
                (
                    format!("arn:{p}:iam::123456789012:user/x"),
                    WrongResourceType("role"),
                ),
                (
                    format!("arn:{p}:iam::123456789012:role"),
                    WrongResourceType("role"),
                ),
                (format!("arn:{p}:iam::123456789012:role/"), Name("role")),
                (
                    format!("arn:{p}:iam::123456789012:policy/x"),
                    WrongResourceType("role"),
                ),
                (
                    format!("arn:{p}:sts::123456789012:role/x"),
                    WrongService("iam"),
                ),
            ] {
                assert_eq!(Arn::iam_role(&bad).err(), Some(why), "{bad}");
            }
        }
    }

    #[test]
    fn only_aws_and_aws_dash_lowercase_words_are_partitions() {
        for good in PARTITIONS
            .into_iter()
            .chain(["aws-iso-z", "aws-new-region"])
        {
            assert!(is_partition(good), "{good}");
        }
        for bad in [
            "", "aw", "AWS", "aws-", "aws--cn", "aws-cn-", "aws_cn", "awscn", "aws-CN", "aws-1",
            "x-aws",
        ] {
            assert!(!is_partition(bad), "{bad}");
            let arn = format!("arn:{bad}:iam::123456789012:role/r");
            assert_eq!(
                Arn::iam_role(&arn).err(),
                Some(ArnError::Partition),
                "{arn}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_field_and_never_quote_the_input() {
        let secretish = "arn:aws:iam::123456789012:policy/has space";
        let message = Arn::iam_policy(secretish).unwrap_err().to_string();
        assert_eq!(
            message,
            "policy name is empty or has a character IAM does not allow"
        );
        assert!(!message.contains("has space"));
        assert_eq!(
            Arn::parse("nope").unwrap_err().to_string(),
            "does not start with arn:"
        );
    }
}
