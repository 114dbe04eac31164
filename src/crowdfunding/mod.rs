//! Crowdfunding (contract: "Crowdfunding"): projects with 1..=5 rising goals and up to 20
//! rewards, reviewed before they are listed; backings as purchases on the payment engine
//! (purpose `backing`), their progress kept exact in the payment and refund transactions;
//! updates, follows, backers, shipping and the report; and the settlement at the deadline —
//! the highest goal reached kept, the surplus refunded pro rata to the fen, or everything
//! refunded when the first goal was missed.
//!
//! - `model`: the bodies and their rules (pure); `settle`: the settlement rule (pure).
//! - `projects`: create, edit, submit, review; `read`: a project whole and the lists.
//! - `cache`: the public answers, pre-serialized, dropped by `project` events.
//! - `back`: creating a backing (a purchase: reward unit reserved, then the provider order);
//!   `purpose` the `backing` purpose the engine calls; `backing` its effects inside the
//!   engine's transactions; `settlement` the
//!   job that ends projects at their deadline and sends the refunds.
//! - `updates`, `shipping`, `report`: what a public project gathers.
//! - `handlers`, `pages`, `route`: the HTTP side.

mod back;
mod backing;
pub mod cache;
mod handlers;
pub mod model;
mod pages;
pub mod projects;
mod purpose;
pub mod read;
mod report;
mod route;
pub mod settle;
pub mod settlement;
mod shipping;
mod updates;

pub use backing::{on_closed, on_paid, on_refund_failed, on_refunded};
pub use handlers::cached_read;
pub use purpose::{Backing, NAME};
pub use route::{Route, dispatch};
/// The request bodies, for the API description.
pub(crate) use shipping::ShipBody;
pub(crate) use updates::UpdateBody;

/// The module's shared state: its settings and the cached answers.
#[derive(Debug)]
pub struct Crowdfunding {
    pub settings: crate::config::crowdfunding::Crowdfunding,
    pub cache: cache::Cache,
}

impl Crowdfunding {
    pub fn new(settings: crate::config::crowdfunding::Crowdfunding) -> Crowdfunding {
        Crowdfunding {
            settings,
            cache: cache::Cache::default(),
        }
    }

    /// What a `project` event (`{"kind":"project","id":…}`) changes in memory.
    pub fn on_event(&self, message: &serde_json::Value) {
        match message.get("id").and_then(|id| id.as_i64()) {
            Some(id) => self.cache.changed(id),
            None => self.cache.changed_all(),
        }
    }
}
