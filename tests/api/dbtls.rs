//! `database.url` with `sslmode=require` against a real PostgreSQL serving TLS on loopback:
//! the connection is encrypted and the server's certificate verified (with
//! `database.tls_ca_file`); a certificate from an unknown CA is refused; the event bus uses
//! the same TLS.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zhifu::store::Store;
use zhifu::store::embedded::{EmbeddedCluster, Options, find_binaries};

use crate::helpers::scratch_dir;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA: `{name}.key` and `{name}.pem`.
fn self_signed_ca(dir: &Path, name: &str, common_name: &str) {
    let (key, pem, subject) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={common_name}"),
    );
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem, "-days", "2", "-subj",
            &subject,
        ],
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it (and a second, unrelated CA).
fn make_certificates(dir: &Path) {
    self_signed_ca(dir, "ca", "zhifu test database CA");
    self_signed_ca(dir, "other", "unrelated CA");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

/// A PostgreSQL on 127.0.0.1:`port` with `ssl=on`, from a cluster made by the embedded code.
fn start_tls_postgres(dir: &Path, port: u16) -> Child {
    let data = dir.join("pg");
    let cluster = EmbeddedCluster::start(&Options {
        data_dir: data.clone(),
        bin_dir: None,
        ephemeral: true,
    })
    .expect("cluster");
    cluster.stop(Duration::from_secs(5));
    drop(cluster);
    let bin = find_binaries(None).expect("binaries");
    // PostgreSQL wants its key private and owned by the server's user.
    let owner = std::fs::metadata(&data).unwrap();
    for name in ["server.crt", "server.key"] {
        std::fs::copy(dir.join(name), data.join(name)).unwrap();
        std::os::unix::fs::chown(data.join(name), Some(owner_uid(&owner)), Some(owner_gid(&owner))).unwrap();
    }
    std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join("postgres"));
        c
    } else {
        Command::new(bin.join("postgres"))
    };
    cmd.arg("-D")
        .arg(&data)
        .args(["-c", "listen_addresses=127.0.0.1", "-c", &format!("port={port}")])
        .args(["-c", &format!("unix_socket_directories={}", data.display())])
        .args([
            "-c",
            "ssl=on",
            "-c",
            "ssl_cert_file=server.crt",
            "-c",
            "ssl_key_file=server.key",
        ])
        .args(["-c", "fsync=off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("postgres starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "postgres with TLS did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn owner_uid(meta: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::MetadataExt::uid(meta)
}

fn owner_gid(meta: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::MetadataExt::gid(meta)
}

async fn uses_tls(store: &Store) -> Result<bool, String> {
    let client = store.client().await.map_err(|e| format!("{e:?}"))?;
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn sslmode_require_verifies_the_server_and_encrypts_pool_and_event_bus() {
    let dir = scratch_dir("dbtls");
    std::fs::create_dir_all(&dir).unwrap();
    // The postgres user must be able to enter the folder.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    make_certificates(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut postgres = start_tls_postgres(&dir, port);
    let url = |mode: &str| format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode={mode}");
    let timeout = Duration::from_secs(3);

    // Listening is not yet accepting: wait until a plain session works.
    let plain = Store::connect(url("disable").parse().unwrap(), 2, timeout, None).expect("pool");
    let started = Instant::now();
    while uses_tls(&plain).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "postgres with TLS never accepted sessions"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(uses_tls(&plain).await, Ok(false), "sslmode=disable stays plain");

    let verified = Store::connect_with(
        url("require").parse().unwrap(),
        2,
        timeout,
        None,
        Some(&dir.join("ca.pem")),
    )
    .expect("pool");
    assert_eq!(uses_tls(&verified).await, Ok(true));

    let unknown_ca = Store::connect_with(
        url("require").parse().unwrap(),
        2,
        timeout,
        None,
        Some(&dir.join("other.pem")),
    )
    .expect("pool");
    let refused = uses_tls(&unknown_ca).await.expect_err("an unknown CA must be refused");
    assert!(
        refused.contains("certificate") || refused.contains("Unknown") || refused.contains("error"),
        "{refused}"
    );

    let public_roots_only = Store::connect(url("require").parse().unwrap(), 2, timeout, None).expect("pool");
    assert!(
        uses_tls(&public_roots_only).await.is_err(),
        "a private CA is not a public root"
    );

    let missing = Store::connect_with(
        url("require").parse().unwrap(),
        2,
        timeout,
        None,
        Some(&dir.join("nope.pem")),
    );
    let message = format!("{:#}", missing.expect_err("a missing CA file is an error"));
    assert!(message.contains("database.tls_ca_file"), "{message}");

    // The event bus listens over the same verified TLS.
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let bus = zhifu::store::events::EventBus::start(verified.pg_config.clone(), verified.tls.clone(), shutdown);
    assert!(bus.wait_connected(Duration::from_secs(5)).await, "event bus over TLS");
    let client = verified.client().await.unwrap();
    let tls_listeners: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE s.ssl AND a.query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tls_listeners, 1);

    postgres.kill().unwrap();
    postgres.wait().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
