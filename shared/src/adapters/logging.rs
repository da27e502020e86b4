//! Lambda log set-up, shared by every function: JSON lines for CloudWatch, filtered by
//! `RUST_LOG`, with the libraries that would print raw events or HTTP bodies (the password, the
//! salt) held at `info` whatever it says, however specific its directives.

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Targets whose `debug`/`trace` output can carry an invocation payload or a service response.
const CAPPED: [&str; 6] = [
    "lambda_runtime",
    "lambda_runtime_api_client",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "hyper",
];

/// A capped target or any module below it (`lambda_runtime::layers::api_response`).
fn is_capped(target: &str) -> bool {
    CAPPED.iter().any(|capped| {
        target
            .strip_prefix(capped)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Lets through only what the cap allows: `info` and above for [`CAPPED`] targets.
fn within_cap(meta: &Metadata<'_>) -> bool {
    !(is_capped(meta.target()) && *meta.level() > Level::INFO)
}

/// The filter for `rust_log` (default `info`) AND the cap. The two are separate filters that must
/// both agree, because inside one `EnvFilter` a more specific directive wins: a cap written as
/// `lambda_runtime=info` lost to `lambda_runtime::layers::api_response=trace`, which brought back
/// the runtime's raw-event line. No value of `RUST_LOG` can widen the cap now.
pub fn filter<S>(rust_log: Option<&str>) -> impl Filter<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let env =
        EnvFilter::try_new(rust_log.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    env.and(filter_fn(within_cap))
}

pub fn init(rust_log: Option<&str>) {
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_filter(filter(rust_log));
    tracing_subscriber::registry().with(json).init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(rust_log: &str) -> String {
        let out = Capture::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(move || writer.clone())
                .with_filter(filter(Some(rust_log))),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "the-raw-event", "raw");
            tracing::debug!(target: "aws_smithy_runtime::client", body = "the-salt", "body");
            tracing::trace!(target: "auth", "own trace line");
            tracing::info!(target: "lambda_runtime", "runtime info line");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn even_a_trace_filter_never_lets_raw_events_or_service_bodies_through() {
        for rust_log in [
            "trace",
            "lambda_runtime=trace,aws_smithy_runtime=trace",
            "debug",
            // More specific than any cap on the crate: this one brought the raw event back.
            "lambda_runtime::layers::api_response=trace",
            "info,lambda_runtime::layers=trace,aws_smithy_runtime::client=debug",
            "[{body}]=trace",
        ] {
            let out = logged(rust_log);
            assert!(!out.contains("the-raw-event"), "{rust_log}: {out}");
            assert!(!out.contains("the-salt"), "{rust_log}: {out}");
        }
        for rust_log in ["trace", "debug", "info,lambda_runtime::layers=trace"] {
            assert!(logged(rust_log).contains("runtime info line"), "{rust_log}");
        }
        assert!(logged("trace").contains("own trace line"));
    }

    #[test]
    fn a_bad_filter_falls_back_to_info() {
        let out = logged("=,,[[[");
        assert!(out.contains("runtime info line"));
        assert!(!out.contains("own trace line"));
    }
}
