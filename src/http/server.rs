//! The accept loop: a tuned `SO_REUSEPORT` listener, a connection cap, hyper's HTTP/1.1
//! connections with a header-read timeout (slowloris) and keep-alive, and graceful shutdown
//! that stops accepting, lets in-flight requests finish within a grace period, then returns.
//! `SO_REUSEPORT` is for our own per-core listeners only: a port another process listens on
//! is refused at start-up (naming that process where it can be found), never shared.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use futures_util::FutureExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::app::State;

/// Pending connections the kernel may queue before we accept them.
const BACKLOG: i32 = 4096;

/// Binds `addr` with `SO_REUSEADDR`, `SO_REUSEPORT`, `TCP_NODELAY` and a large backlog,
/// after making sure no other process listens there ([`ensure_free`]).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    ensure_free(addr)?;
    TcpListener::from_std(bind_std(addr)?)
}

/// Fails with `AddrInUse`, naming the process that holds it where it can be found, when
/// something listens on `addr` already. A plain bind (no `SO_REUSEPORT`) is refused by the
/// kernel while any socket listens on the port, ours or not; `SO_REUSEADDR` keeps
/// connections left in TIME_WAIT from counting. Port 0 is always free.
pub fn ensure_free(addr: SocketAddr) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    match probe.bind(&addr.into()) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "{addr} is already in use by {}; stop it, or set server.listen to another port",
                super::port_owner::describe(addr.port())
            ),
        )),
        other => other,
    }
}

/// [`bind`] outside a runtime: the listener is registered with one later.
fn bind_std(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Serves `addr` (already bound by the caller) from `count` more threads too, each with its own
/// single-threaded runtime and `SO_REUSEPORT` listener: the kernel spreads new connections over
/// the listeners, and a connection stays on the thread that accepted it. They drain and return
/// when `state.shutdown` turns true. Each listener applies `server.max_connections` on its own.
pub fn spawn_siblings(addr: SocketAddr, state: &Arc<State>, count: usize) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::with_capacity(count);
    for i in 1..=count {
        // Bound here so that a failure reaches the caller.
        let listener = bind_std(addr)?;
        let state = Arc::clone(state);
        let thread = std::thread::Builder::new().name(format!("zhifu-{i}")).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a single-threaded runtime starts whenever the main one did");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("registering a bound listener");
                let mut stop = state.shutdown.clone();
                let shutdown = async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                };
                serve(listener, state, shutdown).await;
            });
        })?;
        threads.push(thread);
    }
    Ok(threads)
}

/// One connection's task: `conn`, then the count of open connections and the permit. A
/// combinator, not an `async` block: a block would keep `conn` twice (captured, and moved
/// into its `.await`), and this future is every connection's cost.
fn connection_task<C, E>(
    conn: C,
    state: Arc<State>,
    permit: OwnedSemaphorePermit,
    peer: SocketAddr,
) -> futures_util::future::Map<C, impl FnOnce(Result<(), E>)>
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    conn.map(move |result| {
        if let Err(e) = result {
            tracing::debug!(error = %e, %peer, "connection ended with an error");
        }
        state.metrics.open_connections.fetch_sub(1, Ordering::Relaxed);
        drop(permit);
    })
}

/// Serves `listener` until `shutdown` completes, then drains open connections for at most
/// `server.shutdown_grace_secs`.
pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let settings = &state.config.settings.server;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.header_read_timeout_secs))
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn_state = Arc::clone(&state);
        let service = service_fn(move |req| super::handle(Arc::clone(&conn_state), req, peer));
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        state.metrics.open_connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(connection_task(conn, Arc::clone(&state), permit, peer));
    }

    drop(listener);
    tracing::info!(
        open = graceful.count(),
        grace_secs = grace.as_secs(),
        "stopped accepting; draining connections"
    );
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("grace period over; closing the remaining connections");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in connection of a known size.
    struct Conn {
        _bytes: [u8; 1024],
    }

    impl Future for Conn {
        type Output = Result<(), std::io::Error>;
        fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn output_size<A, B, C, D, F>(_: fn(A, B, C, D) -> F) -> usize {
        size_of::<F>()
    }

    #[test]
    fn a_connection_task_adds_little_to_its_connection() {
        let task = output_size(connection_task::<Conn, std::io::Error>);
        assert!(
            task <= size_of::<Conn>() + 64,
            "{task} B for a {} B connection",
            size_of::<Conn>()
        );
    }
}
