//! The refund form in a real headless Chromium, driven over the DevTools protocol on a pipe:
//! the session cookie is set, the payment's admin page loads, the form is filled and sent,
//! `static/admin.js` posts it to the API as JSON with the cookie, and the reloaded page
//! shows the refund. Skipped (saying so) where Chromium is not installed, as in browser.rs.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{Value, json};
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::helpers::{eventually, scratch_dir, spawn_app};

fn chromium() -> Option<&'static str> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|path| std::path::Path::new(path).exists())
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
struct DevTools {
    child: Child,
    to_browser: File,
    from_browser: BufReader<File>,
    next_id: u64,
}

impl DevTools {
    fn start(browser: &str, profile: &std::path::Path) -> DevTools {
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
    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
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
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    fn eval(&mut self, session: &str, expression: &str) -> Value {
        let result = self.send(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is true or `limit` passes.
    fn wait_for(&mut self, session: &str, expression: &str, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.eval(session, expression) == json!(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for DevTools {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_refund_form_refunds_through_the_api_in_a_real_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required in CI (apt-get install chromium)"
        );
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
        return;
    };
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let no = app.donate("20.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.sandbox_pay(&no).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.get(&format!("/api/payments/{no}")).await.json()["status"] == "paid"
        })
        .await
    );

    let origin = app.url("");
    let page = app.url(&format!("/admin/payments/{no}"));
    let profile = scratch_dir("chromium-admin");
    let token = admin.clone();
    let dir = profile.clone();
    let shown = tokio::task::spawn_blocking(move || {
        let mut tools = DevTools::start(browser, &dir);
        tools.send(
            None,
            "Storage.setCookies",
            json!({"cookies": [{"name": "zhifu_session", "value": token, "url": origin,
                                "httpOnly": true, "sameSite": "Strict"}]}),
        );
        let target = tools.send(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = tools.send(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let session = attached["sessionId"].as_str().expect("session").to_string();
        tools.send(Some(&session), "Page.navigate", json!({"url": page}));
        let loaded = tools.wait_for(
            &session,
            "document.readyState === 'complete' && !!document.getElementById('refund-form')",
            Duration::from_secs(20),
        );
        assert!(loaded, "the admin page with its refund form did not load");
        tools.eval(
            &session,
            "window.confirm = () => true;
             document.getElementById('refund-amount').value = '5.00';
             document.getElementById('refund-reason').value = '浏览器退款';
             document.getElementById('refund-form').requestSubmit();
             true",
        );
        // The script reloads the page on success; the new page lists the refund.
        tools.wait_for(
            &session,
            "document.readyState === 'complete' && !!document.querySelector('#refunds tbody tr')",
            Duration::from_secs(20),
        );
        tools.eval(&session, "document.querySelector('#refunds tbody')?.textContent ?? ''")
    })
    .await
    .expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);

    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refunds WHERE order_no = '{no}' AND amount_fen = 500 AND reason = '浏览器退款'"
        ))
        .await,
        1,
        "the form did not queue the refund (page showed {shown})"
    );
    let listed = shown.as_str().unwrap_or("");
    assert!(
        listed.contains("浏览器退款") && listed.contains("5.00"),
        "the page after the refund: {shown}"
    );
    let settled = eventually(Duration::from_secs(5), || async {
        let detail = call(&app, &admin, Method::GET, &format!("/api/admin/payments/{no}"), None).await;
        assert_eq!(detail.status, StatusCode::OK);
        detail.json()["payment"]["refunded"] == "5.00"
    })
    .await;
    assert!(settled, "the refund sent from the page never settled");
    app.shutdown().await;
}
