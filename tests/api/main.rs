//! Integration tests: one binary, one private PostgreSQL cluster for all of them, a fresh
//! database and an app on port 0 per test (`helpers::spawn_app`).

mod helpers;

mod accounts;
mod admin;
mod admin_browser;
mod admin_pages;
mod admin_scenario;
mod admin_security;
mod backup;
mod binary;
mod browser;
mod callbacks;
mod categories;
mod community;
mod community_browser;
mod config;
mod dbtls;
mod devtools;
mod donations;
mod events;
mod faults;
mod hostile;
mod http_edge;
mod i18n;
mod limits;
mod mail;
mod media;
mod migrations;
mod nginx;
mod notifications;
mod ops;
mod page_security;
mod pages;
mod payments;
mod people;
mod rankings;
mod realmode;
mod screenshots;
mod secrets;
