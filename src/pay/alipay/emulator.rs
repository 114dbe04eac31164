//! SKELETON — to be implemented. The Alipay emulator.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method};
use http_body_util::Full;

use super::client::AlipayCredentials;
use crate::pay::outbound::HttpClient;
use crate::pay::sandbox::Faults;

/// What the emulator needs: the app's public key and Alipay's private key.
#[derive(Debug)]
pub struct AlipayEmulatorConfig {}

/// Emulates WeChat Pay's API for one merchant.
#[derive(Debug)]
pub struct AlipayEmulator {}

impl AlipayEmulator {
    /// Matching credentials (for the client) and emulator configuration, with fresh keys.
    pub fn sandbox_pair() -> (AlipayCredentials, AlipayEmulatorConfig) {
        todo!()
    }

    pub fn new(_config: AlipayEmulatorConfig, _http: HttpClient) -> Arc<Self> {
        todo!()
    }

    /// Serves one API request; `path_and_query` as WeChat's (e.g. `/v3/pay/transactions/native`).
    pub async fn handle(
        self: &Arc<Self>,
        _method: &Method,
        _path_and_query: &str,
        _headers: &HeaderMap,
        _body: Bytes,
    ) -> http::Response<Full<Bytes>> {
        todo!()
    }

    /// Pays `order_no` and delivers the signed TRADE_SUCCESS notification to the
    /// order's notify_url until acknowledged.
    pub async fn pay(&self, _order_no: &str) -> Result<(), String> {
        todo!()
    }

    pub fn faults(&self) -> &Faults {
        todo!()
    }
}
