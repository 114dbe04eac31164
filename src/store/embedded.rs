//! The embedded default: a private PostgreSQL cluster run from the machine's installed server
//! binaries when `database.url` is empty. Created on first start (`initdb`), reused after,
//! reachable only through a Unix socket, stopped with the server and killed with it
//! (`PR_SET_PDEATHSIG`). As root the cluster runs as the `postgres` system user.
//! Connection pooling and migrations live elsewhere (`store::pool`, `store::migrate`).

use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The database superuser the cluster is created with.
pub const SUPERUSER: &str = "postgres";
/// The port number names the socket file (`.s.PGSQL.5432`); no TCP port is opened.
const PORT: u16 = 5432;
/// Longest socket path the kernel takes (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 100;

/// How to run the cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// Absolute path of the cluster's data folder.
    pub data_dir: PathBuf,
    /// Folder of `initdb` and `postgres`; `None` = search for them.
    pub bin_dir: Option<PathBuf>,
    /// Trade crash safety for speed (`fsync=off` …): for test clusters only.
    pub ephemeral: bool,
}

/// Why the cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) were not found on PATH, through pg_config or under /usr/lib/postgresql. \
         Install them (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server), \
         set database.embedded.bin_dir to their folder, or set database.url to an existing database"
    )]
    BinariesMissing,
    #[error("{0}")]
    Setup(String),
    #[error("{what} failed: {detail}")]
    Failed { what: String, detail: String },
}

fn setup(msg: impl Into<String>) -> EmbeddedError {
    EmbeddedError::Setup(msg.into())
}

/// Exit status of the `postgres` child, filled in by the thread that waits on it.
type Exit = Arc<(Mutex<Option<ExitStatus>>, Condvar)>;

/// A running private cluster. Dropping it stops the cluster.
#[derive(Debug)]
pub struct EmbeddedCluster {
    pid: i32,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    exit: Exit,
}

/// The system user the cluster runs as: ourselves, or `postgres` when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
    switch: bool,
}

/// Connection settings for a cluster in `data_dir` that another process (a running zhifu)
/// already runs, read from its `postmaster.pid`; `None` when none runs there.
pub fn running_cluster(data_dir: &Path, dbname: &str) -> Option<tokio_postgres::Config> {
    let pid_file = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = pid_file.lines().collect();
    let pid: i32 = lines.first()?.trim().parse().ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
    let socket_dir = lines.get(4)?.trim();
    if !alive || socket_dir.is_empty() {
        return None;
    }
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(socket_dir)
        .port(PORT)
        .user(SUPERUSER)
        .dbname(dbname)
        .application_name("zhifu");
    Some(config)
}

impl EmbeddedCluster {
    /// Finds the binaries, creates the cluster if `data_dir` holds none, starts `postgres`
    /// and waits until it accepts connections. Blocking; takes well under a second on a
    /// cluster that exists.
    pub fn start(options: &Options) -> Result<Self, EmbeddedError> {
        let bin = find_binaries(options.bin_dir.as_deref())?;
        let run_as = run_as()?;
        let data_dir = &options.data_dir;
        prepare_data_dir(data_dir, run_as)?;
        let version = binary_major_version(&bin)?;
        if data_dir.join("PG_VERSION").is_file() {
            let cluster = fs::read_to_string(data_dir.join("PG_VERSION")).unwrap_or_default();
            if cluster.trim() != version {
                return Err(setup(format!(
                    "the cluster in {} was made by PostgreSQL {} but the installed server is {version}; \
                     point database.embedded.bin_dir at PostgreSQL {} binaries, or upgrade the cluster with pg_upgrade",
                    data_dir.display(),
                    cluster.trim(),
                    cluster.trim()
                )));
            }
        } else {
            init_cluster(&bin, data_dir, run_as, options.ephemeral)?;
        }
        let socket_dir = socket_dir_for(data_dir, run_as)?;
        let log_path = data_dir.join("zhifu-postgres.log");
        let (pid, exit) = spawn_postgres(&bin, data_dir, &socket_dir, &log_path, run_as, options.ephemeral)?;
        let cluster = EmbeddedCluster {
            pid,
            data_dir: data_dir.clone(),
            socket_dir,
            log_path,
            exit,
        };
        cluster.wait_ready(Duration::from_secs(60))?;
        Ok(cluster)
    }

    /// Connection settings for `dbname` over the cluster's Unix socket.
    pub fn pg_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.socket_dir)
            .port(PORT)
            .user(SUPERUSER)
            .dbname(dbname)
            .application_name("zhifu");
        config
    }

    /// True while the `postgres` process lives.
    pub fn is_running(&self) -> bool {
        self.exit.0.lock().map(|e| e.is_none()).unwrap_or(false)
    }

    /// Stops the cluster: a fast shutdown (SIGINT), then an immediate one (SIGQUIT) after
    /// `grace`, then SIGKILL. Blocking; returns once the process is gone. Idempotent.
    pub fn stop(&self, grace: Duration) {
        for (signal, wait) in [
            (libc::SIGINT, grace),
            (libc::SIGQUIT, Duration::from_secs(3)),
            (libc::SIGKILL, Duration::from_secs(3)),
        ] {
            if !self.is_running() {
                return;
            }
            // SAFETY: kill(2) with a pid we spawned and have not reaped (the waiter thread
            // reaps it and records the exit before we could see is_running() == false).
            unsafe { libc::kill(self.pid, signal) };
            if self.wait_exit(wait) {
                return;
            }
        }
    }

    fn wait_exit(&self, timeout: Duration) -> bool {
        let (lock, cvar) = &*self.exit;
        let Ok(guard) = lock.lock() else { return true };
        cvar.wait_timeout_while(guard, timeout, |e| e.is_none())
            .map(|(g, _)| g.is_some())
            .unwrap_or(true)
    }

    /// Waits until `postmaster.pid` says `ready` (PostgreSQL writes its state there).
    fn wait_ready(&self, timeout: Duration) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + timeout;
        let pid_file = self.data_dir.join("postmaster.pid");
        loop {
            if !self.is_running() {
                return Err(EmbeddedError::Failed {
                    what: "starting postgres".into(),
                    detail: format!(
                        "it exited; its log ({}) ends with:\n{}",
                        self.log_path.display(),
                        log_tail(&self.log_path)
                    ),
                });
            }
            let ready = fs::read_to_string(&pid_file)
                .map(|s| s.lines().nth(7).map(str::trim) == Some("ready"))
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop(Duration::from_secs(2));
                return Err(EmbeddedError::Failed {
                    what: "starting postgres".into(),
                    detail: format!(
                        "not ready after {} s; its log ({}) ends with:\n{}",
                        timeout.as_secs(),
                        self.log_path.display(),
                        log_tail(&self.log_path)
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// `bin_dir` if given, else `postgres` on PATH, else `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/<major>/bin`.
pub fn find_binaries(bin_dir: Option<&Path>) -> Result<PathBuf, EmbeddedError> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = bin_dir {
        return if has_both(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(setup(format!(
                "database.embedded.bin_dir {} holds no initdb and postgres; set it to the folder that does \
                 (Debian: /usr/lib/postgresql/<major>/bin) or leave it empty to search",
                dir.display()
            )))
        };
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| has_both(dir));
    if let Some(dir) = on_path {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_both(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let dir = e.path().join("bin");
            has_both(&dir).then_some((major, dir))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir).ok_or(EmbeddedError::BinariesMissing)
}

/// `"15"` from `postgres (PostgreSQL) 15.18 (Debian …)`.
fn binary_major_version(bin: &Path) -> Result<String, EmbeddedError> {
    let out = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .map_err(|e| setup(format!("cannot run {}: {e}", bin.join("postgres").display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|word| {
            let major = word.split('.').next()?;
            (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then(|| major.to_string())
        })
        .ok_or_else(|| setup(format!("cannot read the version from {text:?}")))
}

/// PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user.
fn run_as() -> Result<RunAs, EmbeddedError> {
    // SAFETY: geteuid/getegid have no preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid != 0 {
        return Ok(RunAs {
            uid: euid,
            gid: egid,
            switch: false,
        });
    }
    let name = CString::new(SUPERUSER).expect("no NUL in a constant");
    // SAFETY: getpwnam returns a pointer to static storage or NULL; we copy the two fields out
    // immediately, and start-up is single-threaded with respect to other getpw* calls.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(setup(
            "running as root, the embedded database needs the `postgres` system user (the postgresql package creates it); \
             create it (useradd --system postgres), run zhifu as another user, or set database.url",
        ));
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(RunAs { uid, gid, switch: true })
}

/// Creates `data_dir` (mode 0700, owned by the cluster's user) and checks that the user can
/// reach it through every parent folder.
fn prepare_data_dir(data_dir: &Path, run_as: RunAs) -> Result<(), EmbeddedError> {
    if let Some(parent) = data_dir.parent() {
        fs::create_dir_all(parent).map_err(|e| {
            setup(format!(
                "cannot create {} for database.embedded.data_dir: {e}",
                parent.display()
            ))
        })?;
    }
    if !data_dir.exists() {
        fs::create_dir(data_dir).map_err(|e| {
            setup(format!(
                "cannot create database.embedded.data_dir {}: {e}",
                data_dir.display()
            ))
        })?;
    }
    let meta = fs::metadata(data_dir).map_err(|e| setup(format!("cannot read {}: {e}", data_dir.display())))?;
    if !meta.is_dir() {
        return Err(setup(format!(
            "database.embedded.data_dir {} is not a folder",
            data_dir.display()
        )));
    }
    if !data_dir.join("PG_VERSION").exists() && fs::read_dir(data_dir).map(|mut d| d.next().is_some()).unwrap_or(false)
    {
        return Err(setup(format!(
            "database.embedded.data_dir {} is not empty and holds no PostgreSQL cluster; \
             choose an empty or new folder",
            data_dir.display()
        )));
    }
    if run_as.switch {
        chown(data_dir, run_as)?;
    }
    fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| setup(format!("cannot chmod 700 {}: {e}", data_dir.display())))?;
    if run_as.switch {
        for ancestor in data_dir.ancestors().skip(1) {
            let Ok(meta) = fs::metadata(ancestor) else { continue };
            let mode = meta.mode();
            let can_enter = if meta.uid() == run_as.uid {
                mode & 0o100 != 0
            } else if meta.gid() == run_as.gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !can_enter {
                return Err(setup(format!(
                    "the `{SUPERUSER}` user cannot enter {} on the way to database.embedded.data_dir; \
                     run `chmod o+x {}` or choose a data_dir elsewhere (e.g. /var/lib/zhifu/pg)",
                    ancestor.display(),
                    ancestor.display()
                )));
            }
        }
    }
    Ok(())
}

fn chown(path: &Path, run_as: RunAs) -> Result<(), EmbeddedError> {
    std::os::unix::fs::chown(path, Some(run_as.uid), Some(run_as.gid))
        .map_err(|e| setup(format!("cannot give {} to the `{SUPERUSER}` user: {e}", path.display())))
}

fn command_as(program: PathBuf, run_as: RunAs) -> Command {
    let mut cmd = Command::new(program);
    if run_as.switch {
        cmd.uid(run_as.uid).gid(run_as.gid);
    }
    cmd.env_remove("PGDATA").env("LC_ALL", "C");
    cmd
}

fn init_cluster(bin: &Path, data_dir: &Path, run_as: RunAs, ephemeral: bool) -> Result<(), EmbeddedError> {
    let started = Instant::now();
    tracing::info!(data_dir = %data_dir.display(), "creating the embedded PostgreSQL cluster (first start)");
    let mut cmd = command_as(bin.join("initdb"), run_as);
    cmd.arg("-D").arg(data_dir).args([
        "-U",
        SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        "--no-locale",
        "--no-instructions",
    ]);
    if ephemeral {
        cmd.arg("--no-sync");
    }
    let out = cmd
        .current_dir(data_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| setup(format!("cannot run initdb: {e}")))?;
    if !out.status.success() {
        return Err(EmbeddedError::Failed {
            what: format!("initdb in {}", data_dir.display()),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "cluster created");
    Ok(())
}

/// The socket goes in the data folder when its path is short enough, else in a private
/// folder under /tmp named after the data folder.
fn socket_dir_for(data_dir: &Path, run_as: RunAs) -> Result<PathBuf, EmbeddedError> {
    if data_dir.as_os_str().len() + "/.s.PGSQL.5432.lock".len() <= MAX_SOCKET_PATH {
        return Ok(data_dir.to_path_buf());
    }
    let hash = data_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
        });
    let dir = std::env::temp_dir().join(format!("zhifu-pg-{hash:016x}"));
    fs::create_dir_all(&dir).map_err(|e| setup(format!("cannot create socket folder {}: {e}", dir.display())))?;
    if run_as.switch {
        chown(&dir, run_as)?;
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| setup(format!("cannot chmod 700 {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Spawns `postgres` from a dedicated thread that lives as long as the child: the parent-death
/// signal follows the thread that forked, so the child gets SIGINT when this process dies.
fn spawn_postgres(
    bin: &Path,
    data_dir: &Path,
    socket_dir: &Path,
    log_path: &Path,
    run_as: RunAs,
    ephemeral: bool,
) -> Result<(i32, Exit), EmbeddedError> {
    let log = open_log(log_path, run_as)?;
    let log_err = log
        .try_clone()
        .map_err(|e| setup(format!("cannot open {}: {e}", log_path.display())))?;
    let mut cmd = command_as(bin.join("postgres"), run_as);
    cmd.arg("-D").arg(data_dir).args(["-c", "listen_addresses="]);
    cmd.arg("-c")
        .arg(format!("unix_socket_directories={}", socket_dir.display()))
        .args(["-c", &format!("port={PORT}"), "-c", "unix_socket_permissions=0700"])
        .args(["-c", "max_connections=200"]);
    if ephemeral {
        for setting in ["fsync=off", "synchronous_commit=off", "full_page_writes=off"] {
            cmd.args(["-c", setting]);
        }
    }
    cmd.current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: a Ctrl-C at the terminal reaches zhifu, which drains its
        // requests first and then stops the cluster.
        .process_group(0);
    let parent = std::process::id() as i32;
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other("parent exited before postgres started"));
            }
            Ok(())
        });
    }
    let exit: Exit = Arc::new((Mutex::new(None), Condvar::new()));
    let waiter_exit = Arc::clone(&exit);
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("zhifu-postgres".into())
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(child.id() as i32));
            let status = child.wait();
            let (lock, cvar) = &*waiter_exit;
            if let Ok(mut slot) = lock.lock() {
                *slot = Some(status.unwrap_or_else(|_| ExitStatus::default()));
            }
            cvar.notify_all();
        })
        .map_err(|e| setup(format!("cannot start a thread for postgres: {e}")))?;
    let pid = rx
        .recv()
        .map_err(|_| setup("the postgres thread ended before spawning"))?
        .map_err(|e| setup(format!("cannot run {}: {e}", bin.join("postgres").display())))?;
    Ok((pid, exit))
}

/// The server log, appended to; restarted when it grows past 16 MiB.
fn open_log(path: &Path, run_as: RunAs) -> Result<fs::File, EmbeddedError> {
    let too_big = fs::metadata(path).map(|m| m.len() > 16 << 20).unwrap_or(false);
    let file = fs::OpenOptions::new()
        .create(true)
        .append(!too_big)
        .write(true)
        .truncate(too_big)
        .open(path)
        .map_err(|e| setup(format!("cannot open {}: {e}", path.display())))?;
    if run_as.switch {
        chown(path, run_as)?;
    }
    Ok(file)
}

/// The last 2 KiB of the server log, for error messages.
fn log_tail(path: &Path) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return "(no log)".into();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(2048)));
    let mut tail = String::new();
    let _ = file.read_to_string(&mut tail);
    tail.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_data_dir_gets_its_socket_under_tmp() {
        let me = run_as().expect("user");
        let long = PathBuf::from(format!("/nonexistent/{}", "x".repeat(120)));
        let dir = socket_dir_for(&long, RunAs { switch: false, ..me }).expect("socket dir");
        assert!(dir.starts_with(std::env::temp_dir()));
        assert!(dir.join(".s.PGSQL.5432.lock").as_os_str().len() <= MAX_SOCKET_PATH);
        let short = PathBuf::from("/var/lib/zhifu/pg");
        assert_eq!(socket_dir_for(&short, me).expect("socket dir"), short);
    }

    #[test]
    fn a_bin_dir_without_the_binaries_is_named_in_the_error() {
        let err = find_binaries(Some(Path::new("/nonexistent/bin"))).unwrap_err();
        assert!(err.to_string().contains("database.embedded.bin_dir"), "{err}");
    }
}
