//! The outbound HTTP client the providers' APIs and the sandbox's callbacks go through:
//! pooled keep-alive connections, TLS by rustls with Mozilla's roots compiled in (no reliance
//! on the host's trust store), and one deadline per request.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Largest response body accepted from a provider.
const MAX_RESPONSE: usize = 1 << 20;

/// Why an outbound request failed before a response could be read.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("response body over {MAX_RESPONSE} bytes")]
    TooLarge,
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A cheap-to-clone pooled client.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client whose every request (connect, send, read the whole body) ends within `timeout`.
    /// Plain `http://` is allowed for the sandbox and tests; configuration validation keeps
    /// production gateways on https.
    pub fn new(timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::aws_lc_rs::default_provider())
            .expect("the aws-lc-rs provider supports the default protocol versions")
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(50))
            .pool_max_idle_per_host(32)
            .build(https);
        HttpClient { client, timeout }
    }

    /// Sends `request` and reads the whole response within the deadline.
    pub async fn send(&self, request: Request<Bytes>) -> Result<HttpResponse, OutboundError> {
        let request = request.map(Full::new);
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| OutboundError::Transport(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                        OutboundError::TooLarge
                    } else {
                        OutboundError::Transport(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(HttpResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(OutboundError::Timeout(self.timeout)))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
