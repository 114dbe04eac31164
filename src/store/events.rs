//! The event bus: one dedicated connection `LISTEN`s on [`CHANNEL`] and fans notifications
//! out to in-process subscribers, so a write committed by any instance reaches every
//! instance's caches and long-polls. Reconnects by itself; after every (re)connect it sends
//! [`Event::Resync`], since notifications sent while it was away are lost.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_postgres::GenericClient;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The PostgreSQL channel every instance listens on.
pub const CHANNEL: &str = "zhifu_events";

/// Advisory lock key every serving instance holds shared on its listening connection, and a
/// restore (`zhifu restore`) exclusively: the two never overlap.
pub const SERVING_LOCK: i64 = 0x7a68_6966_755f_7276; // "zhifu_rv"

/// What subscribers receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A notification's payload: small JSON such as `{"kind":"categories"}`.
    Message(Arc<str>),
    /// The listener (re)connected: anything may have changed; drop cached state.
    Resync,
}

/// The in-process side of the bus.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    /// True while the listening connection is up.
    connected: AtomicBool,
}

impl EventBus {
    /// Starts listening with `pg_config` until `shutdown` turns true.
    pub fn start(
        pg_config: tokio_postgres::Config,
        tls: Option<MakeRustlsConnect>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<EventBus> {
        let (tx, _) = broadcast::channel(4096);
        let bus = Arc::new(EventBus {
            tx,
            connected: AtomicBool::new(false),
        });
        tokio::spawn(listen_forever(Arc::clone(&bus), pg_config, tls, shutdown));
        bus
    }

    /// A receiver of every event from now on. A receiver that lags gets
    /// `RecvError::Lagged` and should treat it like [`Event::Resync`].
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// True while the listening connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Waits until the listening connection is up, at most `limit`; false if it is not.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.is_connected() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// Sends `payload` to every instance, on commit of the caller's transaction if it is in one
/// (a pooled client or a transaction on one).
pub async fn publish(client: &impl GenericClient, payload: &str) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached("SELECT pg_notify($1, $2)").await?;
    client.execute(&statement, &[&CHANNEL, &payload]).await.map(drop)
}

async fn listen_forever(
    bus: Arc<EventBus>,
    pg_config: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let session = async {
            match &tls {
                Some(tls) => listen_once(&bus, &pg_config, tls.clone()).await,
                None => listen_once(&bus, &pg_config, NoTls).await,
            }
        };
        let outcome = tokio::select! {
            outcome = session => outcome,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let was_connected = bus.connected.swap(false, Ordering::Relaxed);
        if was_connected {
            backoff = Duration::from_millis(50);
        }
        match outcome {
            Ok(()) => tracing::warn!("event listener connection closed; reconnecting"),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "event listener down; reconnecting")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One connection's life: LISTEN, announce `Resync`, forward notifications until it drops.
async fn listen_once<T>(
    bus: &EventBus,
    pg_config: &tokio_postgres::Config,
    tls: T,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = pg_config.connect(tls).await?;
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel();
    let driver = async move {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message?
                && msg_tx.send(Event::Message(Arc::from(n.payload()))).is_err()
            {
                break;
            }
        }
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    };
    let forward = async {
        let serving: bool = client
            .query_one("SELECT pg_try_advisory_lock_shared($1)", &[&SERVING_LOCK])
            .await?
            .get(0);
        if !serving {
            return Err("a restore (zhifu restore) is running on this database".into());
        }
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        bus.connected.store(true, Ordering::Relaxed);
        tracing::debug!("event listener connected");
        let _ = bus.tx.send(Event::Resync);
        while let Some(event) = msg_rx.recv().await {
            let _ = bus.tx.send(event);
        }
        Ok(())
    };
    tokio::select! {
        result = driver => result,
        result = forward => result,
    }
}
