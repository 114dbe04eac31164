//! Micro-benchmarks of the request path's pure parts: route parsing and metrics recording.
//! Run with `cargo bench --bench router`.

use std::time::Duration;

use divan::black_box;
use http::Method;
use zhifu::http::metrics::HttpMetrics;
use zhifu::http::route;

fn main() {
    divan::main();
}

#[divan::bench(args = ["/healthz", "/api/categories", "/static/app.css", "/no/such/path/at/all"])]
fn parse_route(path: &str) -> usize {
    route::parse(black_box(&Method::GET), black_box(path)).index()
}

#[divan::bench]
fn parse_route_wrong_method() -> usize {
    route::parse(black_box(&Method::POST), black_box("/api/categories")).index()
}

#[divan::bench]
fn record_request_metrics(bencher: divan::Bencher) {
    let metrics = HttpMetrics::default();
    bencher.bench_local(|| metrics.observe(black_box(1), black_box(200), black_box(Duration::from_micros(87))));
}
