//! The operations of the mall: the catalog, carts, favorites, coupons, orders, the sellers'
//! and admins' API, and its pages.

use super::Access::{Admin, Merchant, Public, User};
use super::dsl::*;
use super::{Answer, Body, Kind, Op, Param};

/// The module's error codes answered with `409` (stock, a coupon's state, an order's state).
pub(super) const CONFLICTS: &[&str] = &[
    "cart_full",
    "out_of_stock",
    "prices_changed",
    "invalid_state",
    "coupon_busy",
    "coupon_expired",
    "coupon_sold_out",
    "coupon_limit_reached",
    "category_has_children",
];

const HTML: &[Answer] = &[
    ok(200, Kind::Html, "the page"),
    ok(303, Kind::Redirect, "to sign in first"),
];
const PUBLIC_HTML: &[Answer] = &[ok(200, Kind::Html, "the page")];
const JSON_PAGE: &[Answer] = &[ok(200, Kind::Json("Page"), "a page of the list")];
const ORDER: &[Answer] = &[ok(200, Kind::Json("MallOrder"), "the order as it is now")];
const CART: &[Answer] = &[ok(200, Kind::Json("Cart"), "the cart, grouped by seller")];
const FAVORITE: &[Answer] = &[ok(200, Kind::Json("Favorite"), "whether it is a favorite")];

const M: &str = "mall";
/// Empty (or blank) counts as not given: the pages' forms send every field.
const CATEGORY_ID: Param = query(
    "category_id",
    r#"{"anyOf":[{"type":"integer","minimum":1},{"type":"string","pattern":"^\\s*$"}]}"#,
    "1",
);
const Q: Param = query(
    "q",
    r#"{"type":"string","description":"at most 50 characters and 8 words"}"#,
    r#""耳机""#,
);
const SECOND_HAND: Param = query(
    "second_hand",
    r#"{"anyOf":[{"type":"string","enum":["true","false"]},{"type":"string","pattern":"^\\s*$"}]}"#,
    r#""false""#,
);
const SORT: Param = query(
    "sort",
    r#"{"anyOf":[{"type":"string","enum":["newest","price_asc","price_desc","sales"]},{"type":"string","pattern":"^\\s*$"}]}"#,
    r#""price_asc""#,
);
const ORDER_STATUS: Param = query(
    "status",
    r#"{"type":"string","enum":["","pending_payment","paid","shipped","completed","cancelled","refunding","refunded"]}"#,
    r#""paid""#,
);
const P_SKU: Param = path("sku_id", ID, "1");
const PRODUCT_FILTERS: &[Param] = &[CATEGORY_ID, Q, SECOND_HAND, SORT, PAGE, SIZE];
const ORDER_LIST: &[Param] = &[ORDER_STATUS, PAGE, SIZE];

const PRODUCT_ERRORS: &[&str] = &[
    "invalid_category",
    "invalid_name",
    "invalid_description",
    "invalid_images",
    "invalid_second_hand",
    "invalid_skus",
    "invalid_specs",
    "invalid_price",
    "invalid_stock",
    "duplicate_sku",
];

pub(super) const OPS: &[Op] = &[
    // The catalog.
    get(
        "mall_categories",
        "/api/mall/categories",
        M,
        "The category tree",
        &[ok(200, Kind::Json("Items"), "roots with their children")],
    ),
    errors(
        with(
            get("mall_products", "/api/mall/products", M, "Listed products", JSON_PAGE),
            Public,
            PRODUCT_FILTERS,
            Body::None,
        ),
        &["invalid_category", "invalid_q", "invalid_second_hand", "invalid_sort"],
    ),
    errors(
        with(
            post(
                "mall_products",
                "/api/mall/products",
                M,
                "List a product with its SKUs (a seller)",
                &[ok(201, Kind::Json("Product"), "the product")],
            ),
            Merchant,
            &[],
            Body::Json("ProductBody"),
        ),
        PRODUCT_ERRORS,
    ),
    with(
        get(
            "mall_product",
            "/api/mall/products/{id}",
            M,
            "A product",
            &[ok(200, Kind::Json("Product"), "the product")],
        ),
        Public,
        &[P_ID],
        Body::None,
    ),
    errors(
        with(
            patch(
                "mall_product",
                "/api/mall/products/{id}",
                M,
                "Change a product (its seller or an admin)",
                &[ok(200, Kind::Json("Product"), "the product")],
            ),
            Merchant,
            &[P_ID],
            Body::Json("ProductBody"),
        ),
        PRODUCT_ERRORS,
    ),
    // The buyer's cart, favorites and coupons.
    with(
        get("mall_cart", "/api/mall/cart", M, "My cart", CART),
        User,
        &[],
        Body::None,
    ),
    errors(
        with(
            put(
                "mall_cart_item",
                "/api/mall/cart/items/{sku_id}",
                M,
                "Set a SKU's quantity in my cart (0 removes it)",
                CART,
            ),
            User,
            &[P_SKU],
            Body::Json("CartItemPut"),
        ),
        &["invalid_quantity", "own_product", "cart_full"],
    ),
    with(
        get("mall_favorites", "/api/mall/favorites", M, "My favorites", JSON_PAGE),
        User,
        &[PAGE, SIZE],
        Body::None,
    ),
    with(
        put(
            "mall_favorite",
            "/api/mall/favorites/{id}",
            M,
            "Mark a product a favorite (idempotent)",
            FAVORITE,
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        delete(
            "mall_favorite",
            "/api/mall/favorites/{id}",
            M,
            "Unmark a favorite (idempotent)",
            FAVORITE,
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        get("mall_coupons", "/api/mall/coupons", M, "Coupons to claim", JSON_PAGE),
        Public,
        &[PAGE, SIZE],
        Body::None,
    ),
    errors(
        with(
            post(
                "mall_coupon_claim",
                "/api/mall/coupons/{id}/claim",
                M,
                "Claim a copy of a coupon",
                &[ok(201, Kind::Json("Record"), "my copy")],
            ),
            User,
            &[P_ID],
            Body::None,
        ),
        &[
            "coupon_sold_out",
            "coupon_expired",
            "coupon_limit_reached",
            "coupon_busy",
        ],
    ),
    // Orders.
    errors(
        with(
            post(
                "mall_order_create",
                "/api/mall/orders",
                M,
                "Order goods of one seller: the order and its QR payment",
                &[ok(
                    201,
                    Kind::Json("MallOrderCreated"),
                    "the order, pending payment, and its payment",
                )],
            ),
            User,
            &[IDEMPOTENCY_KEY],
            Body::Json("MallOrderRequest"),
        ),
        &[
            "invalid_items",
            "invalid_quantity",
            "invalid_address",
            "invalid_channel",
            "channel_disabled",
            "invalid_remark",
            "mixed_merchants",
            "order_too_large",
            "own_product",
            "out_of_stock",
            "prices_changed",
            "coupon_not_applicable",
            "provider_unavailable",
            "invalid_idempotency_key",
            "idempotency_key_reused",
            "idempotency_key_in_use",
        ],
    ),
    with(
        get(
            "mall_order",
            "/api/mall/orders/{order_no}",
            M,
            "An order (its buyer, seller or an admin)",
            ORDER,
        ),
        User,
        &[P_ORDER],
        Body::None,
    ),
    errors(
        with(
            post(
                "mall_order_buyer_action",
                "/api/mall/orders/{order_no}/cancel",
                M,
                "Cancel an unpaid order (stock and coupon return)",
                ORDER,
            ),
            User,
            &[P_ORDER],
            Body::None,
        ),
        &["invalid_state"],
    ),
    errors(
        with(
            post(
                "mall_order_buyer_action",
                "/api/mall/orders/{order_no}/confirm",
                M,
                "Confirm receipt of a shipped order",
                ORDER,
            ),
            User,
            &[P_ORDER],
            Body::None,
        ),
        &["invalid_state"],
    ),
    errors(
        with(
            post(
                "mall_order_buyer_action",
                "/api/mall/orders/{order_no}/refund-request",
                M,
                "Ask the seller for a refund",
                ORDER,
            ),
            User,
            &[P_ORDER],
            Body::Json("MallReason"),
        ),
        &["invalid_reason", "invalid_state"],
    ),
    with(
        get(
            "mall_my_orders",
            "/api/me/orders",
            M,
            "My orders, newest first",
            JSON_PAGE,
        ),
        User,
        ORDER_LIST,
        Body::None,
    ),
    with(
        get("mall_my_coupons", "/api/me/coupons", M, "My coupon copies", JSON_PAGE),
        User,
        &[PAGE, SIZE],
        Body::None,
    ),
    // The seller's API.
    errors(
        with(
            get(
                "mall_seller_orders",
                "/api/merchant/orders",
                M,
                "Orders of my goods, newest first",
                JSON_PAGE,
            ),
            Merchant,
            ORDER_LIST,
            Body::None,
        ),
        &["invalid_status"],
    ),
    with(
        get(
            "mall_seller_products",
            "/api/merchant/products",
            M,
            "My products",
            JSON_PAGE,
        ),
        Merchant,
        &[PAGE, SIZE],
        Body::None,
    ),
    errors(
        with(
            post(
                "mall_order_seller_action",
                "/api/merchant/orders/{order_no}/ship",
                M,
                "Ship a paid order (again to correct the tracking)",
                ORDER,
            ),
            Merchant,
            &[P_ORDER],
            Body::Json("MallShip"),
        ),
        &["invalid_carrier", "invalid_tracking_no", "invalid_state"],
    ),
    errors(
        with(
            post(
                "mall_order_seller_action",
                "/api/merchant/orders/{order_no}/refund",
                M,
                "Approve (the money goes back) or refuse a refund request",
                ORDER,
            ),
            Merchant,
            &[P_ORDER],
            Body::Json("MallRefundDecision"),
        ),
        &["invalid_reason", "invalid_state", "provider_unavailable"],
    ),
    // The admins' API.
    with(
        get(
            "mall_admin_categories",
            "/api/admin/mall/categories",
            M,
            "Every category with its depth and product count",
            &[ok(200, Kind::Json("Items"), "in tree order")],
        ),
        Admin,
        &[],
        Body::None,
    ),
    errors(
        with(
            post(
                "mall_admin_categories",
                "/api/admin/mall/categories",
                M,
                "Add a category",
                &[ok(201, Kind::Json("Record"), "the category")],
            ),
            Admin,
            &[],
            Body::Json("MallCategoryNew"),
        ),
        &["invalid_name", "invalid_parent", "category_name_taken"],
    ),
    errors(
        with(
            patch(
                "mall_admin_category",
                "/api/admin/mall/categories/{id}",
                M,
                "Rename, move or reorder a category",
                &[ok(200, Kind::Json("Record"), "the category")],
            ),
            Admin,
            &[P_ID],
            Body::Json("MallCategoryPatch"),
        ),
        &["invalid_name", "invalid_parent", "category_name_taken"],
    ),
    errors(
        with(
            delete(
                "mall_admin_category",
                "/api/admin/mall/categories/{id}",
                M,
                "Delete an unused category",
                NO_CONTENT,
            ),
            Admin,
            &[P_ID],
            Body::None,
        ),
        &["category_in_use", "category_has_children"],
    ),
    with(
        get("mall_admin_coupons", "/api/admin/coupons", M, "Every coupon", JSON_PAGE),
        Admin,
        &[PAGE, SIZE],
        Body::None,
    ),
    errors(
        with(
            post(
                "mall_admin_coupons",
                "/api/admin/coupons",
                M,
                "Issue a coupon",
                &[ok(201, Kind::Json("Record"), "the coupon")],
            ),
            Admin,
            &[],
            Body::Json("CouponNew"),
        ),
        &[
            "invalid_name",
            "invalid_kind",
            "invalid_value",
            "invalid_percent",
            "invalid_threshold",
            "invalid_window",
            "invalid_total",
            "invalid_per_user",
        ],
    ),
    // The pages.
    errors(
        with(
            get(
                "mall_page",
                "/mall",
                M,
                "The mall: categories, search, products",
                PUBLIC_HTML,
            ),
            Public,
            PRODUCT_FILTERS,
            Body::None,
        ),
        &["invalid_category", "invalid_q", "invalid_second_hand", "invalid_sort"],
    ),
    with(
        get(
            "mall_product_page",
            "/mall/products/{id}",
            M,
            "A product's page",
            PUBLIC_HTML,
        ),
        Public,
        &[P_ID],
        Body::None,
    ),
    with(
        get("mall_cart_page", "/mall/cart", M, "My cart", HTML),
        User,
        &[],
        Body::None,
    ),
    with(
        get("mall_checkout_page", "/mall/checkout", M, "Checkout", HTML),
        User,
        &[],
        Body::None,
    ),
    with(
        get("mall_orders_page", "/mall/orders", M, "My orders", HTML),
        User,
        ORDER_LIST,
        Body::None,
    ),
    with(
        get("mall_order_page", "/mall/orders/{order_no}", M, "An order", HTML),
        User,
        &[P_ORDER],
        Body::None,
    ),
    with(
        get("mall_coupons_page", "/mall/coupons", M, "Coupons to claim", PUBLIC_HTML),
        Public,
        &[],
        Body::None,
    ),
    with(
        get("mall_favorites_page", "/mall/favorites", M, "My favorites", HTML),
        User,
        &[PAGE, SIZE],
        Body::None,
    ),
    with(
        get(
            "mall_seller_page",
            "/merchant",
            M,
            "The seller's products, orders to ship, refund requests",
            HTML,
        ),
        Merchant,
        &[],
        Body::None,
    ),
    with(
        get(
            "mall_product_form",
            "/merchant/products/new",
            M,
            "A new product's form",
            HTML,
        ),
        Merchant,
        &[],
        Body::None,
    ),
    with(
        get(
            "mall_product_form",
            "/merchant/products/{id}",
            M,
            "A product's form",
            HTML,
        ),
        Merchant,
        &[P_ID],
        Body::None,
    ),
    with(
        get("mall_admin_page", "/admin/mall", M, "Sales charts", HTML),
        Admin,
        &[],
        Body::None,
    ),
    with(
        get("mall_admin_page", "/admin/mall/categories", M, "Categories", HTML),
        Admin,
        &[],
        Body::None,
    ),
    with(
        get("mall_admin_page", "/admin/mall/coupons", M, "Coupons", HTML),
        Admin,
        &[PAGE, SIZE],
        Body::None,
    ),
];
