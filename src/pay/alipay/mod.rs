//! Alipay open platform (classic gateway, RSA2), face-to-face QR: the client (`client`), the
//! signing rules (`sign`) and the emulator the sandbox and the tests run (`emulator`).
//! https://opendocs.alipay.com/open/02ekfg

pub mod client;
pub mod emulator;
pub mod sign;

pub use client::{AlipayClient, AlipayCredentials};
pub use emulator::{AlipayEmulator, AlipayEmulatorConfig};
