//! `ferry defender`: the brute-force defender's running bans, throttles and slowdowns, and
//! lifting them (`unban SOURCE`, `unlock USER`), on the data folder (`--local`) or the DynamoDB
//! table the auth function uses (`--defender-table`).

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use ferry_core::adapters::aws::defender::DynamoFailureStore;
use ferry_core::adapters::aws::eventbridge::EventBridgePublisher;
use ferry_core::adapters::local::store::LocalStore;
use ferry_core::adapters::local::uploads::JsonLines;
use ferry_core::app::now_epoch;
use ferry_core::domain::audit::{AuditEvent, DefenderEvent};
use ferry_core::domain::dates::format_date;
use ferry_core::domain::defender::{DefenderKey, Standing};
use ferry_core::domain::source::SourceKey;
use ferry_core::domain::username::Username;
use ferry_core::ports::{EventPublisher, FailureStore};

use crate::Target;
use crate::backend::store;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum DefenderCommand {
    /// Every running ban (a source), throttle (a user at one source) and slowdown (an account)
    List {
        /// The defender's DynamoDB table (not with --local)
        #[arg(long = "defender-table", env = "DEFENDER_TABLE")]
        defender_table: Option<String>,
        /// JSON lines instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Lift a source's ban and every throttle of a user at that source (an address, or an IPv6
    /// /64 as the audit line shows it)
    Unban {
        source: String,
        #[arg(long = "defender-table", env = "DEFENDER_TABLE")]
        defender_table: Option<String>,
        /// The audit bus each lift is published to (with --local: audit.jsonl of the data folder)
        #[arg(long = "audit-bus", env = "AUDIT_EVENT_BUS")]
        audit_bus: Option<String>,
    },
    /// Lift a user's account slowdown and every throttle of that user, from any source
    Unlock {
        user: String,
        #[arg(long = "defender-table", env = "DEFENDER_TABLE")]
        defender_table: Option<String>,
        /// The audit bus each lift is published to (with --local: audit.jsonl of the data folder)
        #[arg(long = "audit-bus", env = "AUDIT_EVENT_BUS")]
        audit_bus: Option<String>,
    },
}

pub(crate) async fn run(cmd: DefenderCommand, target: Target) -> Result<ExitCode> {
    let table = match &cmd {
        DefenderCommand::List { defender_table, .. }
        | DefenderCommand::Unban { defender_table, .. }
        | DefenderCommand::Unlock { defender_table, .. } => defender_table.clone(),
    };
    let audit_bus = match &cmd {
        DefenderCommand::Unban { audit_bus, .. } | DefenderCommand::Unlock { audit_bus, .. } => {
            audit_bus.clone()
        }
        DefenderCommand::List { .. } => None,
    };
    if let Some(dir) = &target.local {
        let data = LocalStore::open(dir).map_err(store)?;
        let events = Lifts::File(JsonLines(data.dir().join("audit.jsonl")));
        return act(&data, cmd, &events).await;
    }
    let table = table.context(
        "no defender table: pass --defender-table or set DEFENDER_TABLE (or use --local)",
    )?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let tallies = DynamoFailureStore::new(aws_sdk_dynamodb::Client::new(&sdk), Some(table));
    let events = match audit_bus {
        Some(bus) => Lifts::Bus(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            bus,
        )),
        None => Lifts::Nowhere,
    };
    act(&tallies, cmd, &events).await
}

/// Where the lifts an operator makes are published as audit events.
pub(crate) enum Lifts {
    Bus(EventBridgePublisher),
    File(JsonLines),
    Nowhere,
}

impl Lifts {
    async fn publish(&self, key: &DefenderKey) -> Result<()> {
        let event = [AuditEvent::Defender(DefenderEvent {
            action: "lifted",
            key: key.to_string(),
            until: 0,
            strikes: 0,
            at: now_epoch(),
        })];
        match self {
            Self::Bus(bus) => bus.publish(&event).await.map_err(store),
            Self::File(file) => file.publish(&event).await.map_err(store),
            Self::Nowhere => Ok(()),
        }
    }
}

async fn act<F: FailureStore>(
    tallies: &F,
    cmd: DefenderCommand,
    events: &Lifts,
) -> Result<ExitCode> {
    let now = now_epoch();
    match cmd {
        DefenderCommand::List { json, .. } => {
            let locked = tallies.locked(now).await.map_err(store)?;
            if !json {
                println!(
                    "{:<48} {:<10} {:<22} {:>7} {:>6}",
                    "KEY", "STANDING", "UNTIL", "STRIKES", "SCORE"
                );
            }
            for (key, t) in &locked {
                let standing = Standing::of(key.kind(), Some(t), now).code();
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"key": key.to_string(), "standing": standing, "until": format_date(t.until), "strikes": t.strikes, "score": t.score})
                    );
                } else {
                    println!(
                        "{:<48} {:<10} {:<22} {:>7} {:>6}",
                        key.to_string(),
                        standing,
                        format_date(t.until),
                        t.strikes,
                        t.score
                    );
                }
            }
            eprintln!("{} running", locked.len());
        }
        DefenderCommand::Unban { source, .. } => {
            let source = SourceKey::parse(&source).map_err(|e| anyhow!("{source:?}: {e}"))?;
            let lifted = lift(
                tallies,
                events,
                now,
                DefenderKey::Source(source),
                |k| matches!(k, DefenderKey::Pair(_, s) if *s == source),
            )
            .await?;
            eprintln!("{source}: {lifted} lifted");
        }
        DefenderCommand::Unlock { user, .. } => {
            let user = Username::parse(&user).map_err(|e| anyhow!("{user:?}: {e}"))?;
            let lifted = lift(
                tallies,
                events,
                now,
                DefenderKey::Account(user.clone()),
                |k| matches!(k, DefenderKey::Pair(u, _) if *u == user),
            )
            .await?;
            eprintln!("{user}: {lifted} lifted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Lifts `first` and every running lock whose key `also` picks (the pairs of a source or of a
/// user); how many held something.
pub(crate) async fn lift<F: FailureStore>(
    tallies: &F,
    events: &Lifts,
    now: i64,
    first: DefenderKey,
    also: impl Fn(&DefenderKey) -> bool,
) -> Result<usize> {
    let mut keys = vec![first];
    keys.extend(
        tallies
            .locked(now)
            .await
            .map_err(store)?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| also(k)),
    );
    clear_all(tallies, &keys, events).await
}

/// Clears every key; how many held something. Each one is said on standard error and published
/// as an audit event (`ferry defender`, action `lifted`).
async fn clear_all<F: FailureStore>(
    tallies: &F,
    keys: &[DefenderKey],
    events: &Lifts,
) -> Result<usize> {
    let mut lifted = 0;
    for key in keys {
        if tallies.clear(key).await.map_err(store)? {
            eprintln!("cleared {key}");
            events.publish(key).await?;
            lifted += 1;
        }
    }
    Ok(lifted)
}
