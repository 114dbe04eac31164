//! Logging: a `tracing` subscriber writing text or JSON lines to stdout through a
//! non-blocking writer, filtered by `RUST_LOG` or `log.level`.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::Log;

/// Installs the global subscriber. Keep the guard alive until exit: dropping it flushes.
pub fn init(log: &Log) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let installed = if log.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = installed {
        eprintln!("zhifu: logging was already set up: {e}");
    } else {
        // Logs go to stdout: the access log may batch its lines straight there.
        crate::http::access::install_stdout();
    }
    guard
}
