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
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::CheckConfig = command {
        println!("{}", zhifu::app::describe(&config));
        return ExitCode::SUCCESS;
    }
    let _log = zhifu::telemetry::init(&config.settings.log);
    let result = match command {
        Command::Migrate => zhifu::app::migrate(config),
        _ => zhifu::app::run(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
