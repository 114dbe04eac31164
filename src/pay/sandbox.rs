//! Shared pieces of the provider emulators (`pay::wechat::emulator`, `pay::alipay::emulator`):
//! fault injection for tests. The emulators speak the providers' real wire protocols with
//! keys generated at start, so the real clients, signing and verification run end to end.

use std::sync::Mutex;
use std::time::Duration;

/// A failure the emulator produces on the next API call(s), for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer the provider's error format with this code (WeChat `code`, Alipay `sub_code`).
    Reject { code: String, message: String },
    /// Answer HTTP 500 with a body.
    ServerError,
    /// Wait this long before answering (longer than the client's timeout = a timeout).
    Delay(Duration),
    /// Answer with a signature made by the wrong key.
    BadSignature,
}

/// Faults queued for upcoming API calls, consumed one per call.
#[derive(Debug, Default)]
pub struct Faults(Mutex<Vec<Fault>>);

impl Faults {
    /// Queues `fault` for the next call that has none queued before it.
    pub fn push(&self, fault: Fault) {
        if let Ok(mut queue) = self.0.lock() {
            queue.push(fault);
        }
    }

    /// Takes the fault for this call, if any.
    pub fn take(&self) -> Option<Fault> {
        self.0
            .lock()
            .ok()
            .and_then(|mut queue| (!queue.is_empty()).then(|| queue.remove(0)))
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
