//! `zhifu admin …`: the first admin (and later password resets) come from the command line,
//! so no default password exists anywhere. The password is read from the terminal without
//! echo, or from the first line of standard input with `--password-stdin`; never from an
//! argument (it would show in `ps` and shell history).

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;

use super::Role;
use super::users::{self, CreateError};
use crate::config::Config;
use crate::store::Store;

/// What `zhifu admin` was asked to do.
#[derive(Debug, Clone)]
pub enum AdminCommand {
    /// Create a password account with a role (admin by default).
    Create { username: String, role: Role },
    /// Set a new password and end all of the account's sessions.
    ResetPassword { username: String },
}

/// Reads the password: from stdin's first line, or prompted twice on the terminal.
pub fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if from_stdin || !stdin.is_terminal() {
        anyhow::ensure!(
            from_stdin,
            "standard input is not a terminal: pass --password-stdin and write the password on its first line"
        );
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    let first = prompt_hidden("New password: ")?;
    let second = prompt_hidden("Repeat it: ")?;
    anyhow::ensure!(first == second, "the two passwords differ; nothing was changed");
    Ok(first)
}

fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{prompt}")?;
    stderr.flush()?;
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it, tcsetattr restores it below.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let have_tty = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_tty {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: a valid termios for this fd, from tcgetattr.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if have_tty {
        // SAFETY: restores what tcgetattr returned.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Runs `command` against the configured database (beside a running server, if any);
/// returns what to print.
pub fn run(config: Config, command: AdminCommand, password: String) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let store = Store::open_beside_server(&config).await?;
        {
            let mut client = store.client().await.context("cannot connect to the database")?;
            crate::store::migrate::run(&mut client).await?;
        }
        let result = match &command {
            AdminCommand::Create { username, role } => {
                users::create_password_user(&store, username, &password, *role, "cli")
                    .await
                    .map(|id| {
                        format!(
                            "created {} account {username:?} (id {id}); sign in at /login",
                            role.as_str()
                        )
                    })
            }
            AdminCommand::ResetPassword { username } => users::reset_password(&store, username, &password, "cli")
                .await
                .map(|id| format!("new password set for {username:?} (id {id}); all its sessions ended")),
        };
        store.pool.close();
        if let Some(cluster) = store.cluster().cloned() {
            tokio::task::spawn_blocking(move || cluster.stop(Duration::from_secs(10))).await?;
        }
        result.map_err(|e| match e {
            CreateError::Store(s) => anyhow::anyhow!("database: {s}"),
            other => anyhow::anyhow!("{other}"),
        })
    })
}
