//! WeChat Pay API v3, Native (QR) pay: the client (`client`), request signing and answer /
//! notification verification (`sign`), AEAD_AES_256_GCM resources (`crypto`), platform
//! certificates (`cert`), and the emulator the sandbox and the tests run (`emulator`).
//! https://pay.weixin.qq.com/doc/v3/merchant/4012791874

pub mod cert;
pub mod client;
pub mod crypto;
pub mod emulator;
pub mod sign;

#[cfg(test)]
mod fixtures;

pub use client::{WechatClient, WechatCredentials};
pub use emulator::{WechatEmulator, WechatEmulatorConfig};
