//! Shared pieces of the provider emulators (`pay::wechat::emulator`, `pay::alipay::emulator`):
//! scripted answers for tests. The emulators speak the providers' real wire protocols with
//! keys generated at start, so the real clients, signing and verification run end to end;
//! [`Faults`] lets a test say what the next calls of one API answer (an error code, a server
//! error, a delay, a bad signature, or "done, but answered with an error"), add latency to
//! every call, and count the calls each API received.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The provider API a call goes to, so a fault can be aimed at one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// WeChat `POST /v3/pay/transactions/native`, Alipay `alipay.trade.precreate`.
    Create,
    /// WeChat `GET …/out-trade-no/{no}`, Alipay `alipay.trade.query`.
    Query,
    /// WeChat `POST …/close`, Alipay `alipay.trade.close`.
    Close,
    /// WeChat `POST /v3/refund/domestic/refunds`, Alipay `alipay.trade.refund`.
    Refund,
    /// WeChat `GET /v3/refund/domestic/refunds/{no}`, Alipay `alipay.trade.fastpay.refund.query`.
    RefundQuery,
    /// Anything else (certificates, unknown paths and methods).
    Other,
}

impl Api {
    const ALL: [Api; 6] = [
        Api::Create,
        Api::Query,
        Api::Close,
        Api::Refund,
        Api::RefundQuery,
        Api::Other,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// A failure the emulator produces on a call, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer the provider's error format with this code (WeChat `code` with the HTTP status
    /// WeChat documents for it, e.g. 429 for `FREQUENCY_LIMITED`; Alipay `sub_code`).
    Reject { code: String, message: String },
    /// Answer HTTP 500 (WeChat: `SYSTEM_ERROR`; Alipay: an HTML error page).
    ServerError,
    /// Wait this long before answering (longer than the client's timeout = a timeout).
    Delay(Duration),
    /// Answer with a signature made by the wrong key.
    BadSignature,
    /// Carry the request out (an order made, a refund booked), then answer as `then` says
    /// instead of with the real answer: the provider did it, but the answer says otherwise or
    /// never arrives (`Delay`).
    AfterApplying(Box<Fault>),
}

/// Faults queued for upcoming API calls, latency added to every call, and call counts.
#[derive(Debug, Default)]
pub struct Faults {
    /// `(api, fault)`: `None` = the next call of any API.
    queue: Mutex<Vec<(Option<Api>, Fault)>>,
    /// Added before every answer, in milliseconds.
    latency_ms: AtomicU64,
    calls: [AtomicU64; 6],
    /// Calls being answered now, and the most there ever were at once.
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
}

/// Counts a call as in flight until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Faults);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Faults {
    /// Queues `fault` for the next call (of any API) that has none queued before it.
    pub fn push(&self, fault: Fault) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.push((None, fault));
        }
    }

    /// Queues `fault` for the next call of `api`.
    pub fn push_on(&self, api: Api, fault: Fault) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.push((Some(api), fault));
        }
    }

    /// Counts a call of `api` and takes the first fault queued for it (or for any API).
    pub fn take(&self, api: Api) -> Option<Fault> {
        self.calls[api.index()].fetch_add(1, Ordering::Relaxed);
        let mut queue = self.queue.lock().ok()?;
        let at = queue.iter().position(|(target, _)| target.is_none_or(|t| t == api))?;
        Some(queue.remove(at).1)
    }

    /// Every later call waits `latency` before it is answered (a distant provider).
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.latency_ms.store(ms, Ordering::Relaxed);
    }

    /// The latency every call waits.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    /// How many calls of `api` the emulator received so far.
    pub fn calls(&self, api: Api) -> u64 {
        self.calls[api.index()].load(Ordering::Relaxed)
    }

    /// Marks a call in flight until the guard drops (the emulators hold it while answering).
    pub fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.most_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(self)
    }

    /// The most calls that were ever being answered at once.
    pub fn most_in_flight(&self) -> u64 {
        self.most_in_flight.load(Ordering::Relaxed)
    }

    /// Calls of every API so far.
    pub fn total_calls(&self) -> u64 {
        Api::ALL.iter().map(|api| self.calls(*api)).sum()
    }
}

/// For the provider modules' tests: serves every connection on a fresh loopback port with
/// `handler`, until the test's runtime ends.
#[cfg(test)]
pub(crate) async fn serve_loopback<F, Fut>(handler: F) -> std::net::SocketAddr
where
    F: Fn(http::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let handler = handler.clone();
                    async move { Ok::<_, std::convert::Infallible>(handler(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_aimed_at_an_api_wait_for_it_and_calls_are_counted() {
        let faults = Faults::default();
        faults.push_on(Api::Refund, Fault::ServerError);
        faults.push(Fault::BadSignature);
        assert_eq!(faults.take(Api::Query), Some(Fault::BadSignature));
        assert_eq!(faults.take(Api::Query), None, "the refund fault waits for a refund");
        assert_eq!(faults.take(Api::Refund), Some(Fault::ServerError));
        assert_eq!(faults.take(Api::Refund), None);
        assert_eq!((faults.calls(Api::Query), faults.calls(Api::Refund)), (2, 2));
        assert_eq!(faults.total_calls(), 4);
    }
}
