//! `Route`: what a request asks for, parsed purely from its method and path (no allocation),
//! then dispatched by one exhaustive `match` in `http::dispatch`. Unknown paths are `NotFound`;
//! known paths with the wrong method are `MethodNotAllowed` with the methods that would work.

use http::Method;

/// Every endpoint of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Index,
    Healthz,
    Readyz,
    Metrics,
    Categories,
    /// A file under `static/`, by its name.
    Static(&'a str),
    NotFound,
    /// The path exists, the method does not; `allow` lists the ones that do.
    MethodNotAllowed {
        allow: &'static str,
    },
}

/// Labels of the routes for metrics, indexed by [`Route::index`].
pub const ROUTE_NAMES: &[&str] = &[
    "index",
    "healthz",
    "readyz",
    "metrics",
    "categories",
    "static",
    "not_found",
    "method_not_allowed",
];

const GET: &str = "GET, HEAD";

impl Route<'_> {
    /// A small dense number per variant, for metrics arrays.
    pub fn index(&self) -> usize {
        match self {
            Route::Index => 0,
            Route::Healthz => 1,
            Route::Readyz => 2,
            Route::Metrics => 3,
            Route::Categories => 4,
            Route::Static(_) => 5,
            Route::NotFound => 6,
            Route::MethodNotAllowed { .. } => 7,
        }
    }
}

/// Most path segments any route has; longer paths are `NotFound` without further looking.
const MAX_SEGMENTS: usize = 4;

/// Parses `method` + `path` (the path without its query string).
pub fn parse<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound;
    };
    let mut segments = [""; MAX_SEGMENTS];
    let mut count = 0;
    for segment in rest.split('/') {
        if count == MAX_SEGMENTS {
            return Route::NotFound;
        }
        segments[count] = segment;
        count += 1;
    }
    let is_get = *method == Method::GET || *method == Method::HEAD;
    let get = |route| {
        if is_get {
            route
        } else {
            Route::MethodNotAllowed { allow: GET }
        }
    };
    match &segments[..count] {
        [""] => get(Route::Index),
        ["healthz"] => get(Route::Healthz),
        ["readyz"] => get(Route::Readyz),
        ["metrics"] => get(Route::Metrics),
        ["api", "categories"] => get(Route::Categories),
        ["static", name] if is_asset_name(name) => get(Route::Static(name)),
        _ => Route::NotFound,
    }
}

/// Asset names are plain file names: no traversal, no hidden files.
fn is_asset_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_parse_to_their_routes() {
        assert_eq!(parse(&Method::GET, "/"), Route::Index);
        assert_eq!(parse(&Method::GET, "/healthz"), Route::Healthz);
        assert_eq!(parse(&Method::HEAD, "/readyz"), Route::Readyz);
        assert_eq!(parse(&Method::GET, "/metrics"), Route::Metrics);
        assert_eq!(parse(&Method::GET, "/api/categories"), Route::Categories);
        assert_eq!(parse(&Method::GET, "/static/app.css"), Route::Static("app.css"));
    }

    #[test]
    fn a_known_path_with_the_wrong_method_is_405_with_allow() {
        assert_eq!(
            parse(&Method::POST, "/api/categories"),
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        );
        assert_eq!(
            parse(&Method::DELETE, "/"),
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        );
    }

    #[test]
    fn unknown_or_odd_paths_are_not_found() {
        for path in [
            "",
            "healthz",
            "/healthz/",
            "/api",
            "/api/categories/1/x/y",
            "/static/",
            "/static/../Cargo.toml",
            "/static/.env",
            "/static/a/b",
            "//",
            "/a/b/c/d/e/f/g",
        ] {
            assert_eq!(parse(&Method::GET, path), Route::NotFound, "{path:?}");
        }
    }

    #[test]
    fn every_route_index_has_a_name() {
        let routes = [
            Route::Index,
            Route::Healthz,
            Route::Readyz,
            Route::Metrics,
            Route::Categories,
            Route::Static("x"),
            Route::NotFound,
            Route::MethodNotAllowed { allow: "" },
        ];
        for (i, route) in routes.iter().enumerate() {
            assert_eq!(route.index(), i);
        }
        assert_eq!(ROUTE_NAMES.len(), routes.len());
    }
}
