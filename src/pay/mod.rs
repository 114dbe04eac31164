//! The payment engine and the providers.
//!
//! - `money`: yuan strings ↔ integer fen.
//! - `keys`: RSA keys (PEM / base64), SHA256withRSA sign and verify.
//! - `outbound`: the pooled HTTPS client for provider APIs.
//! - `provider`: protocol-independent requests, answers and notifications.
//! - `wechat`, `alipay`: the two wire protocols (client, notification verification, emulator).
//! - `sandbox`: fault injection shared by the emulators.

pub mod alipay;
pub mod keys;
pub mod money;
pub mod outbound;
pub mod provider;
pub mod sandbox;
pub mod wechat;
