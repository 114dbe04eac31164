//! zhifu (支付): a payment and donation server.
//!
//! - `app`: the only wiring point — builds the state, binds, runs until shutdown.
//! - `config`: settings from `config.yaml` and `ZHIFU__…` variables, validated.
//! - `error`: `AppError`, the JSON error at the HTTP edge.
//! - `telemetry`: logging.
//! - `http`: accept loop, routing, responses, static files, metrics.
//! - `store`: PostgreSQL pool, embedded cluster, migrations, event bus.
//! - `pay`: the payment engine: providers, transitions, purposes, refunds, reconcile.
//! - `donate`: donor-facing pages and APIs (categories, home page, create a donation).
//! - `crowdfunding`: projects with goals and rewards, review, backings (purpose `backing`),
//!   settlement with exact pro-rata refunds, updates, follows, shipping, the report.
//! - `payments`: status and long-poll, QR, pay page, provider callbacks, sandbox.
//! - `backup`: `zhifu backup` / `zhifu restore` and the scheduled backups.
//! - `ui`: what every page shares — layout data, the header's sections, message catalogs
//!   (Chinese and English), SVG charts, HTML error pages.
//! - `media`: image uploads (decoded, re-encoded, content-addressed) and serving.
//! - `notify`: notifications every module writes, their list and unread-count long-poll.
//! - `community`: the forum — boards, posts, comments, likes, feed, hot ranking, search,
//!   moderation, anonymous posts.
//! - `mail`: outgoing mail through an outbox table, sent by SMTP or kept for the sandbox.
//! - `openapi`: the API description (`/api/openapi.json`, `/api/docs`), kept in step with the
//!   router by tests.
//! - `mall`: the mall — categories, products with SKUs, search, carts, favorites, coupons,
//!   orders paid through the engine, sellers' and admins' pages.
//! - `ops`: health, readiness and metrics endpoints.
//! - `secret_files`: the start-up warning about key files others can read.
//! - `probe`: a purchase purpose made for the tests, counting every hook (`sandbox` feature).
//! - `fuzzing`: fuzz target bodies (cargo-fuzz in `tests/fuzz`, a stable smoke run in `cargo test`);
//!   like the provider emulators, only in builds with the `sandbox` feature (on by default).

#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

pub mod account;
pub mod admin;
pub mod app;
pub mod backup;
pub mod community;
pub mod config;
pub mod crowdfunding;
pub mod donate;
pub mod error;
#[cfg(feature = "sandbox")]
pub mod fuzzing;
pub mod http;
pub mod mail;
pub mod mall;
pub mod media;
pub mod notify;
pub mod openapi;
pub mod ops;
pub mod pay;
pub mod payments;
#[cfg(feature = "sandbox")]
pub mod probe;
pub mod secret_files;
pub mod store;
pub mod telemetry;
pub mod ui;
