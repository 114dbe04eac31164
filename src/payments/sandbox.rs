//! The sandbox's routes (`payments.sandbox: true`, `sandbox` feature): `POST /sandbox/pay/{no}`
//! pays an order through its provider's emulator, which sends the real signed callback, and
//! the emulators' APIs are mounted under `/sandbox/wechat/…` and `/sandbox/alipay/gateway.do`.

use super::*;
use crate::pay::alipay::AlipayEmulator;
use crate::pay::wechat::WechatEmulator;

/// The provider emulators served when `payments.sandbox` is on.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub wechat: Arc<WechatEmulator>,
    pub alipay: Arc<AlipayEmulator>,
    /// WeChat sign-in (`jscode2session`, OAuth) for the sandbox's accounts.
    pub wechat_login: Arc<crate::account::wechat::LoginEmulator>,
}

/// `POST /sandbox/pay/{order_no}`: the emulator pays the order and sends the real signed
/// callback; answers with the order's status (a form post is sent back to the pay page).
pub async fn sandbox_pay(
    engine: &Engine,
    sandbox: &Sandbox,
    order_no: &str,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let order = snapshot(engine, order_no).await?;
    let paid = match order.channel {
        Channel::Wechat => sandbox.wechat.pay(order_no).await,
        Channel::Alipay => sandbox.alipay.pay(order_no).await,
    };
    if let Err(why) = paid {
        return Err(AppError::conflict(
            "sandbox_refused",
            format!("the sandbox could not pay this order: {why}"),
        ));
    }
    let is_form = extract::body_kind(headers, &[extract::BodyKind::Form]).is_ok();
    if is_form {
        return Ok(respond::see_other(&format!("/pay/{order_no}")));
    }
    let now = snapshot(engine, order_no).await?;
    Ok(respond::json(StatusCode::OK, now.json.clone()))
}

/// The mounted emulators' APIs.
pub async fn sandbox_provider(
    sandbox: &Sandbox,
    channel: Channel,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    match channel {
        Channel::Wechat => sandbox.wechat.handle(method, path_and_query, headers, body).await,
        Channel::Alipay => sandbox.alipay.handle(method, path_and_query, headers, body).await,
    }
}
