//! The payment engine. For now only `money`: yuan strings ↔ integer fen.

pub mod money;
