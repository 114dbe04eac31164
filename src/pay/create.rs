//! Creating orders, for every purpose; the engine writes `payments` and its `created` event.
//! Two ways:
//! - [`Engine::create`]: the provider order first, then ONE statement (payment, event and the
//!   purpose's row, `Purpose::create_row`), for purposes that hold nothing until paid
//!   (donations). A provider failure writes nothing.
//! - [`Engine::begin`] → the module reserves in [`Purchase::tx`] → [`Engine::submit`]: the
//!   payment and the module's rows commit in one transaction, then the provider order is
//!   made. A module error before `submit` rolls everything back; a provider failure closes the
//!   payment with its `on_closed` (nothing held); a process that dies between the commit and
//!   the provider's answer leaves a pending order without a QR code, which the reconcile job
//!   closes once the create's lease is over (again through `on_closed`).
//!
//! A purchase holds ONE pooled connection at a time: `begin` takes the caller's by value and
//! the [`Purchase`] owns it (its transaction opened with a plain `BEGIN`); `submit` commits
//! and gives it back to the pool before the provider call, then stores the QR code on a fresh
//! checkout. A purchase dropped unfinished never returns its connection mid-transaction (see
//! [`Purchase`]'s `Drop`). So as many purchases as connections can run at once and none waits
//! for a second connection while holding the first.

use std::sync::atomic::Ordering;
use std::time::Duration;

use deadpool_postgres::Client;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use super::close::CloseKind;
use super::engine::{Engine, EngineError, new_order_no, next_check};
use super::money::format_yuan;
use super::policy::PaymentPolicy;
use super::provider::{Channel, CreateOrder};
use super::purpose::{PROVIDER_MAX_FEN, Registered};
use super::rfc3339;
use super::status::{Snapshot, Status};

/// A new order, as a module asks for it.
#[derive(Debug, Clone)]
pub struct Order<'a> {
    /// A registered purpose's name (`payments.purpose`).
    pub purpose: &'a str,
    pub channel: Channel,
    /// Fen, within the purpose's bounds (`Purpose::amount_bounds`).
    pub amount_fen: i64,
    /// What the payer sees in their wallet (WeChat `description`, Alipay `subject`).
    pub description: &'a str,
    /// The order number an idempotent request was given (`http::idempotent::run` hands it to
    /// its work); `None` for a new one. A number already used answers that order as it stands.
    pub order_no: Option<String>,
}

/// An order as its create answers it: the contract's payment JSON ([`Created::json`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub order_no: String,
    /// `pending` for a new order; an order made before is answered as it stands.
    pub status: Status,
    pub channel: Channel,
    pub amount_fen: i64,
    /// What the QR code encodes (empty while an order made before still has none).
    pub code_url: String,
    pub expires_at: OffsetDateTime,
}

impl Created {
    /// The answer of `POST /api/donations` (contract), which purchases embed under
    /// `"payment"`: `order_no`, `status`, `amount`, `amount_fen`, `channel`, `code_url`,
    /// `qr_url`, `pay_url`, `expires_at`.
    pub fn json(&self) -> serde_json::Value {
        let no = &self.order_no;
        serde_json::json!({
            "order_no": no,
            "status": self.status.as_str(),
            "amount": format_yuan(self.amount_fen),
            "amount_fen": self.amount_fen,
            "channel": self.channel.as_str(),
            "code_url": self.code_url,
            "qr_url": format!("/api/payments/{no}/qr.png"),
            "pay_url": self.pay_url(),
            "expires_at": rfc3339(self.expires_at),
        })
    }

    /// `/pay/{order_no}`.
    pub fn pay_url(&self) -> String {
        format!("/pay/{}", self.order_no)
    }

    fn from_snapshot(snapshot: &Snapshot) -> Created {
        Created {
            order_no: snapshot.order_no.clone(),
            status: snapshot.status,
            channel: snapshot.channel,
            amount_fen: snapshot.amount_fen,
            code_url: snapshot.code_url.clone(),
            expires_at: snapshot.expires_at,
        }
    }
}

/// What [`Engine::begin`] started.
#[derive(Debug)]
pub enum Begun {
    /// A new order: reserve in [`Purchase::tx`], then [`Engine::submit`] (or drop it: nothing
    /// is written).
    New(Purchase),
    /// The order number was used before (a retried request whose first attempt died after
    /// its commit): nothing new was written; answer this order as it stands, with the
    /// module's own rows of it. The caller's connection went back to the pool.
    Existing(Created),
}

/// A purchase being created: it owns its pooled connection, inside the transaction the
/// payment row was written in ([`Purchase::tx`]), not committed. Dropping it unfinished rolls
/// everything back: the connection is rolled back off the request path and only then goes
/// back to the pool, or is discarded when that fails — never reused mid-transaction.
pub struct Purchase {
    /// `Some` while the transaction is open; taken by `submit` and [`Purchase::roll_back`].
    /// Boxed: a pooled object is large, and `Begun` moves the purchase around.
    client: Option<Box<Client>>,
    order_no: String,
    purpose: &'static str,
    channel: Channel,
    amount_fen: i64,
    description: String,
    expires_at: OffsetDateTime,
    next_check_at: OffsetDateTime,
    /// The payment's insert ([`BEGIN`]), prepared by [`Engine::open`].
    insert: Option<tokio_postgres::Statement>,
}

impl std::fmt::Debug for Purchase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Purchase")
            .field("order_no", &self.order_no)
            .field("channel", &self.channel)
            .field("amount_fen", &self.amount_fen)
            .field("open", &self.client.is_some())
            .finish()
    }
}

impl Purchase {
    /// The connection the module writes its rows and reservations on, inside the purchase's
    /// transaction (`prepare_cached` works as on any pooled client). The module must not
    /// commit or roll back on it: `submit` commits, dropping the purchase rolls back.
    pub fn tx(&self) -> &Client {
        self.client
            .as_deref()
            .expect("a purchase's connection is held until submit or roll_back")
    }

    /// The order number (the provider's `out_trade_no`), for the module's rows.
    pub fn order_no(&self) -> &str {
        &self.order_no
    }

    pub fn amount_fen(&self) -> i64 {
        self.amount_fen
    }

    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// Rolls the purchase back now and hands its connection back, out of any transaction
    /// (a module that starts over on the same connection, e.g. after a price changed).
    pub async fn roll_back(mut self) -> Result<Client, EngineError> {
        crate::store::bounded(async { self.tx().batch_execute("ROLLBACK").await.map_err(EngineError::from) }).await?;
        Ok(*self.client.take().expect("held until now"))
    }

    /// Ends the transaction with `COMMIT`; the connection, out of any transaction.
    async fn commit(&mut self) -> Result<Client, EngineError> {
        crate::store::bounded(async { self.tx().batch_execute("COMMIT").await.map_err(EngineError::from) }).await?;
        Ok(*self.client.take().expect("held until now"))
    }
}

impl Drop for Purchase {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            roll_back_detached(*client);
        }
    }
}

/// A connection that may still be inside a transaction: dropped while it holds one, it is
/// taken out of the pool for good (its connection closes) instead of going back dirty —
/// `RecyclingMethod::Fast` only checks that a connection is open.
struct Unclean(Option<Client>);

impl Drop for Unclean {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// Rolls back `client`'s open transaction on a task of its own (a `Drop` cannot wait), then
/// returns it to the pool; a rollback that fails or does not answer in time discards it.
fn roll_back_detached(client: Client) {
    let unclean = Unclean(Some(client));
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return; // No runtime to roll back on: `unclean` discards the connection.
    };
    runtime.spawn(async move {
        let mut unclean = unclean;
        let rolled_back = match unclean.0.as_ref() {
            Some(client) => tokio::time::timeout(crate::store::ANSWER_WITHIN, client.batch_execute("ROLLBACK")).await,
            None => return,
        };
        if matches!(rolled_back, Ok(Ok(()))) {
            // Out of the transaction: back to the pool.
            drop(unclean.0.take());
        }
    });
}

/// `$1` order_no, `$2` purpose, `$3` channel, `$4` amount, `$5` description, `$6` expires_at,
/// `$7` next_check_at: the payment (no QR code yet) and its event; 0 rows when the number
/// was taken.
const BEGIN: &str = "WITH p AS (
        INSERT INTO payments (order_no, purpose, channel, amount_fen, description, expires_at, next_check_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (order_no) DO NOTHING
        RETURNING order_no)
     INSERT INTO payment_events (order_no, kind, to_status, amount_fen, source)
     SELECT order_no, 'created', 'pending', $4, 'api' FROM p";

/// Stores the provider's QR code; 0 rows when the order closed meanwhile.
const STORE_CODE_URL: &str = "UPDATE payments SET code_url = $2, next_check_at = $3, updated_at = now()
      WHERE order_no = $1 AND status = 'pending' AND code_url IS NULL";

/// [`STORE_CODE_URL`] for an order made before (`$4` the event bus channel): pages may
/// already show it without a QR code on any instance, so every instance hears of it.
const STORE_LATE_CODE_URL: &str = "WITH u AS (
        UPDATE payments SET code_url = $2, next_check_at = $3, updated_at = now()
         WHERE order_no = $1 AND status = 'pending' AND code_url IS NULL
     RETURNING order_no, purpose)
     SELECT pg_notify($4, json_build_object('kind', 'payment', 'order_no', order_no, 'status', 'pending',
                                            'purpose', purpose)::text)
       FROM u";

/// The most of a description both providers take: WeChat's `description` is at most 127
/// bytes (Alipay's `subject` 256 characters).
const DESCRIPTION_MAX_BYTES: usize = 127;

/// `description` cut at a character boundary to what the providers take.
fn fit_description(description: &str) -> &str {
    let mut end = description.len().min(DESCRIPTION_MAX_BYTES);
    while !description.is_char_boundary(end) {
        end -= 1;
    }
    &description[..end]
}

fn now_secs() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

impl Engine {
    /// How long a `begin`…`submit` may take before the reconcile job may close its order as
    /// abandoned: the commit, one provider call and storing its answer, with room to spare.
    pub fn submit_lease(&self) -> Duration {
        2 * self.settings.call_budget()
    }

    /// The registered purpose of `order` and the policy in force, once the channel, the
    /// amount and the purpose are checked.
    fn check(&self, order: &Order<'_>) -> Result<(&Registered, std::sync::Arc<PaymentPolicy>), EngineError> {
        let entry = self
            .settings
            .purposes
            .entry(order.purpose)
            .ok_or_else(|| EngineError::UnknownPurpose(order.purpose.to_string()))?;
        let policy = self.policy.current();
        if !policy.accepts(order.channel) {
            return Err(EngineError::ChannelDisabled(order.channel));
        }
        let bounds = entry.purpose.amount_bounds(&policy);
        let (min_fen, max_fen) = ((*bounds.start()).max(1), (*bounds.end()).min(PROVIDER_MAX_FEN));
        if !(min_fen..=max_fen).contains(&order.amount_fen) {
            return Err(EngineError::AmountOutOfBounds { min_fen, max_fen });
        }
        Ok((entry, policy))
    }

    /// Provider first, then one statement: the payment, its `created` event and the
    /// purpose's own row (`Purpose::create_row`, bound to `row`: its `$9…`). For purposes that
    /// hold nothing until paid. A provider failure writes nothing.
    pub async fn create(&self, order: Order<'_>, row: &[&(dyn ToSql + Sync)]) -> Result<Created, EngineError> {
        if let Some(no) = &order.order_no
            && let Some(made) = crate::store::bounded(self.status.get(&self.store, no)).await?
        {
            return Ok(Created::from_snapshot(&made));
        }
        let (entry, policy) = self.check(&order)?;
        let description = fit_description(order.description);
        let now = now_secs();
        let expires_at = now + policy.order_ttl;
        let order_no = order.order_no.clone().unwrap_or_else(new_order_no);
        let code_url = self
            .provider_create(
                &order_no,
                order.channel,
                order.amount_fen,
                order.description,
                expires_at,
            )
            .await?;
        let next_check_at = next_check(now, 0, expires_at);
        let channel = order.channel.as_str();
        let ours: [&(dyn ToSql + Sync); 8] = [
            &order_no,
            &order.purpose,
            &channel,
            &order.amount_fen,
            &code_url,
            &description,
            &expires_at,
            &next_check_at,
        ];
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(ours.len() + row.len());
        params.extend_from_slice(&ours);
        params.extend_from_slice(row);
        let inserted = crate::store::bounded(async {
            let client = self.store.client().await?;
            let statement = client.prepare_cached(&entry.create_sql).await?;
            Ok::<u64, EngineError>(client.execute(&statement, &params).await?)
        })
        .await?;
        if inserted == 0 {
            // Its number was taken meanwhile: that order, as it stands.
            let made = crate::store::bounded(self.status.get(&self.store, &order_no)).await?;
            return made
                .map(|m| Created::from_snapshot(&m))
                .ok_or(EngineError::UnknownOrder);
        }
        let created = Created {
            order_no,
            status: Status::Pending,
            channel: order.channel,
            amount_fen: order.amount_fen,
            code_url,
            expires_at,
        };
        self.remember(&created, entry.purpose.name(), description).await;
        Ok(created)
    }

    /// Starts a purchase on `client` (a pooled connection the purchase owns from here on):
    /// inserts the pending payment (no provider order yet) and its `created` event in a
    /// transaction, for the module to write its own rows and reservations in
    /// ([`Purchase::tx`]) before [`Engine::submit`]. On a taken order number the connection
    /// goes back to the pool before the order made before is read ([`Begun::Existing`]).
    /// [`Engine::open`] and [`Engine::start`] do the same with the module's first statement
    /// sent in the same round trip.
    pub async fn begin(&self, client: Client, order: Order<'_>) -> Result<Begun, EngineError> {
        let purchase = self.open(client, order).await?;
        if self.start(&purchase).await? {
            Ok(Begun::New(purchase))
        } else {
            self.taken(purchase).await.map(Begun::Existing)
        }
    }

    /// A purchase on `client` (which it owns from here on), checked (channel, amount,
    /// purpose), its number chosen and its statement prepared, nothing sent yet: the module
    /// prepares its own first statement, then polls [`Engine::start`] and that statement on
    /// [`Purchase::tx`] together, `start` first (`tokio::join!(biased; …)`), so `BEGIN`, the
    /// payment and the module's statement go to the server at once, in that order, in one
    /// round trip, and run in one transaction. Should `start` fail or find the number taken,
    /// the module's statement ran in a transaction that is rolled back: its outcome is
    /// ignored.
    pub async fn open(&self, client: Client, order: Order<'_>) -> Result<Purchase, EngineError> {
        let (entry, policy) = self.check(&order)?;
        let now = now_secs();
        let expires_at = now + policy.order_ttl;
        // A failure from here on drops the purchase, which rolls its connection back.
        let mut purchase = Purchase {
            client: Some(Box::new(client)),
            order_no: order.order_no.clone().unwrap_or_else(new_order_no),
            purpose: entry.purpose.name(),
            channel: order.channel,
            amount_fen: order.amount_fen,
            description: fit_description(order.description).to_string(),
            expires_at,
            // The reconcile job leaves the order alone while its submit may still be at work.
            next_check_at: now + self.submit_lease(),
            insert: None,
        };
        purchase.insert = Some(purchase.tx().prepare_cached(BEGIN).await?);
        Ok(purchase)
    }

    /// Sends `BEGIN` and the payment's insert (with its `created` event) of an opened
    /// purchase without waiting in between: `true` once both ran, `false` when its number
    /// was taken (then [`Engine::taken`]). `BEGIN` on a pooled connection, which is never
    /// inside a transaction, fails only when the connection does, and then so do the
    /// statements behind it; were they ever to run without it, each would commit on its own:
    /// a pending order without a QR code and the module's rows, which the reconcile job
    /// closes once the lease is over, through the purpose's `on_closed` (what was held comes
    /// back), as for a process that died before `submit`.
    pub async fn start(&self, purchase: &Purchase) -> Result<bool, EngineError> {
        let tx = purchase.tx();
        let statement = purchase.insert.as_ref().expect("prepared by open");
        let channel = purchase.channel.as_str();
        let params: [&(dyn ToSql + Sync); 7] = [
            &purchase.order_no,
            &purchase.purpose,
            &channel,
            &purchase.amount_fen,
            &purchase.description,
            &purchase.expires_at,
            &purchase.next_check_at,
        ];
        let (_, inserted) = tokio::try_join!(biased; tx.batch_execute("BEGIN"), tx.execute(statement, &params))?;
        Ok(inserted != 0)
    }

    /// A purchase whose number was taken ([`Engine::start`] answered `false`): rolled back,
    /// its connection back to the pool, and the order made before as it stands.
    pub async fn taken(&self, purchase: Purchase) -> Result<Created, EngineError> {
        let order_no = purchase.order_no.clone();
        // Back to the pool before `existing` takes a connection of its own.
        drop(purchase.roll_back().await?);
        self.existing(&order_no).await
    }

    /// Commits the purchase and gives its connection back to the pool, then creates its
    /// provider order (no connection held through the provider call) and stores the QR code
    /// on a fresh checkout. On a provider failure the payment is closed (`create_failed`)
    /// together with its purpose's `on_closed`, so nothing stays held, and the error is
    /// returned.
    pub async fn submit(&self, mut purchase: Purchase) -> Result<Created, EngineError> {
        drop(purchase.commit().await?);
        let order_no = std::mem::take(&mut purchase.order_no);
        let description = std::mem::take(&mut purchase.description);
        let (purpose, channel, amount_fen, expires_at) = (
            purchase.purpose,
            purchase.channel,
            purchase.amount_fen,
            purchase.expires_at,
        );
        drop(purchase);
        let made = self
            .provider_create(&order_no, channel, amount_fen, &description, expires_at)
            .await;
        let code_url = match made {
            Ok(code_url) => code_url,
            Err(e) => {
                let detail = serde_json::json!({ "error": e.to_string() });
                if let Err(close) = self.close_here(&order_no, CloseKind::CreateFailed, "api", detail).await {
                    tracing::warn!(%order_no, error = %close, "cannot close a purchase whose provider order failed; reconcile will");
                }
                return Err(e);
            }
        };
        let next_check_at = next_check(now_secs(), 0, expires_at);
        let stored = crate::store::bounded(async {
            let client = self.store.client().await?;
            let statement = client.prepare_cached(STORE_CODE_URL).await?;
            Ok::<u64, EngineError>(
                client
                    .execute(&statement, &[&order_no, &code_url, &next_check_at])
                    .await?,
            )
        })
        .await?;
        if stored == 0 {
            return Err(EngineError::Abandoned);
        }
        let created = Created {
            order_no,
            status: Status::Pending,
            channel,
            amount_fen,
            code_url,
            expires_at,
        };
        self.remember(&created, purpose, &description).await;
        Ok(created)
    }

    /// An order made before, as it stands; a pending one whose QR code was never stored (its
    /// request died before the provider answered) gets it now, from the provider, under the
    /// same number.
    async fn existing(&self, order_no: &str) -> Result<Created, EngineError> {
        let made = crate::store::bounded(self.status.get(&self.store, order_no))
            .await?
            .ok_or(EngineError::UnknownOrder)?;
        if made.status != Status::Pending || !made.code_url.is_empty() {
            return Ok(Created::from_snapshot(&made));
        }
        let code_url = self
            .provider_create(
                order_no,
                made.channel,
                made.amount_fen,
                &made.description,
                made.expires_at,
            )
            .await?;
        let next_check_at = next_check(now_secs(), 0, made.expires_at);
        let stored = crate::store::bounded(async {
            let client = self.store.client().await?;
            let statement = client.prepare_cached(STORE_LATE_CODE_URL).await?;
            let channel = crate::store::events::CHANNEL;
            Ok::<u64, EngineError>(
                client
                    .execute(&statement, &[&order_no, &code_url, &next_check_at, &channel])
                    .await?,
            )
        })
        .await?;
        self.status.changed(order_no).await;
        if stored == 0 {
            let made = crate::store::bounded(self.status.get(&self.store, order_no)).await?;
            return made
                .map(|m| Created::from_snapshot(&m))
                .ok_or(EngineError::UnknownOrder);
        }
        Ok(Created {
            code_url,
            ..Created::from_snapshot(&made)
        })
    }

    /// Creates the QR order at the provider; returns what the QR code encodes. Asking again
    /// with the same number and terms makes no second order.
    async fn provider_create(
        &self,
        order_no: &str,
        channel: Channel,
        amount_fen: i64,
        description: &str,
        expires_at: OffsetDateTime,
    ) -> Result<String, EngineError> {
        let notify_url = self.notify_url(channel);
        let order = CreateOrder {
            order_no,
            amount_fen,
            description,
            expires_at,
            notify_url: &notify_url,
        };
        let created = self.providers.get(channel)?.create(&order).await.inspect_err(|_| {
            self.metrics.provider_errors.fetch_add(1, Ordering::Relaxed);
        })?;
        Ok(created.code_url)
    }

    /// Seeds the status board with an order just stored, so its first polls need no query.
    async fn remember(&self, order: &Created, purpose: &str, description: &str) {
        self.metrics.created.fetch_add(1, Ordering::Relaxed);
        let snapshot = Snapshot::new(
            order.order_no.clone(),
            purpose.to_string(),
            Status::Pending,
            order.channel,
            order.amount_fen,
            description.to_string(),
            order.code_url.clone(),
            order.expires_at,
            None,
            false,
            0,
        );
        self.status.put(snapshot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_cut_to_what_wechat_takes_at_a_character_boundary() {
        assert_eq!(fit_description("捐赠 · 助学"), "捐赠 · 助学");
        let long = "助".repeat(50); // 150 bytes
        let cut = fit_description(&long);
        assert_eq!(cut.len(), 126, "42 whole characters of 3 bytes");
        assert!(long.starts_with(cut));
        assert_eq!(fit_description(&"a".repeat(200)).len(), 127);
    }
}
