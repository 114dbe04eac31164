//! WeChat Pay API v3, Native (QR) pay: `client` (API calls, notification verification) and its
//! `credentials`; `sign` (request signatures, answer and notification verification); `crypto`
//! (AEAD_AES_256_GCM resources); `cert` (platform certificates); `notify` (what a verified
//! notification says); `types` (the client's JSON); `emulator` (for the sandbox and tests).
//! https://pay.weixin.qq.com/doc/v3/merchant/4012791874

pub mod cert;
pub mod client;
pub mod credentials;
pub mod crypto;
#[cfg(feature = "sandbox")]
pub mod emulator;
pub mod notify;
pub mod sign;
pub mod types;

#[cfg(test)]
mod fixtures;
#[cfg(all(test, feature = "sandbox"))]
mod tests;

pub use client::{WechatClient, WechatCredentials};
#[cfg(feature = "sandbox")]
pub use emulator::{WechatEmulator, WechatEmulatorConfig};
