//! SKELETON — to be implemented. The WeChat Pay v3 client.

use http::HeaderMap;

use crate::config;
use crate::pay::keys::{KeyError, PrivateKey, PublicKey};
use crate::pay::outbound::HttpClient;
use crate::pay::provider::{
    CreateOrder, Created, Notification, NotifyError, ProviderError, RefundOrder, RefundState, TradeState,
};

/// The merchant's credentials and the keys that verify WeChat Pay.
#[derive(Debug)]
pub struct WechatCredentials {
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

impl WechatCredentials {
    /// Loads the key files named by `payments.wechat.*`.
    pub fn from_config(_c: &config::Wechat) -> Result<Self, KeyError> {
        todo!()
    }
}

/// A WeChat Pay v3 client for one merchant.
#[derive(Debug)]
pub struct WechatClient {}

impl WechatClient {
    pub fn new(_credentials: WechatCredentials, _api_base: String, _http: HttpClient) -> Self {
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

    /// Verifies (signature over the raw body, ±300 s around `now`), decrypts and checks
    /// mchid/appid of a notification.
    pub fn verify_notification(
        &self,
        _headers: &HeaderMap,
        _body: &[u8],
        _now: i64,
    ) -> Result<Notification, NotifyError> {
        todo!()
    }
}
