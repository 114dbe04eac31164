//! Mail through a real SMTP server: Debian's `aiosmtpd` (python3-aiosmtpd, which `.ci/run`
//! installs) started by the test, writing what it receives into a Maildir. Registration →
//! the mail arrives → its link verifies the address; mail written while the server is down
//! is sent once it is back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::StatusCode;

use crate::helpers::{TestApp, eventually, free_port, scratch_dir, spawn_app_with};
use crate::people::{link_path, registration};

/// An `aiosmtpd` process on a loopback port, killed when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpServer {
    async fn start(name: &str, port: u16) -> SmtpServer {
        let maildir = scratch_dir(name);
        let _ = std::fs::remove_dir_all(&maildir);
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd starts (apt-get install python3-aiosmtpd)");
        let mut server = SmtpServer { child, port, maildir };
        let up = eventually(Duration::from_secs(15), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        if !up {
            let status = server.child.try_wait().ok().flatten();
            panic!("aiosmtpd did not listen on {port} (exited: {status:?}); is python3-aiosmtpd installed?");
        }
        server.port = port;
        server
    }

    /// The messages received so far, as text.
    fn messages(&self) -> Vec<String> {
        read_maildir(&self.maildir.join("new"))
    }
}

fn read_maildir(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect()
}

/// The body of a mail as lettre writes it (quoted-printable or base64 for UTF-8 text).
fn decoded_body(message: &str) -> String {
    let (head, body) = message
        .split_once("\n\n")
        .or_else(|| message.split_once("\r\n\r\n"))
        .unwrap();
    let head = head.to_ascii_lowercase();
    if head.contains("content-transfer-encoding: base64") {
        use base64::Engine as _;
        let joined: String = body.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD.decode(joined).unwrap();
        String::from_utf8(bytes).unwrap()
    } else if head.contains("content-transfer-encoding: quoted-printable") {
        let soft = body.replace("=\r\n", "").replace("=\n", "");
        let mut out = Vec::new();
        let bytes = soft.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&soft[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8(out).unwrap()
    } else {
        body.to_string()
    }
}

async fn app_sending_to(port: u16) -> TestApp {
    spawn_app_with(|s| {
        s.mail.smtp_url = serde_json::from_value(serde_json::json!(format!("smtp://127.0.0.1:{port}"))).unwrap();
        s.mail.from = "zhifu <no-reply@zhifu.test>".into();
        s.mail.timeout_secs = 5;
    })
    .await
}

#[tokio::test]
async fn registration_mail_reaches_a_real_smtp_server_and_its_link_verifies() {
    let smtp = SmtpServer::start("smtp-verify", free_port()).await;
    let app = app_sending_to(smtp.port).await;
    let answer = app
        .post_json("/api/auth/register", registration("mailme", "mailme@example.com"))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());

    let arrived = eventually(Duration::from_secs(15), || async { !smtp.messages().is_empty() }).await;
    assert!(arrived, "no mail reached the SMTP server");
    let message = smtp.messages().remove(0);
    assert!(message.contains("mailme@example.com"), "{message}");
    assert!(message.contains("no-reply@zhifu.test"), "{message}");
    let link = link_path(&decoded_body(&message));
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.count("SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL AND delivery = 'smtp'")
                .await
                == 1
        })
        .await,
        "the outbox row is marked sent"
    );

    let page = app.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE username = 'mailme' AND email_verified_at IS NOT NULL")
            .await,
        1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn mail_written_while_the_server_is_down_is_sent_when_it_is_back() {
    let port = free_port();
    let app = app_sending_to(port).await;
    let answer = app
        .post_json("/api/auth/register", registration("patient", "patient@example.com"))
        .await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "registration does not wait for mail"
    );
    let failed_once = eventually(Duration::from_secs(15), || async {
        app.count("SELECT count(*) FROM mail_outbox WHERE attempts = 1 AND sent_at IS NULL AND last_error <> '' AND failed_at IS NULL")
            .await
            == 1
    })
    .await;
    assert!(failed_once, "the first attempt failed and was kept for a retry");

    let smtp = SmtpServer::start("smtp-retry", port).await;
    // Make the retry due now and wake the sender, as its back-off timer would later.
    app.sql("UPDATE mail_outbox SET next_attempt_at = now(); SELECT pg_notify('zhifu_events', '{\"kind\":\"mail\"}')")
        .await;
    let arrived = eventually(Duration::from_secs(15), || async { !smtp.messages().is_empty() }).await;
    assert!(arrived, "the retried mail never arrived");
    assert!(smtp.messages()[0].contains("patient@example.com"));
    app.shutdown().await;
}
