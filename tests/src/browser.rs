//! Headless Chromium driven through WebDriver (Debian's `chromium` and `chromium-driver`, which
//! `scripts/setup` installs), with blocking methods so that a test reads as a person's steps. A
//! [`Browser`] starts its own `chromedriver` on a free loopback port and stops it when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a step waits for the page before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A browser session.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Client,
    driver: Child,
    driver_url: String,
    /// Where screenshots go (`target/browser-screenshots`).
    pub screenshots: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether this machine has Chromium and its WebDriver.
pub fn available() -> bool {
    Path::new("/usr/bin/chromedriver").exists() && Path::new("/usr/bin/chromium").exists()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with its performance log on.
    pub fn start() -> Self {
        assert!(
            available(),
            "the browser tests need /usr/bin/chromium and /usr/bin/chromedriver: run scripts/setup"
        );
        let port = free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver_url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while reqwest::blocking::get(format!("{driver_url}/status")).is_err() {
            assert!(started.elapsed() < PATIENCE, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync"],
            },
            "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = runtime
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&driver_url),
            )
            .expect("a WebDriver session");
        let screenshots = crate::workspace_root().join("target/browser-screenshots");
        std::fs::create_dir_all(&screenshots).unwrap();
        Self {
            runtime,
            client,
            driver,
            driver_url,
            screenshots,
        }
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.runtime.block_on(self.client.goto(url)).unwrap();
    }

    /// Reloads the page.
    pub fn refresh(&self) {
        self.runtime.block_on(self.client.refresh()).unwrap();
    }

    /// Runs `script` in the page (its `arguments` are `args`) and answers what it returns.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.runtime
            .block_on(self.client.execute(script, args))
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Runs an async `script`, which calls `arguments[arguments.length - 1]` with its answer.
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.runtime
            .block_on(self.client.execute_async(script, args))
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Waits until the JavaScript expression `condition` is truthy; answers how long it took.
    pub fn wait_until(&self, condition: &str) -> Duration {
        let started = Instant::now();
        let script = format!("return Boolean({condition});");
        loop {
            if self.execute(&script, Vec::new()) == Value::Bool(true) {
                return started.elapsed();
            }
            if started.elapsed() > PATIENCE {
                let page = self.execute("return document.body.innerText;", Vec::new());
                self.screenshot("timeout");
                panic!("waited {PATIENCE:?} for `{condition}`; the page says:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for an element matching `css` and answers it.
    fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.wait_until(&format!("document.querySelector({})", json!(css)));
        self.runtime
            .block_on(self.client.find(Locator::Css(css)))
            .unwrap()
    }

    /// Opens the web app at `url` and signs in with `token` (this tab only).
    pub fn sign_in(&self, url: &str, token: &str) {
        self.goto(&format!("{url}/"));
        self.execute("sessionStorage.clear();", Vec::new());
        self.refresh();
        self.fill("#token", token);
        self.click("#sign-in button[type=submit]");
        self.wait_until("document.body.dataset.ready === 'true'");
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) {
        let element = self.element(css);
        self.runtime.block_on(element.click()).unwrap();
    }

    /// Types `text` into the element matching `css` (after what it holds).
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.runtime.block_on(element.send_keys(text)).unwrap();
    }

    /// Clears the field matching `css` and types `text` into it.
    pub fn fill(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.runtime.block_on(element.clear()).unwrap();
        self.runtime.block_on(element.send_keys(text)).unwrap();
    }

    /// Chooses the option of value `value` in the `<select>` matching `css`.
    pub fn select(&self, css: &str, value: &str) {
        let element = self.element(css);
        self.runtime
            .block_on(element.select_by_value(value))
            .unwrap_or_else(|err| panic!("no option `{value}` in {css}: {err}"));
    }

    /// The text of the element matching `css`.
    pub fn text(&self, css: &str) -> String {
        let element = self.element(css);
        self.runtime.block_on(element.text()).unwrap()
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.execute(
            &format!("return document.querySelectorAll({}).length;", json!(css)),
            Vec::new(),
        )
        .as_u64()
        .unwrap() as usize
    }

    /// Saves a screenshot of the page as `NAME.png` under [`Browser::screenshots`].
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.runtime.block_on(self.client.screenshot()).unwrap();
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Every URL the browser requested since the last call (Chromium's performance log).
    pub fn requested_urls(&self) -> Vec<String> {
        let session = self
            .runtime
            .block_on(self.client.session_id())
            .unwrap()
            .expect("a session");
        let log: Value = reqwest::blocking::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({"type": "performance"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let mut urls = Vec::new();
        for entry in log["value"].as_array().into_iter().flatten() {
            let Some(message) = entry["message"].as_str() else {
                continue;
            };
            let message: Value = serde_json::from_str(message).unwrap_or_default();
            if message["message"]["method"] == "Network.requestWillBeSent"
                && let Some(url) = message["message"]["params"]["request"]["url"].as_str()
            {
                urls.push(url.to_owned());
            }
        }
        urls
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(client.close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
