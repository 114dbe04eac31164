//! Alipay open platform (classic gateway, RSA2 public-key mode), face-to-face QR: the client
//! (`client`), the signing rules (`sign`), payment notifications (`notify`), Beijing
//! wall-clock times (`beijing`) and the emulator the sandbox and the tests run (`emulator`,
//! its trade rules in `emulator_trade`).
//! https://opendocs.alipay.com/open/02ekfg (alipay.trade.precreate)

pub mod beijing;
pub mod client;
pub mod emulator;
mod emulator_trade;
pub mod notify;
pub mod sign;

#[cfg(test)]
mod tests;

pub use client::{AlipayClient, AlipayCredentials};
pub use emulator::{AlipayEmulator, AlipayEmulatorConfig};
