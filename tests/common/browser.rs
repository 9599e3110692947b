//! Real Chromium, driven over the DevTools protocol (CDP) through a pipe, inside a network
//! namespace that has only loopback: there it gathers 127.0.0.1 candidates and nothing
//! else, and no packet can leave for another address. The relay and terminal clients of
//! a browser test run in the same namespace (see `shared/browser-notes.md`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::timeout;

use super::netns::Loopback;
use super::{WAIT, note};

/// What a browser test needs, or why it is skipped (said in the test notes): Chromium
/// installed (`scripts/test` installs it) and the right to make a namespace (root).
pub fn prepare(test: &str) -> Option<Loopback> {
    if std::process::Command::new("chromium").arg("--version").output().is_err() {
        note(&format!("SKIPPED {test}: no chromium (apt-get install chromium)"));
        return None;
    }
    match Loopback::create() {
        Ok(ns) => Some(ns),
        Err(e) => {
            note(&format!("SKIPPED {test}: cannot make a network namespace ({e})"));
            None
        }
    }
}

/// A headless Chromium process.
pub struct Browser {
    child: Child,
    commands: ChildStdin,
    replies: BufReader<ChildStdout>,
    next_id: u64,
    profile: PathBuf,
}

/// One tab, as CDP knows it.
pub struct Page {
    target: String,
    pub(super) session: String,
}

impl Browser {
    /// Starts Chromium in namespace `ns`. Its microphone is Chromium's fake device (a
    /// beep), granted without asking.
    pub async fn launch(ns: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static MADE: AtomicU32 = AtomicU32::new(0);
        let profile = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "chromium-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        ));
        let flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--allow-loopback-in-peer-connection",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-pipe",
        ];
        // CDP over a pipe: Chromium reads commands on fd 3 and writes replies on fd 4, so
        // the test needs no port inside the namespace.
        let script = format!(
            "exec chromium {} --user-data-dir={} about:blank 3<&0 4>&1 </dev/null >/dev/null",
            flags.join(" "),
            profile.display()
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "bash", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        let commands = child.stdin.take().expect("chromium's command pipe");
        let replies = BufReader::new(child.stdout.take().expect("chromium's reply pipe"));
        Self { child, commands, replies, next_id: 0, profile }
    }

    /// Sends one command and waits for its reply, passing over events meanwhile.
    pub(super) async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let reply = self.try_call(session, method, params).await;
        reply.unwrap_or_else(|error| panic!("{method} failed: {error}"))
    }

    /// [`Browser::call`], with Chromium's error as the `Err`.
    async fn try_call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        let mut bytes = command.to_string().into_bytes();
        bytes.push(0);
        self.commands.write_all(&bytes).await.expect("write to chromium");
        let read = async {
            loop {
                let mut raw = Vec::new();
                let n = self.replies.read_until(0, &mut raw).await.expect("read from chromium");
                assert!(n > 0, "chromium exited during {method}");
                raw.pop();
                let reply: Value = serde_json::from_slice(&raw).expect("chromium speaks JSON");
                if reply["id"] == id {
                    return reply;
                }
            }
        };
        let reply =
            timeout(WAIT, read).await.unwrap_or_else(|_| panic!("no answer to {method} within {WAIT:?}"));
        match reply.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(reply["result"].clone()),
        }
    }

    /// Opens `url` in a new tab.
    pub async fn open(&mut self, url: &str) -> Page {
        let target = self.call(None, "Target.createTarget", json!({"url": url})).await["targetId"]
            .as_str()
            .expect("a target id")
            .to_owned();
        let attached =
            self.call(None, "Target.attachToTarget", json!({"targetId": target, "flatten": true})).await;
        let session = attached["sessionId"].as_str().expect("a session id").to_owned();
        Page { target, session }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let params = json!({"expression": expression, "awaitPromise": true, "returnByValue": true});
        let result = match self.try_call(Some(&page.session), "Runtime.evaluate", params).await {
            Ok(result) => result,
            // A page reloading has no context to evaluate in for a moment: as an exception,
            // `wait_for` asks again.
            Err(error) if error["message"].as_str().is_some_and(|m| m.contains("navigated or closed")) => {
                return json!({"exception": error["message"].clone()});
            }
            Err(error) => panic!("Runtime.evaluate failed: {error}"),
        };
        if let Some(exception) = result.get("exceptionDetails") {
            return json!({"exception": exception["exception"]["description"].clone()});
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy in the page and returns its value; `what` names
    /// it in the failure, which shows the page's text.
    pub async fn wait_for(&mut self, page: &Page, expression: &str, what: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = self.eval(page, expression).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Object(o) => !o.contains_key("exception"),
                Value::Array(_) | Value::Bool(true) => true,
            };
            if truthy {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                let text = self.eval(page, "document.body ? document.body.innerText : ''").await;
                panic!("no {what} in the page within {WAIT:?} (last: {value}); the page shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the web client in `page` shows its relay connection in `state`
    /// (`ok`, `lost`, ...).
    pub async fn relay_state(&mut self, page: &Page, state: &str) {
        let query = format!("document.querySelector('[data-testid=relay-state][data-state={state}]')");
        self.wait_for(page, &query, &format!("relay state {state}")).await;
    }

    /// Closes a tab, as a person closing it would.
    pub async fn close(&mut self, page: Page) {
        self.call(None, "Target.closeTarget", json!({"targetId": page.target})).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A JavaScript string literal for `text`.
pub fn js(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialise")
}
