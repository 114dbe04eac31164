//! The operations of the admin API and pages.

use super::Access::Admin;
use super::dsl::*;
use super::{Answer, Body, Kind, Op, Param};

const HTML: &[Answer] = &[
    ok(200, Kind::Html, "the page"),
    ok(303, Kind::Redirect, "to sign in first"),
];
const RECORD: &[Answer] = &[ok(200, Kind::Json("Record"), "the record")];
const CREATED: &[Answer] = &[ok(201, Kind::Json("Record"), "the new record")];
const NO_CONTENT: &[Answer] = &[ok(204, Kind::Empty, "done")];

const AD: &str = "admin";
const TEXT: &str = r#"{"type":"string"}"#;
const DATE: &str = r#"{"type":"string","examples":["2026-12-01"]}"#;
const PAYMENT_FILTERS: &[Param] = &[
    query("order_no", TEXT, r#""ZF0193""#),
    // Empty counts as not given (the admin pages' filter forms send every field).
    query(
        "status",
        r#"{"type":"string","enum":["","pending","paid","closed","refunded"]}"#,
        r#""paid""#,
    ),
    query(
        "channel",
        r#"{"type":"string","enum":["","wechat","alipay"]}"#,
        r#""wechat""#,
    ),
    query("from", DATE, r#""2026-12-01""#),
    query("to", DATE, r#""2026-12-06""#),
    PAGE,
    query("size", r#"{"type":"integer","minimum":1,"maximum":200}"#, "50"),
];

pub(super) const OPS: &[Op] = &[
    // The admin API: every route answers 401 without a session and 403 without the role.
    with(
        get(
            "admin_api",
            "/api/admin/categories",
            AD,
            "All categories",
            &[ok(200, Kind::Json("Items"), "with sort order, enabled, referenced")],
        ),
        Admin,
        &[],
        Body::None,
    ),
    errors(
        with(
            post("admin_api", "/api/admin/categories", AD, "Add a category", CREATED),
            Admin,
            &[],
            Body::Json("NewCategory"),
        ),
        &["category_name_taken", "invalid_name"],
    ),
    with(
        post(
            "admin_api",
            "/api/admin/categories/reorder",
            AD,
            "Reorder the categories",
            &[ok(200, Kind::Json("Items"), "the new order")],
        ),
        Admin,
        &[],
        Body::Json("Reorder"),
    ),
    errors(
        with(
            patch(
                "admin_api",
                "/api/admin/categories/{id}",
                AD,
                "Change a category",
                RECORD,
            ),
            Admin,
            &[P_ID],
            Body::Json("CategoryChange"),
        ),
        &["category_name_taken"],
    ),
    errors(
        with(
            delete(
                "admin_api",
                "/api/admin/categories/{id}",
                AD,
                "Delete an unused category",
                NO_CONTENT,
            ),
            Admin,
            &[P_ID],
            Body::None,
        ),
        &["category_in_use"],
    ),
    with(
        get(
            "admin_api",
            "/api/admin/settings",
            AD,
            "Payment settings: configured, overrides, effective",
            RECORD,
        ),
        Admin,
        &[],
        Body::None,
    ),
    with(
        patch(
            "admin_api",
            "/api/admin/settings",
            AD,
            "Override payment settings",
            RECORD,
        ),
        Admin,
        &[],
        Body::Json("SettingsPatch"),
    ),
    with(
        get("admin_api", "/api/admin/payments", AD, "Search payments", JSON_PAGE),
        Admin,
        PAYMENT_FILTERS,
        Body::None,
    ),
    with(
        get(
            "admin_api",
            "/api/admin/payments.csv",
            AD,
            "Search payments as CSV (every row, at most 100 000)",
            &[ok(200, Kind::Bytes("text/csv"), "the rows")],
        ),
        Admin,
        PAYMENT_FILTERS.split_at(5).0,
        Body::None,
    ),
    with(
        get(
            "admin_api",
            "/api/admin/payments/{order_no}",
            AD,
            "A payment with its donation, events and refunds",
            RECORD,
        ),
        Admin,
        &[P_ORDER],
        Body::None,
    ),
    errors(
        with(
            post(
                "admin_api",
                "/api/admin/payments/{order_no}/refund",
                AD,
                "Refund a payment, in part or in full",
                &[ok(201, Kind::Json("Refund"), "the refund")],
            ),
            Admin,
            &[P_ORDER, IDEMPOTENCY_KEY],
            Body::Json("RefundRequest"),
        ),
        &[
            "refund_exceeds_remaining",
            "payment_not_paid",
            "invalid_amount",
            "invalid_reason",
            "idempotency_key_reused",
        ],
    ),
    with(
        get("admin_api", "/api/admin/callbacks", AD, "The callback inbox", JSON_PAGE),
        Admin,
        &[
            query("order_no", TEXT, r#""ZF0193""#),
            query("accepted", r#"{"type":"boolean"}"#, "true"),
            PAGE,
        ],
        Body::None,
    ),
    with(
        get(
            "admin_api",
            "/api/admin/reconcile",
            AD,
            "Orders that need an operator",
            RECORD,
        ),
        Admin,
        &[query("pending_minutes", r#"{"type":"integer","minimum":1}"#, "30")],
        Body::None,
    ),
    with(
        get("admin_api", "/api/admin/audit", AD, "The audit log", JSON_PAGE),
        Admin,
        &[PAGE],
        Body::None,
    ),
    with(
        get("admin_api", "/api/admin/users", AD, "Users", JSON_PAGE),
        Admin,
        &[
            PAGE,
            query("size", r#"{"type":"integer","minimum":1,"maximum":200}"#, "50"),
        ],
        Body::None,
    ),
    with(
        patch(
            "admin_api",
            "/api/admin/users/{id}",
            AD,
            "Change a user's role or disable it",
            RECORD,
        ),
        Admin,
        &[P_ID],
        Body::Json("UserChange"),
    ),
    with(
        get("admin_page", "/admin", AD, "The admin dashboard", HTML),
        Admin,
        &[],
        Body::None,
    ),
    with(
        get("admin_page", "/admin/{page}", AD, "An admin page", HTML),
        Admin,
        &[path(
            "page",
            r#"{"type":"string","enum":["payments","categories","settings","callbacks","reconcile","audit","users"]}"#,
            r#""payments""#,
        )],
        Body::None,
    ),
];
