//! The API description: `GET /api/openapi.json`, an OpenAPI 3.1 document of every route, and
//! `GET /api/docs`, a page that renders it (`static/apidocs.js`).
//!
//! - `ops_core`, `ops_account`, `ops_admin`, `ops_community`, `ops_crowdfunding`, `ops_mall`: the table of operations, one
//!   [`Op`] per method and path, each keyed by the router's route name
//!   (`http::route::route_name`), written with the helpers of `dsl`. A test fails when a route
//!   has no operation or an operation's path does not parse to its route.
//! - `schemas`: the components. Request bodies are generated from the Rust types the handlers
//!   parse (`schemars`, JSON Schema 2020-12, which OpenAPI 3.1 uses as is); answers are built
//!   by hand-written writers, so their schemas are written here, each with an example that a
//!   test validates against it.
//! - `build`: the document from the two, serialized once ([`document`]) and served from memory.

mod build;
mod dsl;
mod links;
mod ops_account;
mod ops_admin;
mod ops_community;
mod ops_core;
mod ops_crowdfunding;
mod ops_mall;
mod schemas;

use std::sync::LazyLock;

use askama::Template;
use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;

use crate::app::State;
use crate::error::AppError;
use crate::http::respond::{self, Response};
use crate::ui::{Section, Ui};

pub use build::document_value;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone; a session, when sent, may change the answer (e.g. `followed_by_me`).
    Public,
    /// A signed-in user of any role.
    User,
    /// A signed-in reviewer or admin.
    Reviewer,
    /// A signed-in merchant or admin.
    Merchant,
    /// A signed-in admin.
    Admin,
    /// A payment provider's callback: its own protocol and signatures.
    Callback,
    /// The built-in sandbox (`payments.sandbox`): absent (`404`) in production.
    Sandbox,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
    Header,
}

/// A parameter: its JSON Schema and an example, both as JSON text.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub at: In,
    pub required: bool,
    pub schema: &'static str,
    pub example: &'static str,
    pub description: &'static str,
}

/// A request body.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    None,
    /// `application/json` of the named component schema.
    Json(&'static str),
    /// The same, or no body at all.
    OptionalJson(&'static str),
    /// JSON of the first named schema, or an HTML form post (`application/x-www-form-urlencoded`)
    /// of the second (a form's values are all text).
    JsonOrForm(&'static str, &'static str),
    /// A form post of the named schema only.
    Form(&'static str),
    /// Bytes of the given content types (a provider's notification, an image).
    Raw(&'static [&'static str]),
}

/// What an answer carries.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `application/json` of the named component schema.
    Json(&'static str),
    /// An HTML page.
    Html,
    /// Other bytes, of the given content type.
    Bytes(&'static str),
    /// No body.
    Empty,
    /// A redirect (`Location`).
    Redirect,
}

/// One documented answer.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: u16,
    pub kind: Kind,
    pub description: &'static str,
}

/// One operation: a method on a path, served by the router's route `route`.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// The route's name in `http::route` (its metric label).
    pub route: &'static str,
    /// Lower case, as OpenAPI writes it.
    pub method: &'static str,
    /// The OpenAPI path template, e.g. `/api/payments/{order_no}`.
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub access: Access,
    pub params: &'static [Param],
    pub body: Body,
    pub answers: &'static [Answer],
    /// Error codes (`error.code`) beyond the ones every operation of its kind may answer.
    pub errors: &'static [&'static str],
}

/// Every operation of the server.
pub fn operations() -> impl Iterator<Item = &'static Op> {
    [
        ops_core::OPS,
        ops_account::OPS,
        ops_admin::OPS,
        ops_community::OPS,
        ops_crowdfunding::OPS,
        ops_mall::OPS,
    ]
    .into_iter()
    .flatten()
}

/// The document, serialized once.
static DOCUMENT: LazyLock<Bytes> = LazyLock::new(|| {
    let value = build::document_value();
    Bytes::from(serde_json::to_vec(&value).expect("a JSON value serializes"))
});

/// Builds the document now (at start), so no request pays for it.
pub fn init() {
    LazyLock::force(&DOCUMENT);
}

/// `GET /api/openapi.json`: the pre-serialized document.
pub fn serve_document() -> Response {
    let mut response = respond::json(StatusCode::OK, DOCUMENT.clone());
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=300"),
    );
    response
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct DocsPage {
    ui: Ui,
    script: String,
}

/// `GET /api/docs`: the page that renders the document (`static/apidocs.js`).
pub async fn docs_page(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let mut ui = Ui::new(state, parts, Section::None).await;
    ui.wide = true;
    let page = DocsPage {
        script: crate::http::assets::url("apidocs.js"),
        ui,
    };
    crate::ui::page(page.ui.lang, StatusCode::OK, &page)
}

#[cfg(test)]
mod tests;
