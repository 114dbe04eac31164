//! Alipay open platform (classic gateway, RSA2 public-key mode), face-to-face QR: the client
//! (`client`), the signing rules (`sign`), payment notifications (`notify`), Beijing
//! wall-clock times (`beijing`) and the emulator the sandbox and the tests run (`emulator`,
//! its trade rules in `emulator_trade`).
//! https://opendocs.alipay.com/open/02ekfg (alipay.trade.precreate)

pub mod beijing;
pub mod client;
#[cfg(feature = "sandbox")]
pub mod emulator;
#[cfg(feature = "sandbox")]
mod emulator_trade;
pub mod notify;
pub mod sign;

#[cfg(all(test, feature = "sandbox"))]
mod tests;

pub use client::{AlipayClient, AlipayCredentials};
#[cfg(feature = "sandbox")]
pub use emulator::{AlipayEmulator, AlipayEmulatorConfig};
