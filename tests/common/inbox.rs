//! An inbox served in-process over a board filled by a real processor (no broker): people,
//! events and an HTTP client that keeps its own cookie.

use super::run::Run;
use handoff::config::{InboxAuth, InboxSettings, Person};
use handoff::inbox::auth::{token_sha256, Auth};
use handoff::inbox::board::Board;
use handoff::inbox::publish::MemoryPublisher;
use handoff::inbox::web::App;
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::pipeline::process::Processor;
use handoff::state::SessionRecord;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

pub fn matrix() -> Arc<Matrix> {
    Arc::new(Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap())
}

/// The secret the tests' proxy sends in `X-Handoff-Proxy-Secret`.
pub const PROXY_SECRET: &str = "proxy-secret-of-the-tests";

pub fn people(auth: InboxAuth) -> InboxSettings {
    let person = |name: &str, role: &str| Person {
        name: name.into(),
        roles: vec![role.into()],
        token_sha256: Some(token_sha256(&format!("token-of-{name}"))),
        slack_user: None,
    };
    InboxSettings {
        auth,
        trusted_proxies: vec!["127.0.0.1".into()],
        proxy_secret: Some(PROXY_SECRET.into()),
        people: vec![
            person("ana", "support"),
            person("oli", "owner"),
            person("sam", "support"),
        ],
        ..InboxSettings::default()
    }
}

/// A processor and the board that follows its changelog.
pub struct Stream {
    pub run: Run,
    pub board: Arc<RwLock<Board>>,
    applied: usize,
    pub changes: watch::Sender<u64>,
}

impl Stream {
    pub fn new(m: &Arc<Matrix>) -> Stream {
        let p = Processor::new(&Default::default(), m.clone()).unwrap();
        Stream {
            run: Run::new(p),
            board: Arc::new(RwLock::new(Board::new())),
            applied: 0,
            changes: watch::channel(0).0,
        }
    }

    /// Applies the changelog records written since the last call, as the follower does.
    pub fn follow(&mut self) {
        let mut board = self.board.write().unwrap();
        let state =
            |o: &&handoff::output::Output| o.topic == handoff::output::Topic::Changelog && !o.drill;
        for o in self.run.out[self.applied..].iter().filter(state) {
            let session = String::from_utf8(o.key.clone().unwrap()).unwrap();
            let record =
                (!o.payload.is_empty()).then(|| SessionRecord::decode(&o.payload).unwrap());
            board.apply(&session, record);
        }
        self.applied = self.run.out.len();
        let g = board.generation();
        self.changes.send_replace(g);
    }
}

/// The inbox served on a free port of 127.0.0.1, on its own runtime.
pub struct Served {
    pub port: u16,
    pub published: Arc<MemoryPublisher>,
    pub app: Arc<App>,
    _stop: watch::Sender<bool>,
}

pub fn serve(m: &Arc<Matrix>, s: &Stream, settings: &InboxSettings) -> Served {
    serve_with(m, s, settings, None)
}

/// [`serve`] with Slack buttons answered.
pub fn serve_with(
    m: &Arc<Matrix>,
    s: &Stream,
    settings: &InboxSettings,
    slack: Option<handoff::inbox::web::SlackPeople>,
) -> Served {
    let published = Arc::new(MemoryPublisher::default());
    let (stop, stopping) = watch::channel(false);
    let mut app = App::new(
        s.board.clone(),
        m.clone(),
        Auth::new(settings),
        published.clone(),
        prometheus::Registry::new(),
        s.changes.subscribe(),
        Arc::new(AtomicBool::new(true)),
        stopping.clone(),
    )
    .limits_for(settings);
    app.slack = slack;
    let app = Arc::new(app);
    let served = app.clone();
    let port = super::serve_on_free_port(1, stopping, move |listener, stopped| {
        handoff::inbox::serve(listener, served, stopped)
    });
    Served {
        port,
        published,
        app,
        _stop: stop,
    }
}

/// A browser-like client: no redirects followed, its own session cookie.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    pub cookie: Option<String>,
    pub headers: Vec<(String, String)>,
}

pub struct Reply {
    pub status: u16,
    pub location: String,
    pub body: String,
    pub set_cookie: Vec<String>,
}

impl Client {
    pub fn new(port: u16) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            agent,
            base: format!("http://127.0.0.1:{port}"),
            cookie: None,
            headers: Vec::new(),
        }
    }

    pub fn signed_in(port: u16, name: &str) -> Client {
        let mut c = Client::new(port);
        let r = c.post("/sign-in", &[("token", &format!("token-of-{name}"))]);
        assert_eq!(r.status, 303, "{}", r.body);
        let set = &r.set_cookie[0];
        c.cookie = Some(set.split(';').next().unwrap().to_string());
        c
    }

    fn reply(mut r: ureq::http::Response<ureq::Body>) -> Reply {
        let header = |n: &str| -> Vec<String> {
            r.headers()
                .get_all(n)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect()
        };
        let location = header("location").pop().unwrap_or_default();
        let set_cookie = header("set-cookie");
        let body = r.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status: r.status().as_u16(),
            location,
            body,
            set_cookie,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        let mut req = self.agent.get(&format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        Client::reply(req.call().unwrap())
    }

    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.post(&format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        Client::reply(req.send_form(form.iter().copied()).unwrap())
    }

    /// The form token in a page.
    pub fn form_token(page: &str) -> String {
        let at = page.find("name=\"form_token\" value=\"").expect("a form") + 25;
        page[at..at + 64].to_string()
    }
}
