//! The enabled providers behind one enum (no `dyn` needed): each call goes to the WeChat Pay
//! or the Alipay client, and the providers' documented refusal codes decide which refund
//! answers are final.

use super::alipay::AlipayClient;
use super::engine::EngineError;
use super::provider::{Channel, CreateOrder, Created, ProviderError, RefundOrder, RefundState, TradeState};
use super::wechat::WechatClient;

/// The enabled providers' clients (`None` = channel off).
#[derive(Debug, Default)]
pub struct Providers {
    pub wechat: Option<WechatClient>,
    pub alipay: Option<AlipayClient>,
}

/// One enabled provider, whichever protocol it speaks.
#[derive(Debug, Clone, Copy)]
pub enum Provider<'a> {
    Wechat(&'a WechatClient),
    Alipay(&'a AlipayClient),
}

impl Providers {
    /// The client of `channel`, or `ChannelDisabled`.
    pub fn get(&self, channel: Channel) -> Result<Provider<'_>, EngineError> {
        let provider = match channel {
            Channel::Wechat => self.wechat.as_ref().map(Provider::Wechat),
            Channel::Alipay => self.alipay.as_ref().map(Provider::Alipay),
        };
        provider.ok_or(EngineError::ChannelDisabled(channel))
    }

    /// The channels with a configured provider.
    pub fn channels(&self) -> Vec<Channel> {
        let mut channels = Vec::with_capacity(2);
        if self.wechat.is_some() {
            channels.push(Channel::Wechat);
        }
        if self.alipay.is_some() {
            channels.push(Channel::Alipay);
        }
        channels
    }
}

impl Provider<'_> {
    pub async fn create(self, order: &CreateOrder<'_>) -> Result<Created, ProviderError> {
        match self {
            Provider::Wechat(c) => c.create(order).await,
            Provider::Alipay(c) => c.create(order).await,
        }
    }

    pub async fn query(self, order_no: &str) -> Result<TradeState, ProviderError> {
        match self {
            Provider::Wechat(c) => c.query(order_no).await,
            Provider::Alipay(c) => c.query(order_no).await,
        }
    }

    pub async fn close(self, order_no: &str) -> Result<(), ProviderError> {
        match self {
            Provider::Wechat(c) => c.close(order_no).await,
            Provider::Alipay(c) => c.close(order_no).await,
        }
    }

    pub async fn refund(self, refund: &RefundOrder<'_>) -> Result<RefundState, ProviderError> {
        match self {
            Provider::Wechat(c) => c.refund(refund).await,
            Provider::Alipay(c) => c.refund(refund).await,
        }
    }

    /// Where the provider's books say a refund stands; `None` when it has no such refund.
    pub async fn query_refund(self, order_no: &str, refund_no: &str) -> Result<Option<RefundState>, ProviderError> {
        match self {
            Provider::Wechat(c) => c.query_refund(refund_no).await,
            Provider::Alipay(c) => c.query_refund_of(order_no, refund_no).await,
        }
    }

    /// True when `error`, the answer to a refund request, is a signed refusal the provider
    /// documents as final. Everything else (rate limits, busy, 5xx, timeouts, unsigned or
    /// unverifiable answers, codes it does not document) may still be followed by the money
    /// moving, so the refund is retried with the same refund number.
    pub fn refused_for_good(self, error: &ProviderError) -> bool {
        let ProviderError::Rejected { code, .. } = error else {
            return false;
        };
        match self {
            Provider::Wechat(_) => super::wechat::client::refund_refusal_is_final(code),
            Provider::Alipay(_) => super::alipay::client::refund_refusal_is_final(code),
        }
    }
}
