//! The `zhifu` binary: parses the command line, loads the configuration, sets up logging and
//! hands over to `zhifu::app`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// zhifu (支付): donations paid by WeChat Pay and Alipay QR codes.
#[derive(Parser)]
#[command(name = "zhifu", version, about)]
struct Cli {
    /// The configuration file (default: ./config.yaml, else config.yaml beside the binary).
    #[arg(long, global = true, env = "ZHIFU_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate the configuration and exit (status 2 when it is invalid).
    CheckConfig,
    /// Back up the database (pg_dump, custom format) to FILE, else to a new file in
    /// backup.dir (else the working directory). Works while the server runs.
    Backup {
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
    },
    /// Restore a backup into an empty database (stop the server first).
    Restore {
        /// A file made by `zhifu backup`.
        file: PathBuf,
        /// Replace everything in a database that is not empty.
        #[arg(long)]
        force: bool,
    },
    /// Manage accounts from the command line (the first admin is made here).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a password account; the password is asked for (never an argument).
    Create {
        /// 3 to 32 letters, digits, '_', '.' or '-'.
        #[arg(long)]
        username: String,
        /// admin, reviewer, merchant or user.
        #[arg(long, default_value = "admin")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password for an account and end all its sessions.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = cli.config.or_else(zhifu::config::default_path);
    let config = match zhifu::config::load(path.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("zhifu: {e}");
            return ExitCode::from(2);
        }
    };
    let migrate = match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!("{}", zhifu::app::describe(&config));
            return ExitCode::SUCCESS;
        }
        Command::Admin(admin) => return run_admin(config, admin),
        Command::Backup { to } => return report(zhifu::backup::run_backup(config, to)),
        Command::Restore { file, force } => return report(zhifu::backup::run_restore(config, file, force)),
        Command::Migrate => true,
        Command::Serve => false,
    };
    let _log = zhifu::telemetry::init(&config.settings.log);
    let result = if migrate {
        zhifu::app::migrate(config)
    } else {
        zhifu::app::run(config)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints what a one-off command did, or its error.
fn report(done: anyhow::Result<String>) -> ExitCode {
    match done {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zhifu: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_admin(config: zhifu::config::Config, command: AdminCommand) -> ExitCode {
    use zhifu::account::Role;
    use zhifu::account::cli::{self, AdminCommand as Cmd};
    let (command, from_stdin) = match command {
        AdminCommand::Create {
            username,
            role,
            password_stdin,
        } => {
            let Some(role) = Role::parse(&role) else {
                eprintln!("zhifu: --role must be admin, reviewer, merchant or user");
                return ExitCode::from(2);
            };
            (Cmd::Create { username, role }, password_stdin)
        }
        AdminCommand::ResetPassword {
            username,
            password_stdin,
        } => (Cmd::ResetPassword { username }, password_stdin),
    };
    report(cli::read_password(from_stdin).and_then(|password| cli::run(config, command, password)))
}
