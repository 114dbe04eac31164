//! Outgoing mail. [`enqueue`] writes a mail into `mail_outbox` inside the caller's
//! transaction, so it exists exactly when what caused it committed and a crash never loses
//! it. With `mail.smtp_url` set, [`run_sender`] (on every instance; rows are claimed with
//! `SKIP LOCKED`) sends due mail through lettre and retries transient failures with back-off;
//! a mail may go out twice if an instance dies between the server's acceptance and the
//! commit of `sent_at`, never zero times. With the URL empty, mail is kept in the outbox,
//! shown at `GET /sandbox/mail` in sandbox mode.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::GenericClient;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{broadcast, watch};

use crate::config;
use crate::pay::rfc3339;
use crate::store::events::{Event, EventBus};
use crate::store::{Store, StoreError};

/// Mail claimed per round.
const BATCH: i64 = 10;
/// Attempts before a mail is given up (its row keeps the last error).
const MAX_ATTEMPTS: i32 = 20;
/// Seconds between looks at the outbox when no event came (retries fall due meanwhile).
const IDLE_SECS: u64 = 30;

const INSERT: &str = "INSERT INTO mail_outbox (to_addr, subject, body, delivery, sent_at)
     VALUES ($1, $2, $3, $4, CASE WHEN $4 = 'outbox' THEN now() END)";

/// Writes a mail to `to` in the caller's transaction; sent (or kept) after it commits.
pub async fn enqueue(
    client: &impl GenericClient,
    settings: &config::Mail,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), tokio_postgres::Error> {
    let delivery = if settings.smtp_url.is_empty() { "outbox" } else { "smtp" };
    let statement = client.prepare_cached(INSERT).await?;
    client.execute(&statement, &[&to, &subject, &body, &delivery]).await?;
    if delivery == "smtp" {
        crate::store::events::publish(client, r#"{"kind":"mail"}"#).await?;
    }
    Ok(())
}

const OUTBOX: &str = "SELECT to_addr, subject, body, sent_at FROM mail_outbox ORDER BY id DESC LIMIT 100";

/// `GET /sandbox/mail`: the latest 100 mails, newest first, as
/// `{"items":[{"to","subject","text","sent_at"}]}`.
pub async fn outbox_json(store: &Store) -> Result<Bytes, StoreError> {
    let client = store.client().await?;
    let statement = client.prepare_cached(OUTBOX).await?;
    let items: Vec<_> = client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|row| {
            serde_json::json!({
                "to": row.get::<_, String>(0),
                "subject": row.get::<_, String>(1),
                "text": row.get::<_, String>(2),
                "sent_at": row.get::<_, Option<time::OffsetDateTime>>(3).map(rfc3339),
            })
        })
        .collect();
    Ok(Bytes::from(serde_json::json!({ "items": items }).to_string()))
}

/// Sends due mail until shutdown; returns at once when `mail.smtp_url` is empty.
pub async fn run_sender(
    store: Store,
    events: Arc<EventBus>,
    settings: config::Mail,
    mut shutdown: watch::Receiver<bool>,
) {
    if settings.smtp_url.is_empty() {
        return;
    }
    let (transport, from) = match transport(&settings) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!(error = %e, "mail cannot be sent (mail.smtp_url, mail.from); it stays in the outbox");
            return;
        }
    };
    let mut events = events.subscribe();
    loop {
        match send_due(&store, &transport, &from).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(mails = n, "mail round done"),
            Err(e) => tracing::warn!(error = %e, "cannot read the mail outbox; retrying"),
        }
        if wait_for_mail(&mut events, &mut shutdown).await {
            return;
        }
    }
}

fn transport(settings: &config::Mail) -> anyhow::Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.expose())
        .map_err(|_| anyhow::anyhow!("mail.smtp_url is not an SMTP URL"))?
        .timeout(Some(Duration::from_secs(settings.timeout_secs)))
        .build();
    let from = settings.from.parse()?;
    Ok((transport, from))
}

/// Waits for a `mail` event, a resync or [`IDLE_SECS`]; true when shutting down.
async fn wait_for_mail(events: &mut broadcast::Receiver<Event>, shutdown: &mut watch::Receiver<bool>) -> bool {
    let mail = async {
        loop {
            match events.recv().await {
                Ok(Event::Message(payload)) if payload.contains(r#""kind":"mail""#) => return,
                Ok(Event::Message(_)) => {}
                Ok(Event::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    };
    tokio::select! {
        () = mail => false,
        () = tokio::time::sleep(Duration::from_secs(IDLE_SECS)) => false,
        _ = shutdown.wait_for(|stop| *stop) => true,
    }
}

/// Claims due mail: the claim pushes `next_attempt_at` out, so an instance that dies while
/// sending leaves the mail to be retried then.
const CLAIM: &str = "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = now() + interval '10 minutes'
  WHERE id IN (SELECT id FROM mail_outbox
                WHERE delivery = 'smtp' AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
                ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
  RETURNING id, to_addr, subject, body, attempts";
const SENT: &str = "UPDATE mail_outbox SET sent_at = now(), last_error = '' WHERE id = $1";
const RETRY: &str = "UPDATE mail_outbox SET last_error = $2,
        next_attempt_at = now() + make_interval(secs => $3),
        failed_at = CASE WHEN $4 THEN now() END
  WHERE id = $1";

/// Sends every due mail; returns how many were attempted.
async fn send_due(
    store: &Store,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
) -> Result<usize, StoreError> {
    let mut attempted = 0;
    loop {
        let client = store.job_client().await?;
        let claim = client.prepare_cached(CLAIM).await?;
        let rows = client.query(&claim, &[&BATCH]).await?;
        drop(client);
        for row in &rows {
            let id: i64 = row.get(0);
            let attempts: i32 = row.get(4);
            let outcome = send_one(transport, from, row.get(1), row.get(2), row.get(3)).await;
            let client = store.job_client().await?;
            match outcome {
                Ok(()) => {
                    let sent = client.prepare_cached(SENT).await?;
                    client.execute(&sent, &[&id]).await?;
                }
                Err((error, permanent)) => {
                    let give_up = permanent || attempts >= MAX_ATTEMPTS;
                    // 30 s, 1 min, 2 min … at most 6 h.
                    let wait = (30.0 * 2f64.powi(attempts.saturating_sub(1).min(10))).min(6.0 * 3600.0);
                    tracing::warn!(mail = id, attempts, give_up, %error, "mail not sent");
                    let retry = client.prepare_cached(RETRY).await?;
                    client.execute(&retry, &[&id, &error, &wait, &give_up]).await?;
                }
            }
            attempted += 1;
        }
        if (rows.len() as i64) < BATCH {
            return Ok(attempted);
        }
    }
}

/// One SMTP exchange; the error's text and whether it is permanent.
async fn send_one(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), (String, bool)> {
    let to: Mailbox = to.parse().map_err(|_| ("the address is not valid".to_string(), true))?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .map_err(|e| (format!("the mail could not be built: {e}"), true))?;
    transport
        .send(message)
        .await
        .map(drop)
        .map_err(|e| (e.to_string(), e.is_permanent()))
}
