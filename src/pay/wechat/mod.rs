//! WeChat Pay API v3, Native (QR) pay: the client (`client`), request signing and answer /
//! notification verification (`sign`), what a verified notification says (`notify`),
//! AEAD_AES_256_GCM resources (`crypto`), platform certificates (`cert`), the JSON the client
//! reads and writes (`types`), and the emulator the sandbox and the tests run (`emulator`).
//! https://pay.weixin.qq.com/doc/v3/merchant/4012791874

pub mod cert;
pub mod client;
pub mod crypto;
pub mod emulator;
pub mod notify;
pub mod sign;
pub mod types;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

pub use client::{WechatClient, WechatCredentials};
pub use emulator::{WechatEmulator, WechatEmulatorConfig};
