//! A gateway served in-process: what agents submit is kept in memory and decided by a real
//! processor (no broker), whose verdicts are fed into the gateway's window as its follower
//! would feed them. A plain HTTP/1.1 client speaks to it.
#![allow(dead_code)]

use super::run::Run;
use handoff::config::{GatewayAgent, GatewaySettings, Settings};
use handoff::event::{AgentAction, HumanDecision};
use handoff::gateway::submit::MemorySubmitter;
use handoff::gateway::web::App;
use handoff::gateway::window::Window;
use handoff::gateway::GatewayMetrics;
use handoff::inbox::auth::token_sha256;
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::pipeline::process::Processor;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Two agents with a key each: `key-a` acts as `agent-a`, `key-b` as `agent-b` (the agents of
/// a [`Gate`] unless its settings name others).
pub fn agents() -> Vec<GatewayAgent> {
    ["a", "b"]
        .iter()
        .map(|x| GatewayAgent {
            name: format!("fleet {x}"),
            key_sha256: token_sha256(&format!("key-{x}")),
            agent_ids: vec![format!("agent-{x}")],
        })
        .collect()
}

/// A served gateway and the processor behind it.
pub struct Gate {
    pub port: u16,
    pub app: Arc<App>,
    pub submitted: Arc<MemorySubmitter>,
    pub window: Arc<Mutex<Window>>,
    pub run: Run,
    decided: usize,
    applied: usize,
    stop: watch::Sender<bool>,
}

impl Gate {
    pub fn new(gateway: GatewaySettings) -> Gate {
        Gate::with(Settings {
            gateway,
            ..Settings::default()
        })
    }

    /// A gateway with `settings` (its agents: [`agents`] unless they name some).
    pub fn with(mut settings: Settings) -> Gate {
        if settings.gateway.agents.is_empty() {
            settings.gateway.agents = agents();
        }
        let m =
            Arc::new(Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap());
        let run = Run::new(Processor::new(&settings, m).unwrap());
        let window = Arc::new(Mutex::new(Window::new(settings.gateway.window)));
        let submitted = Arc::new(MemorySubmitter::default());
        let registry = prometheus::Registry::new();
        let metrics = GatewayMetrics::register(&registry);
        let (stop, stopping) = watch::channel(false);
        let app = App::new(
            &settings,
            window.clone(),
            submitted.clone(),
            registry,
            metrics,
        )
        .stopping(stopping.clone());
        let app = Arc::new(app);
        let served = app.clone();
        let port = super::serve_on_free_port(2, stopping, move |listener, stopped| {
            handoff::gateway::serve(listener, served, stopped)
        });
        Gate {
            port,
            app,
            submitted,
            window,
            run,
            decided: 0,
            applied: 0,
            stop,
        }
    }

    /// Decides what was submitted since the last call and feeds the verdicts to the window.
    pub fn pump(&mut self, now: i64) {
        let actions: Vec<AgentAction> =
            self.submitted.actions.lock().unwrap()[self.decided..].to_vec();
        self.decided += actions.len();
        for a in &actions {
            self.run.action(a, now);
        }
        self.feed();
    }

    /// A person's answer, decided, its verdicts fed to the window.
    pub fn decide(&mut self, d: &HumanDecision, now: i64) {
        self.run.decide(d, now);
        self.feed();
    }

    fn feed(&mut self) {
        let verdicts = self.run.verdicts();
        let mut w = self.window.lock().unwrap();
        for v in &verdicts[self.applied..] {
            w.apply(v.clone());
        }
        self.applied = verdicts.len();
    }

    /// Ends the server's waits and streams (as a shutdown does).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// An answer: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request (`Connection: close`); the body is written on its own thread so that
/// an early answer to a large body is read.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut w = s.try_clone().unwrap();
    let body = body.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&body);
    });
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let _ = writer.join();
    parse(&raw)
}

fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        unchunk(body)
    } else {
        body.to_string()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `GET path` with `key`.
pub fn get(port: u16, path: &str, key: &str) -> Answer {
    let auth = format!("Bearer {key}");
    request(port, "GET", path, &[("Authorization", &auth)], b"")
}

/// `POST /v1/actions` of `body` with `key`.
pub fn submit(port: u16, key: &str, body: &[u8]) -> Answer {
    let auth = format!("Bearer {key}");
    request(
        port,
        "POST",
        "/v1/actions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
}

/// A server-sent event stream: reads events (`event`, `id`, `data`) as they come.
pub struct Events {
    reader: BufReader<TcpStream>,
    pub status: u16,
}

impl Events {
    pub fn open(port: u16, path: &str, key: &str) -> Events {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        loop {
            let mut l = String::new();
            reader.read_line(&mut l).unwrap();
            if l == "\r\n" || l.is_empty() {
                break;
            }
        }
        Events { reader, status }
    }

    /// The next event: (id, data as JSON); `None` when the stream ends.
    pub fn next(&mut self) -> Option<(String, serde_json::Value)> {
        let (mut id, mut data) = (String::new(), String::new());
        loop {
            let mut l = String::new();
            if self.reader.read_line(&mut l).ok()? == 0 {
                return None;
            }
            let l = l.trim_end_matches(['\r', '\n']);
            // Chunk sizes of the chunked encoding are lines of hex digits alone.
            if let Some(v) = l.strip_prefix("id:") {
                id = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("data:") {
                data.push_str(v.trim());
            } else if l.is_empty() && !data.is_empty() {
                return Some((id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
}

/// Starts `handoff gateway`, logging to `log`.
pub fn spawn_gateway(config: &std::path::Path, log: &std::path::Path) -> Child {
    super::kafka::spawn_command("gateway", config, log)
}

/// A `[gateway]` section on `port` with the agents of [`agents`].
pub fn gateway_section(port: u16) -> String {
    let agent = |x: &str| {
        format!(
            "[[gateway.agents]]\nname = \"fleet {x}\"\nkey_sha256 = \"{}\"\nagent_ids = [\"agent-{x}\"]\n",
            token_sha256(&format!("key-{x}"))
        )
    };
    format!(
        "[gateway]\nbind = \"127.0.0.1:{port}\"\n{}{}",
        agent("a"),
        agent("b")
    )
}

/// A `[trust]` section with a new signing key: the processors sign approval receipts with it,
/// and the gateway publishes it and checks receipts against it.
pub fn receipts_section() -> String {
    let key = handoff::trust::Signer::generate("processor-1");
    format!(
        "[trust]\nsigning_key = '''\n{}'''\nsigning_key_id = \"processor-1\"\n\
         [[trust.published_keys]]\nid = \"processor-1\"\npublic_key = \"{}\"\n",
        key.to_pem(),
        key.public_key()
    )
}

/// Waits until the gateway on `port` answers `/readyz` with 200.
pub fn wait_ready(port: u16, within: Duration) {
    super::browser::wait_until(&format!("gateway on {port} ready"), within, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && request(port, "GET", "/readyz", &[], b"").status == 200
    });
}
