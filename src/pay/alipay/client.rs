//! SKELETON — to be implemented. The Alipay client.

use crate::config;
use crate::pay::keys::{KeyError, PrivateKey, PublicKey};
use crate::pay::outbound::HttpClient;
use crate::pay::provider::{
    CreateOrder, Created, Notification, NotifyError, ProviderError, RefundOrder, RefundState, TradeState,
};

/// The merchant's credentials and the keys that verify WeChat Pay.
#[derive(Debug)]
pub struct AlipayCredentials {
    pub mchid: String,
    pub appid: String,
    pub merchant_serial_no: String,
    pub merchant_key: PrivateKey,
    /// The 32-byte APIv3 key (AES-256-GCM key of notification resources).
    pub api_v3_key: [u8; 32],
    /// `PUB_KEY_ID_…` of the WeChat Pay public key (public-key mode); empty if none.
    pub platform_public_key_id: String,
    pub platform_public_key: Option<PublicKey>,
}

impl AlipayCredentials {
    /// Loads the key files named by `payments.alipay.*`.
    pub fn from_config(_c: &config::Alipay) -> Result<Self, KeyError> {
        todo!()
    }
}

/// An Alipay client for one app.
#[derive(Debug)]
pub struct AlipayClient {}

impl AlipayClient {
    pub fn new(_credentials: AlipayCredentials, _api_base: String, _http: HttpClient) -> Self {
        todo!()
    }

    pub async fn create(&self, _order: &CreateOrder<'_>) -> Result<Created, ProviderError> {
        todo!()
    }

    pub async fn query(&self, _order_no: &str) -> Result<TradeState, ProviderError> {
        todo!()
    }

    pub async fn close(&self, _order_no: &str) -> Result<(), ProviderError> {
        todo!()
    }

    pub async fn refund(&self, _refund: &RefundOrder<'_>) -> Result<RefundState, ProviderError> {
        todo!()
    }

    pub async fn query_refund(&self, _refund_no: &str) -> Result<RefundState, ProviderError> {
        todo!()
    }

    /// Verifies a form-encoded notification (RSA2 over the sorted parameters without `sign`
    /// and `sign_type`) and checks app_id / seller_id.
    pub fn verify_notification(&self, _body: &[u8]) -> Result<Notification, NotifyError> {
        todo!()
    }
}
