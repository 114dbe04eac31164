//! Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`):
//! one browser per test, pages opened as targets, cookies set, scripts evaluated, viewports
//! emulated, screenshots taken, and a page's load awaited with a time limit. Used by admin_browser.rs and screenshots.rs.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// Debian's Chromium (or another Chrome) where installed.
pub fn chromium() -> Option<&'static str> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|path| std::path::Path::new(path).exists())
}

/// Chromium, or `None` outside CI when it is not installed (the caller skips).
pub fn chromium_or_skip() -> Option<&'static str> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required in CI (apt-get install chromium)"
        );
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
    }
    found
}

/// A pipe whose ends are close-on-exec and numbered 10 or above (so that placing them at
/// 3 and 4 in the child never clobbers one with the other).
fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array; fcntl duplicates fds we own.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe2");
        let high = fds.map(|fd| libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10));
        libc::close(fds[0]);
        libc::close(fds[1]);
        (high[0], high[1])
    }
}

/// Chromium with `--remote-debugging-pipe`: it reads commands on fd 3 and writes on fd 4,
/// each message JSON ended by a NUL byte.
pub struct DevTools {
    child: Child,
    to_browser: File,
    from_browser: BufReader<File>,
    next_id: u64,
}

impl DevTools {
    pub fn start(browser: &str, profile: &std::path::Path) -> DevTools {
        let (command_read, command_write) = pipe();
        let (event_read, event_write) = pipe();
        let mut cmd = Command::new(browser);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--font-render-hinting=none",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe dup2 calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(command_read, 3) < 0 || libc::dup2(event_write, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("chromium starts");
        // SAFETY: these ends are ours alone; the child's copies were closed on exec.
        let (to_browser, from_browser) = unsafe {
            libc::close(command_read);
            libc::close(event_write);
            (File::from_raw_fd(command_write), File::from_raw_fd(event_read))
        };
        DevTools {
            child,
            to_browser,
            from_browser: BufReader::new(from_browser),
            next_id: 0,
        }
    }

    /// Sends `method` (to the page `session` when given) and returns its result, skipping
    /// events and other answers.
    pub fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.answer(session, method, params)
            .unwrap_or_else(|answer| panic!("{method}: {answer}"))
    }

    /// [`DevTools::send`], with the browser's error answer as `Err`.
    fn answer(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.to_browser.write_all(&bytes).expect("command sent");
        loop {
            let mut raw = Vec::new();
            let n = self.from_browser.read_until(0, &mut raw).expect("answer read");
            assert!(n > 0, "chromium closed the pipe while {method} was pending");
            raw.pop();
            let answer: Value = serde_json::from_slice(&raw).expect("JSON from chromium");
            if answer["id"] == id {
                return match answer.get("error") {
                    Some(_) => Err(answer),
                    None => Ok(answer["result"].clone()),
                };
            }
        }
    }

    /// Opens a blank page and returns its session.
    pub fn open_page(&mut self) -> String {
        let target = self.send(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.send(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        attached["sessionId"].as_str().expect("session").to_string()
    }

    /// Evaluates `expression` in the page and returns its value.
    pub fn eval(&mut self, session: &str, expression: &str) -> Value {
        let result = self.send(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is true or `limit` passes. While the page navigates (after
    /// a click on a link), the browser refuses to evaluate: that reads as "not yet".
    pub fn wait_for(&mut self, session: &str, expression: &str, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            let params = json!({"expression": expression, "returnByValue": true});
            match self.answer(Some(session), "Runtime.evaluate", params) {
                Ok(result) if result["result"]["value"] == json!(true) => return true,
                Ok(_) => {}
                Err(answer) if navigating(&answer) => {}
                Err(answer) => panic!("Runtime.evaluate: {answer}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Loads `url` and waits until that document has loaded.
    pub fn navigate(&mut self, session: &str, url: &str) {
        self.send(Some(session), "Page.navigate", json!({"url": url}));
        let check = format!("document.readyState === 'complete' && location.href === {}", json!(url));
        assert!(
            self.wait_for(session, &check, Duration::from_secs(20)),
            "{url} did not load"
        );
    }

    /// Starts loading `url` and waits up to `limit` for that document's `load` lifecycle
    /// event, reading the pipe only when it has something: a page that cannot load (its
    /// request waiting for a connection) answers false instead of blocking the test.
    pub fn load_within(&mut self, session: &str, url: &str, limit: Duration) -> bool {
        self.send(Some(session), "Page.enable", json!({}));
        self.send(
            Some(session),
            "Page.setLifecycleEventsEnabled",
            json!({"enabled": true}),
        );
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": "Page.navigate", "params": {"url": url}, "sessionId": session});
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.to_browser.write_all(&bytes).expect("command sent");
        let deadline = Instant::now() + limit;
        let (mut ours, mut loaded) = (None::<String>, Vec::<String>::new());
        while let Some(message) = self.message_before(deadline) {
            if message["id"] == id {
                assert!(message.get("error").is_none(), "Page.navigate: {message}");
                ours = message["result"]["loaderId"].as_str().map(str::to_string);
            } else if message["method"] == "Page.lifecycleEvent"
                && message["sessionId"] == session
                && message["params"]["name"] == "load"
            {
                loaded.extend(message["params"]["loaderId"].as_str().map(str::to_string));
            }
            if ours.as_ref().is_some_and(|loader| loaded.contains(loader)) {
                return true;
            }
        }
        false
    }

    /// The next message from the browser, or `None` once `deadline` passes without one.
    fn message_before(&mut self, deadline: Instant) -> Option<Value> {
        while !self.from_browser.buffer().contains(&0) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut fd = libc::pollfd {
                fd: self.from_browser.get_ref().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
            // SAFETY: one valid pollfd for the duration of the call.
            if unsafe { libc::poll(&mut fd, 1, ms) } > 0 {
                break;
            }
        }
        let mut raw = Vec::new();
        let n = self.from_browser.read_until(0, &mut raw).expect("message read");
        assert!(n > 0, "chromium closed the pipe");
        raw.pop();
        Some(serde_json::from_slice(&raw).expect("JSON from chromium"))
    }

    /// Replaces the browser's cookies with `cookies` (name, value) for `origin`.
    pub fn set_cookies(&mut self, origin: &str, cookies: &[(&str, &str)]) {
        self.send(None, "Storage.clearCookies", json!({}));
        let list: Vec<Value> = cookies
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value, "url": origin}))
            .collect();
        self.send(None, "Storage.setCookies", json!({"cookies": list}));
    }

    /// Emulates a screen `width` × `height` CSS pixels (`mobile`: a phone, touch and all).
    pub fn viewport(&mut self, session: &str, width: u32, height: u32, mobile: bool) {
        self.send(
            Some(session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile}),
        );
    }

    /// A PNG of the whole page (beyond the viewport).
    pub fn screenshot(&mut self, session: &str) -> Vec<u8> {
        let metrics = self.send(Some(session), "Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(800.0);
        let height = size["height"].as_f64().unwrap_or(600.0).min(8000.0);
        let shot = self.send(
            Some(session),
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG")
    }
}

impl Drop for DevTools {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the browser's error answer says the page was between documents.
fn navigating(answer: &Value) -> bool {
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    ["navigated or closed", "context was destroyed", "Cannot find context"]
        .iter()
        .any(|sign| message.contains(sign))
}
