//! The community's routes: the API under `/api/community/…`, the pages (`/community…`,
//! `/users/{id}`) and its admin routes (`/api/admin/boards…`, `/api/admin/reports…`,
//! `/api/admin/community/…`, `/admin/community`), parsed before the admin module's prefix.
//! Admin routes check the session before the method, so an anonymous caller learns nothing
//! of them.

use std::net::IpAddr;

use http::request::Parts;
use hyper::body::Incoming;

use super::admin::{self, Admin, Target};
use super::{admin_pages, boards, comments, likes, lists, pages, posts};
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::read_body;
use crate::http::respond::Response;
use crate::http::route::{Match, Verb, path_id};

/// A community endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/community/boards`
    Boards,
    /// `GET` (list) / `POST` (publish) `/api/community/posts`
    Posts,
    /// `GET` / `DELETE /api/community/posts/{id}`
    Post(i64),
    /// `GET` / `POST /api/community/posts/{id}/comments`
    Comments(i64),
    /// `DELETE /api/community/posts/{post}/comments/{id}` or `/api/community/comments/{id}`
    Comment(Option<i64>, i64),
    /// `PUT` / `DELETE /api/community/posts/{id}/like`
    PostLike(i64),
    /// `PUT` / `DELETE /api/community/posts/{post}/comments/{id}/like` or
    /// `/api/community/comments/{id}/like`
    CommentLike(Option<i64>, i64),
    /// `GET /api/community/feed`
    Feed,
    /// `POST /api/community/reports`
    Report,
    /// `POST /api/admin/boards`
    AdminBoards,
    /// `PATCH /api/admin/boards/{id}`
    AdminBoard(i64),
    /// `GET /api/admin/reports`
    AdminReports,
    /// `POST /api/admin/reports/{id}/dismiss`
    AdminDismiss(i64),
    /// `POST /api/admin/community/{post|comment}/{id}/hide` (true) or `…/unhide`
    AdminHide(Target, i64, bool),
    /// `PATCH /api/admin/community/posts/{id}`
    AdminPost(i64),
    /// `GET /community`: boards, hot and new, search.
    HomePage,
    /// `GET /community/new`: compose.
    ComposePage,
    /// `GET /community/posts/{id}`
    PostPage(i64),
    /// `GET /community/comments/{id}`: to the comment on its post's page.
    CommentLink(i64),
    /// `GET /users/{id}`: a profile and its posts.
    UserPage(i64),
    /// `GET /admin/community`: the report queue, boards and pins.
    AdminPage,
}

/// A public read of `route` answered from memory, or `None` (the general path answers):
/// the lists without a search, and a post's detail for a visitor (a session's reader may
/// like it or be its author).
pub fn cached_read(state: &State, route: Route, parts: &Parts, now: std::time::Instant) -> Option<bytes::Bytes> {
    match route {
        Route::Posts => lists::posts_cached(state, parts.uri.query(), now),
        Route::Post(id) if crate::account::is_visitor(parts) => posts::visitor_body_cached(state, id),
        _ => None,
    }
}

const READ_WRITE: &str = "GET, HEAD, POST";
const LIKE: &str = "PUT, DELETE";

impl Route {
    /// Metric labels, indexed by [`Route::index`].
    pub const NAMES: &'static [&'static str] = &[
        "community_boards",
        "community_posts",
        "community_post",
        "community_comments",
        "community_comment",
        "community_post_like",
        "community_comment_like",
        "community_feed",
        "community_report",
        "community_admin_boards",
        "community_admin_board",
        "community_admin_reports",
        "community_admin_dismiss",
        "community_admin_hide",
        "community_admin_post",
        "community_page",
        "community_compose_page",
        "community_post_page",
        "community_comment_link",
        "user_page",
        "community_admin_page",
    ];

    /// A dense number per route, for metrics.
    pub fn index(&self) -> usize {
        match self {
            Route::Boards => 0,
            Route::Posts => 1,
            Route::Post(_) => 2,
            Route::Comments(_) => 3,
            Route::Comment(..) => 4,
            Route::PostLike(_) => 5,
            Route::CommentLike(..) => 6,
            Route::Feed => 7,
            Route::Report => 8,
            Route::AdminBoards => 9,
            Route::AdminBoard(_) => 10,
            Route::AdminReports => 11,
            Route::AdminDismiss(_) => 12,
            Route::AdminHide(..) => 13,
            Route::AdminPost(_) => 14,
            Route::HomePage => 15,
            Route::ComposePage => 16,
            Route::PostPage(_) => 17,
            Route::CommentLink(_) => 18,
            Route::UserPage(_) => 19,
            Route::AdminPage => 20,
        }
    }

    /// Parses a path under the module's prefixes (`segments` of the whole path).
    pub fn parse(verb: Verb, segments: &[&str]) -> Match<Route> {
        use Verb::{Delete, Get, Post, Put};
        let id = |text: &str| path_id(text);
        match segments {
            ["api", "community", rest @ ..] => match rest {
                ["boards"] => Match::get(verb, Route::Boards),
                ["posts"] => Match::any(verb, &[Get, Post], READ_WRITE, Route::Posts),
                ["feed"] => Match::get(verb, Route::Feed),
                ["reports"] => Match::post(verb, Route::Report),
                ["posts", p, tail @ ..] => match (id(p), tail) {
                    (Some(p), []) => Match::any(verb, &[Get, Delete], "GET, HEAD, DELETE", Route::Post(p)),
                    (Some(p), ["like"]) => Match::any(verb, &[Put, Delete], LIKE, Route::PostLike(p)),
                    (Some(p), ["comments"]) => Match::any(verb, &[Get, Post], READ_WRITE, Route::Comments(p)),
                    (Some(p), ["comments", c]) => match id(c) {
                        Some(c) => Match::any(verb, &[Delete], "DELETE", Route::Comment(Some(p), c)),
                        None => Match::NotFound,
                    },
                    (Some(p), ["comments", c, "like"]) => match id(c) {
                        Some(c) => Match::any(verb, &[Put, Delete], LIKE, Route::CommentLike(Some(p), c)),
                        None => Match::NotFound,
                    },
                    _ => Match::NotFound,
                },
                ["comments", c, tail @ ..] => match (id(c), tail) {
                    (Some(c), []) => Match::any(verb, &[Delete], "DELETE", Route::Comment(None, c)),
                    (Some(c), ["like"]) => Match::any(verb, &[Put, Delete], LIKE, Route::CommentLike(None, c)),
                    _ => Match::NotFound,
                },
                _ => Match::NotFound,
            },
            ["api", "admin", "boards"] => Match::Found(Route::AdminBoards),
            ["api", "admin", "boards", b] => id(b).map_or(Match::NotFound, |b| Match::Found(Route::AdminBoard(b))),
            ["api", "admin", "reports"] => Match::Found(Route::AdminReports),
            ["api", "admin", "reports", r, "dismiss"] => {
                id(r).map_or(Match::NotFound, |r| Match::Found(Route::AdminDismiss(r)))
            }
            ["api", "admin", "community", "posts", p] => {
                id(p).map_or(Match::NotFound, |p| Match::Found(Route::AdminPost(p)))
            }
            ["api", "admin", "community", kind, t, action @ ("hide" | "unhide")] => {
                match (Target::parse(kind), id(t)) {
                    (Some(target), Some(t)) => Match::Found(Route::AdminHide(target, t, *action == "hide")),
                    _ => Match::NotFound,
                }
            }
            ["admin", "community"] => Match::Found(Route::AdminPage),
            ["community"] => Match::get(verb, Route::HomePage),
            ["community", "new"] => Match::get(verb, Route::ComposePage),
            ["community", "posts", p] => id(p).map_or(Match::NotFound, |p| Match::get(verb, Route::PostPage(p))),
            ["community", "comments", c] => id(c).map_or(Match::NotFound, |c| Match::get(verb, Route::CommentLink(c))),
            ["users", u] => id(u).map_or(Match::NotFound, |u| Match::get(verb, Route::UserPage(u))),
            _ => Match::NotFound,
        }
    }

    /// Reads that answer 503 rather than wait on a database that stopped answering.
    pub fn is_bounded_read(&self) -> bool {
        matches!(
            self,
            Route::Boards
                | Route::Feed
                | Route::AdminReports
                | Route::HomePage
                | Route::ComposePage
                | Route::PostPage(_)
                | Route::CommentLink(_)
                | Route::UserPage(_)
                | Route::AdminPage
        )
    }

    fn is_admin(&self) -> bool {
        matches!(
            self,
            Route::AdminBoards
                | Route::AdminBoard(_)
                | Route::AdminReports
                | Route::AdminDismiss(_)
                | Route::AdminHide(..)
                | Route::AdminPost(_)
        )
    }
}

/// Serves a community route (a cold path: the caller boxes this future).
pub async fn dispatch(
    state: &State,
    route: Route,
    parts: &Parts,
    body: Incoming,
    ip: IpAddr,
) -> Result<Response, AppError> {
    if route.is_admin() {
        return admin_api(state, route, parts, body, ip).await;
    }
    let verb = Verb::of(&parts.method);
    match route {
        Route::Boards => boards::list(state).await,
        Route::Posts if verb == Verb::Post => posts::create(state, parts, &read_body(state, body).await?).await,
        Route::Posts => lists::posts(state, parts).await,
        Route::Post(id) if verb == Verb::Delete => posts::delete(state, parts, id, ip).await,
        Route::Post(id) => posts::detail(state, parts, id).await,
        Route::Comments(id) if verb == Verb::Post => {
            comments::create(state, parts, id, &read_body(state, body).await?).await
        }
        Route::Comments(id) => comments::list(state, parts, id).await,
        Route::Comment(post, id) => comments::delete(state, parts, post, id, ip).await,
        Route::PostLike(id) => likes::post(state, parts, id, verb == Verb::Put).await,
        Route::CommentLike(post, id) => likes::comment(state, parts, post, id, verb == Verb::Put).await,
        Route::Feed => lists::feed(state, parts).await,
        Route::Report => admin::report(state, parts, &read_body(state, body).await?).await,
        Route::HomePage => pages::home(state, parts).await,
        Route::ComposePage => pages::compose(state, parts).await,
        Route::PostPage(id) => pages::post(state, parts, id).await,
        Route::CommentLink(id) => pages::comment_link(state, id).await,
        Route::UserPage(id) => pages::user(state, parts, id).await,
        Route::AdminPage => admin_pages::page(state, parts).await,
        Route::AdminBoards
        | Route::AdminBoard(_)
        | Route::AdminReports
        | Route::AdminDismiss(_)
        | Route::AdminHide(..)
        | Route::AdminPost(_) => Err(AppError::NotFound),
    }
}

/// The admin API: the session, then the method.
async fn admin_api(
    state: &State,
    route: Route,
    parts: &Parts,
    body: Incoming,
    ip: IpAddr,
) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::Admin).await?;
    let admin = Admin { principal, ip };
    let body = read_body(state, body).await?;
    let verb = Verb::of(&parts.method);
    let wrong = |allow| Err(AppError::MethodNotAllowed { allow });
    match (route, verb) {
        (Route::AdminBoards, Verb::Post) => boards::create(state, &admin, parts, &body).await,
        (Route::AdminBoards, _) => wrong("POST"),
        (Route::AdminBoard(id), Verb::Patch) => boards::update(state, &admin, parts, id, &body).await,
        (Route::AdminBoard(_), _) => wrong("PATCH"),
        (Route::AdminReports, Verb::Get) => admin::reports(state, parts).await,
        (Route::AdminReports, _) => wrong("GET, HEAD"),
        (Route::AdminDismiss(id), Verb::Post) => admin::dismiss(state, &admin, id).await,
        (Route::AdminHide(target, id, hide), Verb::Post) => {
            admin::hide(state, &admin, parts, target, id, hide, &body).await
        }
        (Route::AdminDismiss(_) | Route::AdminHide(..), _) => wrong("POST"),
        (Route::AdminPost(id), Verb::Patch) => admin::patch_post(state, &admin, parts, id, &body).await,
        (Route::AdminPost(_), _) => wrong("PATCH"),
        _ => Err(AppError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_to_their_routes() {
        let parse = |verb, path: &str| {
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            Route::parse(verb, &segments)
        };
        assert_eq!(parse(Verb::Get, "/api/community/posts"), Match::Found(Route::Posts));
        assert_eq!(
            parse(Verb::Delete, "/api/community/posts/7"),
            Match::Found(Route::Post(7))
        );
        assert_eq!(
            parse(Verb::Put, "/api/community/posts/7/comments/9/like"),
            Match::Found(Route::CommentLike(Some(7), 9))
        );
        assert_eq!(
            parse(Verb::Delete, "/api/community/comments/9/like"),
            Match::Found(Route::CommentLike(None, 9))
        );
        assert_eq!(
            parse(Verb::Get, "/api/community/posts/7/like"),
            Match::WrongMethod("PUT, DELETE")
        );
        assert_eq!(parse(Verb::Get, "/api/community/posts/07"), Match::NotFound);
        assert_eq!(
            parse(Verb::Get, "/api/admin/community/comment/3/unhide"),
            Match::Found(Route::AdminHide(Target::Comment, 3, false)),
            "admin routes are found whatever the method; the session comes first"
        );
        assert_eq!(parse(Verb::Get, "/users/5"), Match::Found(Route::UserPage(5)));
        assert_eq!(parse(Verb::Get, "/community"), Match::Found(Route::HomePage));
        assert_eq!(Route::NAMES.len(), Route::AdminPage.index() + 1);
    }
}
