//! A minimal Lambda Runtime API (the HTTP interface a Lambda function polls), enough to run a
//! real function binary outside Lambda: it hands out queued events on `GET …/invocation/next`
//! and collects what the function posts back. Used by the end-to-end test of the `auth` binary
//! and by the cold-start benchmark.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// What the function answered to one invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    pub request_id: String,
    /// `true` for `…/response`, `false` for `…/error` (a Lambda error).
    pub ok: bool,
    pub body: Vec<u8>,
    pub at: Instant,
}

#[derive(Debug)]
struct Shared {
    events: Mutex<Receiver<(String, Vec<u8>)>>,
    answers: Mutex<Sender<Answer>>,
    first_poll: Mutex<Option<Instant>>,
    init_error: Mutex<Option<Vec<u8>>>,
}

/// The runtime API server. It lives until the test process ends.
#[derive(Debug)]
pub struct RuntimeApi {
    addr: SocketAddr,
    events: Sender<(String, Vec<u8>)>,
    answers: Receiver<Answer>,
    shared: Arc<Shared>,
    next_id: u64,
}

impl RuntimeApi {
    /// Listens on a free 127.0.0.1 port.
    pub fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (events_tx, events_rx) = channel();
        let (answers_tx, answers_rx) = channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(events_rx),
            answers: Mutex::new(answers_tx),
            first_poll: Mutex::new(None),
            init_error: Mutex::new(None),
        });
        let accept_shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&accept_shared);
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        Ok(Self {
            addr,
            events: events_tx,
            answers: answers_rx,
            shared,
            next_id: 0,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// A command that runs the function binary `bin` against this API, with the variables the
    /// Lambda runtime requires; the caller adds the function's own configuration.
    pub fn function_command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.env("AWS_LAMBDA_RUNTIME_API", self.address())
            .env(
                "AWS_LAMBDA_FUNCTION_NAME",
                bin.file_name()
                    .map_or("function".into(), |n| n.to_string_lossy())
                    .as_ref(),
            )
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
        cmd
    }

    /// When the function first asked for work (it is ready to serve), if it has.
    pub fn first_poll(&self) -> Option<Instant> {
        *self
            .shared
            .first_poll
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// What the function reported through `/init/error`, if anything.
    pub fn init_error(&self) -> Option<Vec<u8>> {
        self.shared
            .init_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Queues one event and waits for its answer.
    pub fn invoke(&mut self, payload: &[u8], timeout: Duration) -> Result<Answer> {
        self.next_id += 1;
        let id = format!("req-{}", self.next_id);
        self.events.send((id.clone(), payload.to_vec()))?;
        let answer = self
            .answers
            .recv_timeout(timeout)
            .context("no answer from the function in time")?;
        if answer.request_id != id {
            bail!("answer for {} while waiting for {id}", answer.request_id);
        }
        Ok(answer)
    }

    /// Waits until the function polls for its first event.
    pub fn wait_ready(&self, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = self.first_poll() {
                return Ok(t);
            }
            if Instant::now() > deadline {
                bail!("the function never polled for work");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A binary of the workspace built in the same profile as the running executable
/// (`target/<profile>/NAME`, found from this process's own path). Test binaries live one level
/// deeper, in `deps/`, and are handled too.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("executable has no folder")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("deps has no parent")?;
    }
    let bin = dir.join(name);
    if !bin.exists() {
        bail!(
            "{} is missing: build it first (the scripts in scripts/ do)",
            bin.display()
        );
    }
    Ok(bin)
}

fn serve(stream: TcpStream, shared: &Shared) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;

        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            shared
                .first_poll
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(Instant::now);
            // Blocks until an event is queued, as the real API long-polls.
            let next = shared
                .events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .recv();
            let Ok((id, payload)) = next else {
                return Ok(());
            };
            let deadline_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() + 30_000);
            write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:auth\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\
                 Content-Length: {}\r\n\r\n",
                payload.len()
            )?;
            writer.write_all(&payload)?;
        } else if method == "POST" && path.contains("/runtime/invocation/") {
            let ok = path.ends_with("/response");
            let id = path.split('/').rev().nth(1).unwrap_or_default().to_owned();
            let _ = shared
                .answers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(Answer {
                    request_id: id,
                    ok,
                    body,
                    at: Instant::now(),
                });
            writer.write_all(
                b"HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n",
            )?;
        } else if method == "POST" && path.ends_with("/runtime/init/error") {
            *shared.init_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
            writer.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")?;
        } else {
            writer.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
        }
        writer.flush()?;
    }
}
