//! The crowdfunding module's routes: the API under `/api/projects…`, `/api/me/backings`,
//! `/api/me/projects` and `/api/admin/projects…`, and the pages under `/projects…` and
//! `/admin/projects`. Parsed from the path by [`Route::parse`], served by [`dispatch`]; the
//! cached project detail is served by `http::dispatch` itself (unboxed, like the rankings).

use std::net::IpAddr;

use http::request::Parts;
use hyper::body::Incoming;

use super::{handlers, pages};
use crate::app::State;
use crate::error::AppError;
use crate::http::read_body;
use crate::http::respond::Response;
use crate::http::route::{Match, Verb, is_order_no, path_id};

/// A crowdfunding endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /api/projects` (list) · `POST /api/projects` (create)
    Projects,
    /// `GET /api/projects/{id}`
    Project(i64),
    /// `PATCH /api/projects/{id}`
    Edit(i64),
    /// `POST /api/projects/{id}/backings` (back) · `GET` (the owner's list, with addresses)
    Backings(i64),
    /// `GET /api/projects/{id}/backers`
    Backers(i64),
    /// `GET` · `POST /api/projects/{id}/updates`
    Updates(i64),
    /// `PUT` · `DELETE /api/projects/{id}/follow`
    Follow(i64),
    /// `POST /api/projects/{id}/backings/{order_no}/ship`
    Ship(i64, &'a str),
    /// `POST /api/projects/{id}/backings/{order_no}/deliver`
    Deliver(i64, &'a str),
    /// `GET /api/projects/{id}/report.csv`
    Report(i64),
    /// `GET /api/me/backings`
    MyBackings,
    /// `GET /api/me/projects`
    MyProjects,
    /// `GET /api/admin/projects?status=…` (reviewers)
    Queue,
    /// `POST /api/admin/projects/{id}/review`
    Review(i64),
    /// `GET /projects`
    ListPage,
    /// `GET /projects/{id}`
    DetailPage(i64),
    /// `GET /projects/new` · `GET /projects/{id}/edit`
    EditPage(Option<i64>),
    /// `GET /projects/mine`: the owner's dashboard.
    Dashboard,
    /// `GET /admin/projects`: the reviewers' queue.
    QueuePage,
}

const GET_POST: &str = "GET, HEAD, POST";

impl Route<'_> {
    /// Metric labels, indexed by [`Route::index`].
    pub const NAMES: &'static [&'static str] = &[
        "projects",
        "project",
        "project_edit",
        "project_backings",
        "project_backers",
        "project_updates",
        "project_follow",
        "backing_ship",
        "backing_deliver",
        "project_report",
        "my_backings",
        "my_projects",
        "project_queue",
        "project_review",
        "projects_page",
        "project_page",
        "project_edit_page",
        "projects_dashboard",
        "project_queue_page",
    ];

    /// A dense number per route, for metrics.
    pub fn index(&self) -> usize {
        match self {
            Route::Projects => 0,
            Route::Project(_) => 1,
            Route::Edit(_) => 2,
            Route::Backings(_) => 3,
            Route::Backers(_) => 4,
            Route::Updates(_) => 5,
            Route::Follow(_) => 6,
            Route::Ship(..) => 7,
            Route::Deliver(..) => 8,
            Route::Report(_) => 9,
            Route::MyBackings => 10,
            Route::MyProjects => 11,
            Route::Queue => 12,
            Route::Review(_) => 13,
            Route::ListPage => 14,
            Route::DetailPage(_) => 15,
            Route::EditPage(_) => 16,
            Route::Dashboard => 17,
            Route::QueuePage => 18,
        }
    }

    /// Parses a path under the module's prefixes (`segments` of the whole path).
    pub fn parse<'a>(verb: Verb, segments: &[&'a str]) -> Match<Route<'a>> {
        let id = |text: &str| path_id(text);
        let get_post = |route| Match::any(verb, &[Verb::Get, Verb::Post], GET_POST, route);
        match segments {
            ["api", "projects"] => get_post(Route::Projects),
            ["api", "projects", n] => match (id(n), verb) {
                (None, _) => Match::NotFound,
                (Some(n), Verb::Patch) => Match::Found(Route::Edit(n)),
                (Some(n), _) => Match::any(verb, &[Verb::Get], "GET, HEAD, PATCH", Route::Project(n)),
            },
            ["api", "projects", n, rest @ ..] => {
                let Some(n) = id(n) else { return Match::NotFound };
                match rest {
                    ["backings"] => get_post(Route::Backings(n)),
                    ["backers"] => Match::get(verb, Route::Backers(n)),
                    ["updates"] => get_post(Route::Updates(n)),
                    ["follow"] => Match::any(verb, &[Verb::Put, Verb::Delete], "PUT, DELETE", Route::Follow(n)),
                    ["report.csv"] => Match::get(verb, Route::Report(n)),
                    ["backings", no, "ship"] if is_order_no(no) => Match::post(verb, Route::Ship(n, no)),
                    ["backings", no, "deliver"] if is_order_no(no) => Match::post(verb, Route::Deliver(n, no)),
                    _ => Match::NotFound,
                }
            }
            ["api", "me", "backings"] => Match::get(verb, Route::MyBackings),
            ["api", "me", "projects"] => Match::get(verb, Route::MyProjects),
            ["api", "admin", "projects"] => Match::get(verb, Route::Queue),
            ["api", "admin", "projects", n, "review"] => match id(n) {
                Some(n) => Match::post(verb, Route::Review(n)),
                None => Match::NotFound,
            },
            ["projects"] => Match::get(verb, Route::ListPage),
            ["projects", "new"] => Match::get(verb, Route::EditPage(None)),
            ["projects", "mine"] => Match::get(verb, Route::Dashboard),
            ["projects", n] => id(n).map_or(Match::NotFound, |n| Match::get(verb, Route::DetailPage(n))),
            ["projects", n, "edit"] => id(n).map_or(Match::NotFound, |n| Match::get(verb, Route::EditPage(Some(n)))),
            ["admin", "projects"] => Match::get(verb, Route::QueuePage),
            _ => Match::NotFound,
        }
    }

    /// Reads that answer 503 rather than wait on a database that stopped answering (on a
    /// cache miss: hits are answered on the request path, `http::at_once`).
    pub fn is_bounded_read(&self) -> bool {
        matches!(
            self,
            Route::Project(_)
                | Route::Backers(_)
                | Route::MyBackings
                | Route::MyProjects
                | Route::Queue
                | Route::Report(_)
                | Route::ListPage
                | Route::DetailPage(_)
                | Route::EditPage(_)
                | Route::Dashboard
                | Route::QueuePage
        )
    }

    /// The public reads that may reach the database (rate limited with the status reads).
    pub fn is_public_read(&self) -> bool {
        matches!(self, Route::Project(_) | Route::Backers(_))
    }
}

/// Serves a crowdfunding route (the caller boxes this future).
pub async fn dispatch(
    state: &State,
    route: Route<'_>,
    parts: &Parts,
    body: Incoming,
    ip: IpAddr,
) -> Result<Response, AppError> {
    let get = parts.method == http::Method::GET || parts.method == http::Method::HEAD;
    match route {
        Route::Projects if get => handlers::list(state, parts).await,
        Route::Projects => handlers::create(state, parts, &read_body(state, body).await?).await,
        Route::Project(id) => handlers::detail(state, parts, id).await,
        Route::Edit(id) => handlers::edit(state, parts, id, &read_body(state, body).await?).await,
        Route::Backings(id) if get => handlers::owner_backings(state, parts, id).await,
        Route::Backings(id) => handlers::back(state, parts, id, &read_body(state, body).await?).await,
        Route::Backers(id) => handlers::backers(state, parts, id).await,
        Route::Updates(id) if get => handlers::updates(state, parts, id).await,
        Route::Updates(id) => handlers::post_update(state, parts, id, &read_body(state, body).await?).await,
        Route::Follow(id) => handlers::follow(state, parts, id, parts.method == http::Method::PUT).await,
        Route::Ship(id, no) => handlers::ship(state, parts, id, no, &read_body(state, body).await?).await,
        Route::Deliver(id, no) => handlers::deliver(state, parts, id, no).await,
        Route::Report(id) => handlers::report(state, parts, id).await,
        Route::MyBackings => handlers::my_backings(state, parts).await,
        Route::MyProjects => handlers::my_projects(state, parts).await,
        Route::Queue => handlers::queue(state, parts).await,
        Route::Review(id) => handlers::review(state, parts, id, &read_body(state, body).await?, ip).await,
        Route::ListPage => pages::list(state, parts).await,
        Route::DetailPage(id) => pages::detail(state, parts, id).await,
        Route::EditPage(id) => pages::edit(state, parts, id).await,
        Route::Dashboard => pages::dashboard(state, parts).await,
        Route::QueuePage => pages::queue(state, parts).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(verb: Verb, path: &str) -> Match<Route<'_>> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        Route::parse(verb, &segments)
    }

    #[test]
    fn paths_parse_to_their_routes() {
        assert_eq!(parse(Verb::Get, "/api/projects"), Match::Found(Route::Projects));
        assert_eq!(parse(Verb::Get, "/api/projects/7"), Match::Found(Route::Project(7)));
        assert_eq!(parse(Verb::Patch, "/api/projects/7"), Match::Found(Route::Edit(7)));
        assert_eq!(
            parse(Verb::Delete, "/api/projects/7"),
            Match::WrongMethod("GET, HEAD, PATCH")
        );
        assert_eq!(
            parse(Verb::Post, "/api/projects/7/backings"),
            Match::Found(Route::Backings(7))
        );
        assert_eq!(
            parse(Verb::Put, "/api/projects/7/follow"),
            Match::Found(Route::Follow(7))
        );
        assert_eq!(
            parse(Verb::Get, "/api/projects/7/follow"),
            Match::WrongMethod("PUT, DELETE")
        );
        let no = "0193a4b2c3d47e8f9a0b1c2d3e4f5a6b";
        assert_eq!(
            parse(Verb::Post, &format!("/api/projects/7/backings/{no}/ship")),
            Match::Found(Route::Ship(7, no))
        );
        assert_eq!(parse(Verb::Post, "/api/projects/7/backings/x/ship"), Match::NotFound);
        assert_eq!(parse(Verb::Get, "/api/projects/07"), Match::NotFound);
        assert_eq!(
            parse(Verb::Get, "/api/projects/7/report.csv"),
            Match::Found(Route::Report(7))
        );
        assert_eq!(
            parse(Verb::Post, "/api/admin/projects/7/review"),
            Match::Found(Route::Review(7))
        );
        assert_eq!(parse(Verb::Get, "/projects/new"), Match::Found(Route::EditPage(None)));
        assert_eq!(
            parse(Verb::Get, "/projects/7/edit"),
            Match::Found(Route::EditPage(Some(7)))
        );
        assert_eq!(parse(Verb::Get, "/admin/projects"), Match::Found(Route::QueuePage));
        assert_eq!(parse(Verb::Get, "/api/me/backings"), Match::Found(Route::MyBackings));
    }

    #[test]
    fn every_index_is_named() {
        assert_eq!(Route::QueuePage.index() + 1, Route::NAMES.len());
    }
}
