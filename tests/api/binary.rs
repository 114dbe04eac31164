//! The real binary with the embedded database: starts (creating the cluster), serves, stops on
//! SIGTERM taking its PostgreSQL with it, and when killed outright its PostgreSQL dies too.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{free_port, scratch_dir};

/// A server process that is killed when the test ends, passing or failing.
struct KillOnDrop(Child);

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data_dir: &Path, port: u16) -> KillOnDrop {
    start_logging(data_dir, port, None)
}

/// [`start`], with the access log on and stdout going to `log` when given.
fn start_logging(data_dir: &Path, port: u16, log: Option<&Path>) -> KillOnDrop {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ZHIFU")) {
        cmd.env_remove(key);
    }
    cmd.arg("--config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
        .env("ZHIFU__DATABASE__EMBEDDED__DATA_DIR", data_dir)
        .env("ZHIFU__BACKUP__EVERY_HOURS", "0")
        .env("ZHIFU__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("ZHIFU__LOG__ACCESS", log.is_some().to_string())
        .stdout(log.map_or_else(Stdio::null, |path| std::fs::File::create(path).unwrap().into()))
        .stderr(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .expect("the binary starts")
}

/// Runs a second server on `port` to its end (it should refuse to start), output captured.
fn second_on_the_same_port(data_dir: &Path, port: u16) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ZHIFU")) {
        cmd.env_remove(key);
    }
    let mut child = cmd
        .arg("--config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
        .env("ZHIFU__DATABASE__EMBEDDED__DATA_DIR", data_dir)
        .env("ZHIFU__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the second server did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output of the second server")
}

/// A blocking GET; `None` while nothing answers.
fn get(port: u16, path: &str) -> Option<String> {
    get_with_id(port, path, "t-0")
}

/// A blocking GET carrying `X-Request-Id: id`.
fn get_with_id(port: u16, path: &str, id: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nX-Request-Id: {id}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn wait_ready(port: u16, child: &mut Child) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("zhifu exited early: {status}");
        }
        if get(port, "/readyz").is_some_and(|a| a.starts_with("HTTP/1.1 200")) {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("zhifu not ready after 30 s");
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

fn wait_gone(needle: &str, limit: Duration) -> Vec<String> {
    let started = Instant::now();
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() || started.elapsed() > limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_binary_serves_from_its_own_cluster_and_leaves_no_process_behind() {
    let dir = scratch_dir("binary");
    let data_dir = dir.join("pg");
    let data_dir_text = data_dir.to_string_lossy().into_owned();
    let port = free_port();

    // First start: creates the cluster; the access log is on.
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("stdout.log");
    let mut child = start_logging(&data_dir, port, Some(&log));
    let first = wait_ready(port, &mut child);
    for (i, path) in ["/", "/api/categories", "/healthz", "/metrics"].iter().enumerate() {
        let answer = get_with_id(port, path, &format!("page-{i}")).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    }
    for i in 0..200 {
        assert!(get_with_id(port, "/healthz", &format!("burst-{i}")).is_some());
    }
    assert!(
        !processes_mentioning(&data_dir_text).is_empty(),
        "no postgres child found"
    );

    // A second server on the same port is refused at start-up, naming the first; the first
    // keeps serving alone (SO_REUSEPORT must not let the two share the port).
    let second = second_on_the_same_port(&dir.join("pg-second"), port);
    assert!(!second.status.success(), "a second server started on a port in use");
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(
        said.contains("already in use") && said.contains(&format!("process {} (", child.id())),
        "the refusal does not name the running server: {said}"
    );
    assert!(
        !dir.join("pg-second").exists(),
        "the refused server started a database anyway"
    );
    assert!(get(port, "/healthz").unwrap().starts_with("HTTP/1.1 200"));

    // SIGTERM: a clean exit, and the cluster goes with it.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert_eq!(wait_gone(&data_dir_text, Duration::from_secs(5)), Vec::<String>::new());
    // Every request's access line reached stdout, whole and once, before the exit.
    let text = std::fs::read_to_string(&log).unwrap();
    let access: Vec<&str> = text.lines().filter(|l| l.contains("zhifu::access")).collect();
    for id in (0..4)
        .map(|i| format!("page-{i}"))
        .chain((0..200).map(|i| format!("burst-{i}")))
    {
        let lines = access
            .iter()
            .filter(|l| l.contains(&format!("request_id={id} ")))
            .count();
        assert_eq!(lines, 1, "{id} logged once:\n{text}");
    }
    assert!(
        access
            .iter()
            .any(|l| l.contains("path=\"/healthz\" status=200 micros=")),
        "{text}"
    );

    // Second start reuses the cluster; then SIGKILL: the parent-death signal stops postgres.
    let mut child = start(&data_dir, port);
    let second = wait_ready(port, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(wait_gone(&data_dir_text, Duration::from_secs(10)), Vec::<String>::new());

    eprintln!("start-up to ready: first (creating the cluster) {first:?}, second {second:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `zhifu admin create …` with `password` on standard input; (success, stdout + stderr).
fn admin_create(data_dir: &Path, username: &str, password: &str) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ZHIFU")) {
        cmd.env_remove(key);
    }
    let mut child = cmd
        .arg("--config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
        .args(["admin", "create", "--username", username, "--password-stdin"])
        .env("ZHIFU__DATABASE__EMBEDDED__DATA_DIR", data_dir)
        .env("ZHIFU__BACKUP__EVERY_HOURS", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A blocking JSON POST; the whole answer.
fn post_json(port: u16, path: &str, body: &str) -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_first_admin_comes_from_the_command_line_with_or_without_a_running_server() {
    let dir = scratch_dir("admin-cli");
    let data_dir = dir.join("pg");
    let data_dir_text = data_dir.to_string_lossy().into_owned();
    let password = "a long admin password";

    // No server: the command starts the cluster, migrates, creates the account, stops it.
    let (ok, out) = admin_create(&data_dir, "root-admin", password);
    assert!(ok, "{out}");
    assert!(out.contains("created admin account"), "{out}");
    assert!(!out.contains(password), "the password is never echoed: {out}");
    assert_eq!(wait_gone(&data_dir_text, Duration::from_secs(10)), Vec::<String>::new());

    // Refusals name the problem and change nothing.
    let (ok, out) = admin_create(&data_dir, "root-admin", "another long password");
    assert!(!ok && out.contains("taken"), "{out}");
    let (ok, out) = admin_create(&data_dir, "weak-admin", "short");
    assert!(!ok && out.contains("at least 10 characters"), "{out}");

    // With the server running on that cluster, the command uses the server's cluster.
    let port = free_port();
    let mut child = start(&data_dir, port);
    wait_ready(port, &mut child);
    let (ok, out) = admin_create(&data_dir, "second-admin", password);
    assert!(ok, "{out}");
    for name in ["root-admin", "second-admin"] {
        let answer = post_json(
            port,
            "/api/auth/login",
            &format!(r#"{{"username":"{name}","password":"{password}"}}"#),
        );
        assert!(answer.starts_with("HTTP/1.1 200"), "{name}: {answer}");
        assert!(answer.contains(r#""role":"admin""#), "{answer}");
    }
    let refused = post_json(
        port,
        "/api/auth/login",
        r#"{"username":"weak-admin","password":"short"}"#,
    );
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(wait_gone(&data_dir_text, Duration::from_secs(10)), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
}
