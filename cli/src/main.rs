//! The `ferry` command: user administration against the users table and salt keyring, and
//! `ferry login`, which runs one login through the real auth handler. Wiring and argument
//! parsing here; the commands live in `commands`.

mod backend;
mod commands;
mod console;
mod defender;
mod directory;
mod import;
mod input;
mod salt;
mod up;
mod validate;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Administer ferry users and try logins"
)]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: Command,
}

/// Where users and salts live (AWS, or anything speaking its API: DynamoDB Local, moto). The
/// standard credential chain and `AWS_ENDPOINT_URL*` variables apply.
#[derive(Debug, Args)]
struct Target {
    /// Users table name
    #[arg(long, env = "USERS_TABLE", global = true)]
    table: Option<String>,
    /// Salt keyring secret id or ARN
    #[arg(long = "salt-secret", env = "SALT_SECRET_ID", global = true)]
    salt_secret: Option<String>,
    /// Use the local stack's data folder (default .ferry) instead of AWS
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = ".ferry", value_name = "DIR")]
    local: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Run the whole system on this machine: a data folder and an SFTP server
    Up(up::UpArgs),
    /// A web console for operators (users, keys, logins, uploads, salt) on 127.0.0.1
    Console(console::ConsoleArgs),
    /// The salt keyring: status and rotation
    #[command(subcommand)]
    Salt(salt::SaltCommand),
    /// The brute-force defender: running bans, throttles and slowdowns, and lifting them
    #[command(subcommand)]
    Defender(defender::DefenderCommand),
    /// Run one login through the auth handler and print the answer Transfer Family would get.
    /// Exits 0 when the login is allowed, 1 when it is denied.
    Login(LoginArgs),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user (or change one with --update)
    Add(AddArgs),
    /// Set a new password
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Show a user (never the password hash)
    Show {
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List every user, page by page, with their last login
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Only users with no sign of life (a login, a password set, being created or enabled)
        /// for at least AGE, such as 90d or 12h. Users with none of these dates are not listed.
        #[arg(long, value_name = "AGE")]
        inactive: Option<String>,
    },
    /// Refuse every login of a user from now on
    Disable {
        name: String,
        /// The seed design's users table: a user only there gets a disabled record of their
        /// own, so their old password can no longer migrate them
        #[arg(long = "legacy-table", env = "LEGACY_USERS_TABLE")]
        legacy_table: Option<String>,
    },
    /// Allow a disabled user to log in again (after the policy validator's checks)
    Enable { name: String },
    /// Have a directory source (LDAP, Active Directory) verify a user's password and account,
    /// the record still deciding the rest; --clear hands the user back to ferry's own password
    Source {
        name: String,
        /// The source's name, as in the sources file (see docs/data-model.md)
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        source: Option<String>,
        #[arg(long)]
        clear: bool,
    },
    /// Delete a user
    Rm {
        name: String,
        /// The seed design's users table: the user's items there are deleted too
        #[arg(long = "legacy-table", env = "LEGACY_USERS_TABLE")]
        legacy_table: Option<String>,
    },
    /// Manage a user's SSH public keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Create users from a CSV file (see docs/cli.md for the columns); rows that fail are
    /// reported by line and the rest are written. Exits 1 when any row failed.
    Import(ImportArgs),
    /// Run the policy validator's checks on a user (or --all) now; exits 1 when any is invalid.
    /// With --write (AWS), record the verdicts as the validator function does (backfill).
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// The user to check
    #[arg(required_unless_present_any = ["all", "directory"], conflicts_with = "all")]
    name: Option<String>,
    /// Check every user
    #[arg(long)]
    all: bool,
    /// Write status, statusReason and validatedAt (conditional, as the validator function does)
    #[arg(long)]
    write: bool,
    /// Only roles in this account pass (as the function's ALLOWED_ROLE_ACCOUNT)
    #[arg(long = "role-account", env = "ALLOWED_ROLE_ACCOUNT")]
    role_account: Option<String>,
    /// Only roles under this IAM path pass (as the function's ALLOWED_ROLE_PATH)
    #[arg(long = "role-path", env = "ALLOWED_ROLE_PATH")]
    role_path: Option<String>,
    /// Also check the default profiles of the directory sources in this file (their policy,
    /// role and home, as the validator checks a record's)
    #[arg(long, env = "FERRY_DIRECTORY")]
    directory: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct ImportArgs {
    file: std::path::PathBuf,
    /// Change users that already exist (otherwise they are skipped)
    #[arg(long)]
    update: bool,
    /// Bucket for rows that leave it empty
    #[arg(long)]
    bucket: Option<String>,
    /// Policy ARN for rows that leave it empty
    #[arg(long = "policy-arn")]
    policy_arn: Option<String>,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Add the public key(s) in FILE (one per line, OpenSSH format)
    Add {
        name: String,
        file: std::path::PathBuf,
        /// Expiry of the added key(s): YYYY-MM-DD (UTC midnight), RFC 3339 or epoch seconds
        #[arg(long)]
        expires: Option<String>,
    },
    /// Remove a key by its number in `key list` or its SHA256 fingerprint
    Rm { name: String, key: String },
    /// List keys with their fingerprints
    List { name: String },
}

#[derive(Debug, Args)]
struct AddArgs {
    name: String,
    /// S3 bucket of the home directory
    #[arg(long)]
    bucket: Option<String>,
    /// Prefix in the bucket (the user lands in /BUCKET/HOME)
    #[arg(long)]
    home: Option<String>,
    /// ARN of the managed scope-down policy
    #[arg(long = "policy-arn")]
    policy_arn: Option<String>,
    /// Role for this user (default: the auth function's DEFAULT_ROLE_ARN)
    #[arg(long = "role-arn")]
    role_arn: Option<String>,
    /// Lock the user into their home (LOGICAL home with / mapped to /BUCKET/HOME)
    #[arg(long)]
    chroot: bool,
    /// Public key file(s) to accept for key logins
    #[arg(long = "key")]
    keys: Vec<std::path::PathBuf>,
    /// Allowed source address or CIDR (repeatable; default: any)
    #[arg(long = "allow-ip")]
    allow_ips: Vec<String>,
    /// Allowed Transfer server id (repeatable; default: any)
    #[arg(long = "server")]
    servers: Vec<String>,
    /// Allowed protocol: SFTP, FTPS or FTP (repeatable; default: any)
    #[arg(long = "protocol")]
    protocols: Vec<String>,
    /// Account expiry: YYYY-MM-DD (UTC midnight), RFC 3339 or epoch seconds
    #[arg(long)]
    expires: Option<String>,
    /// Refuse the user after this many days without a login (0: never, whatever the auth
    /// function's DISABLE_AFTER_INACTIVE_DAYS; `default`: that default again)
    #[arg(long = "disable-after-inactive-days", value_name = "DAYS", value_parser = days_or_default)]
    disable_after_inactive_days: Option<DaysOrDefault>,
    /// Refuse the user's password this many days after it was set (0: never, whatever the auth
    /// function's PASSWORD_MAX_AGE_DAYS; `default`: that default again)
    #[arg(long = "password-max-age-days", value_name = "DAYS", value_parser = days_or_default)]
    password_max_age_days: Option<DaysOrDefault>,
    /// Change an existing user: given options replace stored ones, the rest is kept
    #[arg(long)]
    update: bool,
    #[command(flatten)]
    password: PasswordArgs,
    /// Create a user who logs in with keys only
    #[arg(long = "no-password", conflicts_with_all = ["password_stdin", "generate_password"])]
    no_password: bool,
}

/// A per-user limit as typed: whole days, or `default` (`None`: the auth function's default).
#[derive(Debug, Clone, Copy)]
struct DaysOrDefault(Option<u32>);

fn days_or_default(text: &str) -> Result<DaysOrDefault, String> {
    match text.trim() {
        "default" => Ok(DaysOrDefault(None)),
        days => days
            .parse::<u32>()
            .map(|d| DaysOrDefault(Some(d)))
            .map_err(|_| format!("{text:?} is not a whole number of days or `default`")),
    }
}

#[derive(Debug, Args)]
struct PasswordArgs {
    /// Read the password from standard input (one line)
    #[arg(long = "password-stdin", conflicts_with = "generate_password")]
    password_stdin: bool,
    /// Generate a random password and print it once
    #[arg(long = "generate-password")]
    generate_password: bool,
}

#[derive(Debug, Args)]
struct LoginArgs {
    name: String,
    /// Log in with this public key instead of a password
    #[arg(long)]
    key: Option<std::path::PathBuf>,
    /// Read the password from standard input instead of a prompt
    #[arg(long = "password-stdin")]
    password_stdin: bool,
    #[arg(long = "source-ip", default_value = "127.0.0.1")]
    source_ip: String,
    #[arg(long = "server", default_value = "s-local")]
    server: String,
    #[arg(long = "protocol", default_value = "SFTP")]
    protocol: String,
    /// Role answered for users without their own
    #[arg(
        long = "default-role-arn",
        env = "DEFAULT_ROLE_ARN",
        default_value = "arn:aws:iam::000000000000:role/ferry-default-user"
    )]
    default_role_arn: String,
    /// Directory identity sources (LDAP, Active Directory): a sources file as
    /// docs/data-model.md describes, its secrets as file: or env: references
    #[arg(long, env = "FERRY_DIRECTORY")]
    directory: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::up(args, cli.target).await,
        Command::Console(args) => console::run(args, cli.target).await,
        Command::Salt(cmd) => salt::run(cmd, cli.target).await,
        Command::Defender(cmd) => defender::run(cmd, cli.target).await,
        _ => commands::run(cli).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferry: {e:#}");
            ExitCode::from(2)
        }
    }
}
