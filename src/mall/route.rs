//! The mall's routes: the API under `/api/mall/…`, `/api/merchant/…`, `/api/admin/mall/…`,
//! `/api/admin/coupons`, `/api/me/orders` and `/api/me/coupons`, and the pages under
//! `/mall…`, `/merchant…` and `/admin/mall…`. Parsed from the path by [`Route::parse`]
//! (before the admin and account prefixes), served by [`dispatch`].

use std::net::IpAddr;

use http::Method;
use http::request::Parts;
use hyper::body::Incoming;

use super::{admin_pages, cart, catalog, categories, coupons, favorites, merchant_pages, orders, pages, products};
use crate::app::State;
use crate::error::AppError;
use crate::http::read_body;
use crate::http::respond::Response;
use crate::http::route::{Match, Verb, is_order_no, path_id};

/// What the buyer does to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyerAction {
    Cancel,
    Confirm,
    RefundRequest,
}

/// What the seller does to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SellerAction {
    Ship,
    Refund,
}

/// A page of the admin area's mall part (`/admin/mall…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminPage {
    /// `/admin/mall`: sales charts.
    Dashboard,
    /// `/admin/mall/categories`
    Categories,
    /// `/admin/mall/coupons`
    Coupons,
}

/// A mall endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /api/mall/categories`
    Categories,
    /// `GET` / `POST /api/mall/products`
    Products,
    /// `GET` / `PATCH /api/mall/products/{id}`
    Product(i64),
    /// `GET /api/mall/cart`
    Cart,
    /// `PUT /api/mall/cart/items/{sku_id}`
    CartItem(i64),
    /// `GET /api/mall/favorites`
    Favorites,
    /// `PUT` / `DELETE /api/mall/favorites/{product_id}`
    Favorite(i64),
    /// `GET /api/mall/coupons`
    Coupons,
    /// `POST /api/mall/coupons/{id}/claim`
    ClaimCoupon(i64),
    /// `POST /api/mall/orders`
    CreateOrder,
    /// `GET /api/mall/orders/{order_no}`
    Order(&'a str),
    /// `POST /api/mall/orders/{order_no}/cancel|confirm|refund-request`
    BuyerOrder(&'a str, BuyerAction),
    /// `GET /api/me/orders`
    MyOrders,
    /// `GET /api/me/coupons`
    MyCoupons,
    /// `GET /api/merchant/orders`
    SellerOrders,
    /// `GET /api/merchant/products`
    SellerProducts,
    /// `POST /api/merchant/orders/{order_no}/ship|refund`
    SellerOrder(&'a str, SellerAction),
    /// `GET` / `POST /api/admin/mall/categories`
    AdminCategories,
    /// `PATCH` / `DELETE /api/admin/mall/categories/{id}`
    AdminCategory(i64),
    /// `GET` / `POST /api/admin/coupons`
    AdminCoupons,
    /// `GET /mall`: categories, search, the product grid.
    MallPage,
    /// `GET /mall/products/{id}`
    ProductPage(i64),
    /// `GET /mall/cart`
    CartPage,
    /// `GET /mall/checkout`
    CheckoutPage,
    /// `GET /mall/orders`
    OrdersPage,
    /// `GET /mall/orders/{order_no}`
    OrderPage(&'a str),
    /// `GET /mall/coupons`
    CouponsPage,
    /// `GET /mall/favorites`
    FavoritesPage,
    /// `GET /merchant`: the seller's products, orders to ship, refund requests.
    SellerPage,
    /// `GET /merchant/products/new` (`None`) or `/merchant/products/{id}`.
    ProductForm(Option<i64>),
    /// `GET /admin/mall…`
    Admin(AdminPage),
}

impl<'a> Route<'a> {
    /// Metric labels, indexed by [`Route::index`].
    pub const NAMES: &'static [&'static str] = &[
        "mall_categories",
        "mall_products",
        "mall_product",
        "mall_cart",
        "mall_cart_item",
        "mall_favorites",
        "mall_favorite",
        "mall_coupons",
        "mall_coupon_claim",
        "mall_order_create",
        "mall_order",
        "mall_order_buyer_action",
        "mall_my_orders",
        "mall_my_coupons",
        "mall_seller_orders",
        "mall_seller_products",
        "mall_order_seller_action",
        "mall_admin_categories",
        "mall_admin_category",
        "mall_admin_coupons",
        "mall_page",
        "mall_product_page",
        "mall_cart_page",
        "mall_checkout_page",
        "mall_orders_page",
        "mall_order_page",
        "mall_coupons_page",
        "mall_favorites_page",
        "mall_seller_page",
        "mall_product_form",
        "mall_admin_page",
    ];

    /// A dense number per route, for metrics.
    pub fn index(&self) -> usize {
        match self {
            Route::Categories => 0,
            Route::Products => 1,
            Route::Product(_) => 2,
            Route::Cart => 3,
            Route::CartItem(_) => 4,
            Route::Favorites => 5,
            Route::Favorite(_) => 6,
            Route::Coupons => 7,
            Route::ClaimCoupon(_) => 8,
            Route::CreateOrder => 9,
            Route::Order(_) => 10,
            Route::BuyerOrder(..) => 11,
            Route::MyOrders => 12,
            Route::MyCoupons => 13,
            Route::SellerOrders => 14,
            Route::SellerProducts => 15,
            Route::SellerOrder(..) => 16,
            Route::AdminCategories => 17,
            Route::AdminCategory(_) => 18,
            Route::AdminCoupons => 19,
            Route::MallPage => 20,
            Route::ProductPage(_) => 21,
            Route::CartPage => 22,
            Route::CheckoutPage => 23,
            Route::OrdersPage => 24,
            Route::OrderPage(_) => 25,
            Route::CouponsPage => 26,
            Route::FavoritesPage => 27,
            Route::SellerPage => 28,
            Route::ProductForm(_) => 29,
            Route::Admin(_) => 30,
        }
    }

    /// True for the paths this module owns (checked by the top router before the admin
    /// and account prefixes).
    pub fn owns(segments: &[&str]) -> bool {
        matches!(
            segments,
            ["api", "mall", ..]
                | ["api", "merchant", ..]
                | ["api", "admin", "mall", ..]
                | ["api", "admin", "coupons", ..]
                | ["api", "me", "orders", ..]
                | ["api", "me", "coupons", ..]
                | ["mall", ..]
                | ["merchant", ..]
                | ["admin", "mall", ..]
        )
    }

    /// Parses a path under the module's prefixes (`segments` of the whole path).
    pub fn parse(verb: Verb, segments: &[&'a str]) -> Match<Route<'a>> {
        use Verb::{Delete, Get, Patch, Post, Put};
        let id = |text: &str| path_id(text);
        match segments {
            ["api", "mall", "categories"] => Match::get(verb, Route::Categories),
            ["api", "mall", "products"] => Match::any(verb, &[Get, Post], "GET, HEAD, POST", Route::Products),
            ["api", "mall", "products", p] => match id(p) {
                Some(p) => Match::any(verb, &[Get, Patch], "GET, HEAD, PATCH", Route::Product(p)),
                None => Match::NotFound,
            },
            ["api", "mall", "cart"] => Match::get(verb, Route::Cart),
            ["api", "mall", "cart", "items", s] => match id(s) {
                Some(s) => Match::any(verb, &[Put], "PUT", Route::CartItem(s)),
                None => Match::NotFound,
            },
            ["api", "mall", "favorites"] => Match::get(verb, Route::Favorites),
            ["api", "mall", "favorites", p] => match id(p) {
                Some(p) => Match::any(verb, &[Put, Delete], "PUT, DELETE", Route::Favorite(p)),
                None => Match::NotFound,
            },
            ["api", "mall", "coupons"] => Match::get(verb, Route::Coupons),
            ["api", "mall", "coupons", c, "claim"] => match id(c) {
                Some(c) => Match::post(verb, Route::ClaimCoupon(c)),
                None => Match::NotFound,
            },
            ["api", "mall", "orders"] => Match::post(verb, Route::CreateOrder),
            ["api", "mall", "orders", no] if is_order_no(no) => Match::get(verb, Route::Order(no)),
            ["api", "mall", "orders", no, action] if is_order_no(no) => match *action {
                "cancel" => Match::post(verb, Route::BuyerOrder(no, BuyerAction::Cancel)),
                "confirm" => Match::post(verb, Route::BuyerOrder(no, BuyerAction::Confirm)),
                "refund-request" => Match::post(verb, Route::BuyerOrder(no, BuyerAction::RefundRequest)),
                _ => Match::NotFound,
            },
            ["api", "me", "orders"] => Match::get(verb, Route::MyOrders),
            ["api", "me", "coupons"] => Match::get(verb, Route::MyCoupons),
            ["api", "merchant", "orders"] => Match::get(verb, Route::SellerOrders),
            ["api", "merchant", "products"] => Match::get(verb, Route::SellerProducts),
            ["api", "merchant", "orders", no, action] if is_order_no(no) => match *action {
                "ship" => Match::post(verb, Route::SellerOrder(no, SellerAction::Ship)),
                "refund" => Match::post(verb, Route::SellerOrder(no, SellerAction::Refund)),
                _ => Match::NotFound,
            },
            ["api", "admin", "mall", "categories"] => {
                Match::any(verb, &[Get, Post], "GET, HEAD, POST", Route::AdminCategories)
            }
            ["api", "admin", "mall", "categories", c] => match id(c) {
                Some(c) => Match::any(verb, &[Patch, Delete], "PATCH, DELETE", Route::AdminCategory(c)),
                None => Match::NotFound,
            },
            ["api", "admin", "coupons"] => Match::any(verb, &[Get, Post], "GET, HEAD, POST", Route::AdminCoupons),
            ["mall"] => Match::get(verb, Route::MallPage),
            ["mall", "products", p] => match id(p) {
                Some(p) => Match::get(verb, Route::ProductPage(p)),
                None => Match::NotFound,
            },
            ["mall", "cart"] => Match::get(verb, Route::CartPage),
            ["mall", "checkout"] => Match::get(verb, Route::CheckoutPage),
            ["mall", "orders"] => Match::get(verb, Route::OrdersPage),
            ["mall", "orders", no] if is_order_no(no) => Match::get(verb, Route::OrderPage(no)),
            ["mall", "coupons"] => Match::get(verb, Route::CouponsPage),
            ["mall", "favorites"] => Match::get(verb, Route::FavoritesPage),
            ["merchant"] => Match::get(verb, Route::SellerPage),
            ["merchant", "products", "new"] => Match::get(verb, Route::ProductForm(None)),
            ["merchant", "products", p] => match id(p) {
                Some(p) => Match::get(verb, Route::ProductForm(Some(p))),
                None => Match::NotFound,
            },
            ["admin", "mall"] => Match::get(verb, Route::Admin(AdminPage::Dashboard)),
            ["admin", "mall", "categories"] => Match::get(verb, Route::Admin(AdminPage::Categories)),
            ["admin", "mall", "coupons"] => Match::get(verb, Route::Admin(AdminPage::Coupons)),
            _ => Match::NotFound,
        }
    }

    /// Reads that answer 503 rather than wait on a database that stopped answering.
    pub fn is_bounded_read(&self) -> bool {
        matches!(
            self,
            Route::Categories
                | Route::Cart
                | Route::Favorites
                | Route::Coupons
                | Route::Order(_)
                | Route::MyOrders
                | Route::MyCoupons
                | Route::SellerOrders
                | Route::SellerProducts
                | Route::MallPage
                | Route::ProductPage(_)
                | Route::CartPage
                | Route::CheckoutPage
                | Route::OrdersPage
                | Route::OrderPage(_)
                | Route::CouponsPage
                | Route::FavoritesPage
                | Route::SellerPage
                | Route::ProductForm(_)
                | Route::Admin(_)
        )
    }

    /// The cached public reads (they share the status reads' rate limit).
    pub fn is_public_read(&self) -> bool {
        matches!(self, Route::Categories | Route::Products | Route::Product(_))
    }
}

/// Serves a mall route (a cold path: the caller boxes this future, except the cached reads).
pub async fn dispatch(
    state: &State,
    route: Route<'_>,
    parts: &Parts,
    body: Incoming,
    ip: IpAddr,
) -> Result<Response, AppError> {
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    match route {
        Route::Categories => categories::public(state).await,
        Route::Products if get => catalog::list(state, parts).await,
        Route::Products => products::create(state, parts, &read_body(state, body).await?).await,
        Route::Product(id) if get => catalog::detail(state, parts, id).await,
        Route::Product(id) => products::update(state, parts, id, &read_body(state, body).await?, ip).await,
        Route::Cart => cart::show(state, parts).await,
        Route::CartItem(sku) => cart::put(state, parts, sku, &read_body(state, body).await?).await,
        Route::Favorites => favorites::list(state, parts).await,
        Route::Favorite(product) => {
            read_body(state, body).await?;
            favorites::set(state, parts, product, parts.method == Method::PUT).await
        }
        Route::Coupons => coupons::public(state, parts).await,
        Route::ClaimCoupon(id) => {
            read_body(state, body).await?;
            coupons::claim(state, parts, id).await
        }
        Route::MyCoupons => coupons::mine(state, parts).await,
        Route::AdminCoupons if get => coupons::admin_list(state, parts).await,
        Route::AdminCoupons => coupons::create(state, parts, &read_body(state, body).await?, ip).await,
        Route::AdminCategories if get => categories::admin_list(state, parts).await,
        Route::AdminCategories => categories::create(state, parts, &read_body(state, body).await?, ip).await,
        Route::AdminCategory(id) => categories::change(state, parts, id, &read_body(state, body).await?, ip).await,
        Route::CreateOrder => orders::create(state, parts, &read_body(state, body).await?).await,
        Route::Order(no) => orders::detail(state, parts, no).await,
        Route::BuyerOrder(no, action) => orders::buyer(state, parts, no, action, &read_body(state, body).await?).await,
        Route::MyOrders => orders::mine(state, parts).await,
        Route::SellerOrders => orders::seller_list(state, parts).await,
        Route::SellerProducts => catalog::seller_products(state, parts).await,
        Route::SellerOrder(no, action) => {
            orders::seller(state, parts, no, action, &read_body(state, body).await?).await
        }
        Route::MallPage => pages::mall(state, parts).await,
        Route::ProductPage(id) => pages::product(state, parts, id).await,
        Route::CartPage => pages::cart(state, parts).await,
        Route::CheckoutPage => pages::checkout(state, parts).await,
        Route::OrdersPage => pages::orders(state, parts).await,
        Route::OrderPage(no) => pages::order(state, parts, no).await,
        Route::CouponsPage => pages::coupons(state, parts).await,
        Route::FavoritesPage => pages::favorites(state, parts).await,
        Route::SellerPage => merchant_pages::seller(state, parts).await,
        Route::ProductForm(id) => merchant_pages::product_form(state, parts, id).await,
        Route::Admin(page) => admin_pages::page(state, parts, page).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, path: &'static str) -> Match<Route<'static>> {
        let segments: Vec<&'static str> = path.trim_start_matches('/').split('/').collect();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        assert!(Route::owns(&segments), "{path} belongs to the mall");
        Route::parse(Verb::of(&method), Box::leak(segments.into_boxed_slice()))
    }

    #[test]
    fn the_mall_paths_parse_to_their_routes() {
        let no = "0193a4b2c3d47e8f9a0b1c2d3e4f5a6b";
        let order: &'static str = Box::leak(format!("/api/mall/orders/{no}/refund-request").into_boxed_str());
        assert_eq!(parse("GET", "/api/mall/products"), Match::Found(Route::Products));
        assert_eq!(parse("POST", "/api/mall/products"), Match::Found(Route::Products));
        assert_eq!(parse("PATCH", "/api/mall/products/7"), Match::Found(Route::Product(7)));
        assert_eq!(parse("PUT", "/api/mall/cart/items/9"), Match::Found(Route::CartItem(9)));
        assert_eq!(
            parse("DELETE", "/api/mall/favorites/3"),
            Match::Found(Route::Favorite(3))
        );
        assert_eq!(
            parse("POST", "/api/mall/coupons/2/claim"),
            Match::Found(Route::ClaimCoupon(2))
        );
        assert_eq!(
            parse("POST", order),
            Match::Found(Route::BuyerOrder(no, BuyerAction::RefundRequest))
        );
        assert_eq!(parse("GET", "/api/me/orders"), Match::Found(Route::MyOrders));
        assert_eq!(parse("POST", "/api/admin/coupons"), Match::Found(Route::AdminCoupons));
        assert_eq!(
            parse("DELETE", "/api/admin/mall/categories/4"),
            Match::Found(Route::AdminCategory(4))
        );
        assert_eq!(parse("GET", "/mall"), Match::Found(Route::MallPage));
        assert_eq!(
            parse("GET", "/merchant/products/new"),
            Match::Found(Route::ProductForm(None))
        );
        assert_eq!(
            parse("GET", "/admin/mall/coupons"),
            Match::Found(Route::Admin(AdminPage::Coupons))
        );
        assert_eq!(
            parse("DELETE", "/api/mall/products/7"),
            Match::WrongMethod("GET, HEAD, PATCH")
        );
        assert_eq!(parse("GET", "/api/mall/cart/items/9"), Match::WrongMethod("PUT"));
        assert_eq!(parse("GET", "/api/mall/products/07"), Match::NotFound);
        assert_eq!(parse("GET", "/api/mall/orders/short"), Match::NotFound);
        assert_eq!(parse("GET", "/mall/nothing"), Match::NotFound);
    }

    #[test]
    fn every_route_has_its_own_name() {
        assert_eq!(Route::Admin(AdminPage::Dashboard).index() + 1, Route::NAMES.len());
        let mut names = Route::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Route::NAMES.len());
    }
}
