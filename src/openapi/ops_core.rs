//! The operations of the donation core: the donate API and pages, payments and their QR
//! codes, rankings and stats, the provider callbacks, the sandbox's emulators and the
//! operations endpoints. One entry per method and path; `route` is the router's name for it.

use super::Access::{Callback, Public, Sandbox};
use super::dsl::*;
use super::{Body, Kind, Op};

const D: &str = "donations";
const O: &str = "operations";
const S: &str = "sandbox";

pub(super) const OPS: &[Op] = &[
    // The donation core.
    get("index", "/", D, "The donation home page", HTML),
    get(
        "categories",
        "/api/categories",
        D,
        "Donation categories",
        &[ok(200, Kind::Json("Categories"), "the categories")],
    ),
    errors(
        with(
            post(
                "create_donation",
                "/api/donations",
                D,
                "Create a donation and its QR payment",
                &[
                    ok(201, Kind::Json("DonationCreated"), "the order, pending"),
                    ok(303, Kind::Redirect, "a form post: to the pay page"),
                ],
            ),
            Public,
            &[IDEMPOTENCY_KEY],
            Body::JsonOrForm("DonationRequest", "DonationForm"),
        ),
        &[
            "invalid_amount",
            "invalid_channel",
            "channel_disabled",
            "invalid_category",
            "invalid_donor_name",
            "invalid_message",
            "invalid_anonymous",
            "invalid_idempotency_key",
            "idempotency_key_reused",
            "idempotency_key_in_use",
            "provider_unavailable",
        ],
    ),
    with(
        get(
            "pay_page",
            "/pay/{order_no}",
            D,
            "The pay page: QR, amount, live status",
            HTML,
        ),
        Public,
        &[P_ORDER],
        Body::None,
    ),
    errors(
        with(
            get(
                "payment_status",
                "/api/payments/{order_no}",
                D,
                "Payment status; `wait` long-polls while pending",
                &[ok(200, Kind::Json("PaymentStatus"), "the status")],
            ),
            Public,
            &[
                P_ORDER,
                query("wait", r#"{"type":"integer","minimum":1,"maximum":30}"#, "5"),
            ],
            Body::None,
        ),
        &["invalid_wait"],
    ),
    with(
        get(
            "payment_qr",
            "/api/payments/{order_no}/qr.png",
            D,
            "The QR code as PNG",
            &[ok(200, Kind::Bytes("image/png"), "the QR code")],
        ),
        Public,
        &[P_ORDER],
        Body::None,
    ),
    with(
        get(
            "payment_qr",
            "/api/payments/{order_no}/qr.svg",
            D,
            "The QR code as SVG",
            &[ok(200, Kind::Bytes("image/svg+xml"), "the QR code")],
        ),
        Public,
        &[P_ORDER],
        Body::None,
    ),
    errors(
        with(
            get(
                "rankings",
                "/api/rankings",
                D,
                "Donor ranking",
                &[ok(200, Kind::Json("Ranking"), "a page of the ranking")],
            ),
            Public,
            &[
                CATEGORY,
                query(
                    "range",
                    r#"{"type":"string","enum":["day","week","month","all"]}"#,
                    r#""week""#,
                ),
                PAGE,
                SIZE,
            ],
            Body::None,
        ),
        &["invalid_range", "invalid_page", "invalid_size", "invalid_category"],
    ),
    errors(
        with(
            get(
                "recent_donations",
                "/api/donations/recent",
                D,
                "Latest paid donations",
                &[ok(200, Kind::Json("RecentDonations"), "newest first")],
            ),
            Public,
            &[
                CATEGORY,
                query("limit", r#"{"type":"integer","minimum":1,"maximum":100}"#, "20"),
            ],
            Body::None,
        ),
        &["invalid_limit", "invalid_category"],
    ),
    get(
        "stats",
        "/api/stats",
        D,
        "Totals per category and overall",
        &[ok(200, Kind::Json("Stats"), "the totals")],
    ),
    get(
        "stats_chart",
        "/api/stats/chart.svg",
        D,
        "Donations per day, last 30 days (SVG)",
        &[ok(200, Kind::Bytes("image/svg+xml"), "the chart")],
    ),
    with(
        get(
            "set_language",
            "/lang/{code}",
            D,
            "Pick the pages' language and go back",
            &[ok(303, Kind::Redirect, "back to `next`")],
        ),
        Public,
        &[
            path("code", r#"{"type":"string","enum":["zh","en"]}"#, r#""en""#),
            query("next", r#"{"type":"string"}"#, r#""/""#),
        ],
        Body::None,
    ),
    get(
        "openapi",
        "/api/openapi.json",
        O,
        "This document",
        &[ok(200, Kind::Bytes("application/json"), "the OpenAPI 3.1 document")],
    ),
    get("api_docs", "/api/docs", O, "This document as a page", HTML),
    // Operations.
    get(
        "healthz",
        "/healthz",
        O,
        "Liveness",
        &[ok(200, Kind::Json("Health"), "serving")],
    ),
    get(
        "readyz",
        "/readyz",
        O,
        "Readiness: the database answers",
        &[ok(200, Kind::Json("Health"), "ready")],
    ),
    get(
        "metrics",
        "/metrics",
        O,
        "Prometheus metrics",
        &[ok(200, Kind::Bytes("text/plain"), "the metrics")],
    ),
    with(
        get(
            "static",
            "/static/{file}",
            O,
            "An embedded file (CSS, JS, icons)",
            &[
                ok(200, Kind::Bytes("*/*"), "the file, with its own type"),
                ok(304, Kind::Empty, "not modified"),
            ],
        ),
        Public,
        &[path(
            "file",
            r#"{"type":"string","pattern":"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"}"#,
            r#""app.css""#,
        )],
        Body::None,
    ),
    // Provider callbacks, in the providers' own protocols.
    with(
        post(
            "notify",
            "/notify/wechat",
            "callbacks",
            "WeChat Pay v3 notification (payment, refund)",
            &[
                ok(204, Kind::Empty, "acknowledged once durable"),
                ok(200, Kind::Empty, "acknowledged"),
                ok(400, Kind::Json("CallbackFailure"), "refused"),
                ok(401, Kind::Json("CallbackFailure"), "refused: signature"),
            ],
        ),
        Callback,
        &[],
        Body::Raw(&["application/json"]),
    ),
    with(
        post(
            "notify",
            "/notify/alipay",
            "callbacks",
            "Alipay asynchronous notification (RSA2)",
            &[ok(200, Kind::Bytes("text/plain"), "`success`, or `fail` when refused")],
        ),
        Callback,
        &[],
        Body::Raw(&["application/x-www-form-urlencoded"]),
    ),
    // The sandbox's emulators.
    with(
        post(
            "sandbox_pay",
            "/sandbox/pay/{order_no}",
            S,
            "The emulator pays the order and sends the signed callback",
            &[ok(200, Kind::Json("Any"), "paid")],
        ),
        Sandbox,
        &[P_ORDER],
        Body::None,
    ),
    with(
        post(
            "sandbox_provider",
            "/sandbox/wechat/v3/pay/transactions/native",
            S,
            "WeChat Pay emulator: create a Native order (signed)",
            &[
                ok(200, Kind::Json("Any"), "the code_url"),
                ok(401, Kind::Json("Any"), "not signed by the merchant's key"),
            ],
        ),
        Sandbox,
        &[],
        Body::Raw(&["application/json"]),
    ),
    with(
        post(
            "sandbox_provider",
            "/sandbox/alipay/gateway.do",
            S,
            "Alipay emulator's gateway (signed)",
            &[ok(
                200,
                Kind::Bytes("text/html"),
                "the gateway's answer (JSON, as Alipay's gateway labels it)",
            )],
        ),
        Sandbox,
        &[],
        Body::Raw(&["application/x-www-form-urlencoded"]),
    ),
];
