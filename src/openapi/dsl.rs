//! The small language the operation tables are written in: `get`/`post`/… make an operation
//! (public, no parameters, no body), `with` gives it access, parameters and a body, `errors`
//! names the error codes it answers beyond the common ones; plus the parameters and answers
//! many operations share.

use super::{Access, Answer, Body, In, Kind, Op, Param};

/// A path parameter.
pub(super) const fn path(name: &'static str, schema: &'static str, example: &'static str) -> Param {
    Param {
        name,
        at: In::Path,
        required: true,
        schema,
        example,
        description: "",
    }
}

/// An optional query parameter.
pub(super) const fn query(name: &'static str, schema: &'static str, example: &'static str) -> Param {
    Param {
        name,
        at: In::Query,
        required: false,
        schema,
        example,
        description: "",
    }
}

pub(super) const fn ok(status: u16, kind: Kind, description: &'static str) -> Answer {
    Answer {
        status,
        kind,
        description,
    }
}

pub(super) const ID: &str = r#"{"type":"integer","minimum":1}"#;
pub(super) const ORDER_NO: &str = r#"{"type":"string","pattern":"^[0-9A-Za-z_-]{6,32}$"}"#;
pub(super) const EX_ORDER: &str = r#""ZF0193A4B2C3D47E8F9A0B1C2D3E4F""#;
pub(super) const P_ID: Param = path("id", ID, "1");
pub(super) const P_ORDER: Param = path("order_no", ORDER_NO, EX_ORDER);
pub(super) const PAGE: Param = query("page", r#"{"type":"integer","minimum":1}"#, "1");
pub(super) const SIZE: Param = query("size", r#"{"type":"integer","minimum":1,"maximum":100}"#, "20");
pub(super) const IDEMPOTENCY_KEY: Param = Param {
    name: "Idempotency-Key",
    at: In::Header,
    required: false,
    schema: r#"{"type":"string","minLength":1,"maxLength":255,"pattern":"^[\\x20-\\x7e]+$"}"#,
    example: r#""order-42-try-1""#,
    description: "The same key with the same body answers what the first request answered.",
};
pub(super) const CATEGORY: Param = query("category_id", ID, "1");

pub(super) const HTML: &[Answer] = &[ok(200, Kind::Html, "the page")];
pub(super) const JSON_PAGE: &[Answer] = &[ok(200, Kind::Json("Page"), "a page of the list")];
pub(super) const NO_CONTENT: &[Answer] = &[ok(204, Kind::Empty, "done")];

/// An operation with the common defaults: public, no parameters, no body, no extra errors.
const fn op(
    route: &'static str,
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    Op {
        route,
        method,
        path,
        tag,
        summary,
        access: Access::Public,
        params: &[],
        body: Body::None,
        answers,
        errors: &[],
    }
}

/// `base` with another access, parameters and body.
pub(super) const fn with(base: Op, access: Access, params: &'static [Param], body: Body) -> Op {
    Op {
        access,
        params,
        body,
        ..base
    }
}

/// `base` naming its own error codes.
pub(super) const fn errors(base: Op, errors: &'static [&'static str]) -> Op {
    Op { errors, ..base }
}

pub(super) const fn get(
    route: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    op(route, "get", path, tag, summary, answers)
}

pub(super) const fn post(
    route: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    op(route, "post", path, tag, summary, answers)
}

pub(super) const fn put(
    route: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    op(route, "put", path, tag, summary, answers)
}

pub(super) const fn patch(
    route: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    op(route, "patch", path, tag, summary, answers)
}

pub(super) const fn delete(
    route: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    op(route, "delete", path, tag, summary, answers)
}
