//! The browser (headless Chromium over WebDriver, driven by fantoccini) and the inbox process,
//! for the tests that answer escalations as a person does.
#![allow(dead_code)]

use fantoccini::{ClientBuilder, Locator};
use handoff::sim::broker::free_port;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// chromedriver on a free port, killed on drop.
pub struct Driver(pub Child, pub u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn chromedriver() -> Driver {
    let bin = super::needs::chromedriver();
    let port = free_port();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let start = Instant::now();
    while ureq::get(&format!("http://127.0.0.1:{port}/status"))
        .call()
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver(child, port)
}

/// Starts `handoff inbox`, logging to `log`.
pub fn spawn_inbox(config: &std::path::Path, log: &std::path::Path) -> Child {
    super::kafka::spawn_command("inbox", config, log)
}

/// Starts `handoff run` and `handoff inbox` with `config`, logging to `dir`/run.log and
/// inbox.log, and waits until the processor has its partitions and the inbox has caught up.
pub fn run_and_inbox(config: &std::path::Path, dir: &std::path::Path) -> (Child, Child) {
    let run = super::kafka::spawn(config, &dir.join("run.log"));
    let inbox = spawn_inbox(config, &dir.join("inbox.log"));
    let within = Duration::from_secs(60);
    super::kafka::wait_log(&dir.join("run.log"), "partitions assigned", within);
    super::kafka::wait_log(
        &dir.join("inbox.log"),
        "caught up with the changelog",
        within,
    );
    (run, inbox)
}

pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn screenshots() -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub async fn session(driver: u16) -> fantoccini::Client {
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"]
        }
    });
    let caps = caps.as_object().unwrap().clone();
    ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver}"))
        .await
        .expect("a browser session")
}

/// The text of the first element matching `css`.
pub async fn text_of(c: &fantoccini::Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Saves what the browser shows to target/screenshots/NAME.
pub async fn shot(c: &fantoccini::Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(name), png).unwrap();
}

pub async fn sign_in(c: &fantoccini::Client, port: u16, name: &str) {
    c.goto(&format!("http://127.0.0.1:{port}/sign-in"))
        .await
        .unwrap();
    let token = format!("token-of-{name}");
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(&token)
        .await
        .unwrap();
    c.find(Locator::Css("button.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Clicks the element at CSS `selector`, finding it again when the list refreshed between the
/// find and the click (the inbox's list refreshes itself every second).
pub async fn click_fresh(c: &fantoccini::Client, selector: &str) {
    for _ in 0..20 {
        let clicked = match c.find(Locator::Css(selector)).await {
            Ok(e) => e.click().await,
            Err(e) => Err(e),
        };
        match clicked {
            Ok(()) => return,
            Err(e) if format!("{e:?}").contains("StaleElementReference") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("clicking {selector}: {e}"),
        }
    }
    panic!("{selector} went stale twenty times in a row");
}
