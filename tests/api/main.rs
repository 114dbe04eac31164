//! Integration tests: one binary, one private PostgreSQL cluster for all of them, a fresh
//! database and an app on port 0 per test (`helpers::spawn_app`).

mod helpers;

mod binary;
mod browser;
mod callbacks;
mod categories;
mod config;
mod donations;
mod events;
mod hostile;
mod http_edge;
mod limits;
mod migrations;
mod ops;
mod page_security;
mod pages;
mod payments;
mod rankings;
mod realmode;
mod secrets;
