//! Lambda log set-up, shared by every function: JSON lines for CloudWatch, filtered by
//! `RUST_LOG`, with the libraries that would print raw events or HTTP bodies (the password, the
//! salt) held at `info` whatever it says.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

/// Targets whose `debug`/`trace` output can carry an invocation payload or a service response.
const CAPPED: [&str; 6] = [
    "lambda_runtime",
    "lambda_runtime_api_client",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "hyper",
];

/// The filter for `rust_log` (default `info`), with [`CAPPED`] applied last so it wins.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    let mut filter =
        EnvFilter::try_new(rust_log.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    for target in CAPPED {
        if let Ok(d) = format!("{target}=info").parse::<Directive>() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

pub fn init(rust_log: Option<&str>) {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter(rust_log))
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .init();
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
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter(Some(rust_log)))
            .with_writer(move || writer.clone())
            .finish();
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
        ] {
            let out = logged(rust_log);
            assert!(!out.contains("the-raw-event"), "{rust_log}: {out}");
            assert!(!out.contains("the-salt"), "{rust_log}: {out}");
            assert!(out.contains("runtime info line"), "{rust_log}: {out}");
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
