//! Request metrics kept in fixed arrays of atomics (one add per request, no locks, no label
//! hashing), rendered in the Prometheus text format by `/metrics`. Gauges that belong to other
//! parts (pool, event bus) are added by the caller of [`HttpMetrics::render`].

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::route::{ROUTE_COUNT, route_name};

/// Status codes with a series of their own; others fall into their class (`4xx` …).
const STATUSES: &[u16] = &[
    200, 201, 204, 301, 302, 303, 304, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 500, 502, 503, 504,
];
const CLASSES: &[&str] = &["1xx", "2xx", "3xx", "4xx", "5xx"];
const SLOTS: usize = STATUSES.len() + CLASSES.len();

/// Upper bounds of the latency buckets, in microseconds (the last, +Inf, is implicit).
const BUCKETS_US: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

#[derive(Default)]
struct Series {
    /// Requests per bucket (not cumulative); index `BUCKETS_US.len()` is +Inf.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    count: AtomicU64,
    sum_us: AtomicU64,
}

/// Request counts and latency histograms by route and status.
pub struct HttpMetrics {
    /// `series[route * SLOTS + slot]`
    series: Box<[Series]>,
    /// Connections open right now.
    pub open_connections: AtomicU64,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            series: (0..ROUTE_COUNT * SLOTS).map(|_| Series::default()).collect(),
            open_connections: AtomicU64::new(0),
        }
    }
}

fn slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|s| *s == status)
        .unwrap_or_else(|| STATUSES.len() + usize::from((status / 100).clamp(1, 5) - 1))
}

fn slot_label(slot: usize) -> std::borrow::Cow<'static, str> {
    match STATUSES.get(slot) {
        Some(status) => status.to_string().into(),
        None => CLASSES[slot - STATUSES.len()].into(),
    }
}

impl HttpMetrics {
    /// Records one answered request.
    pub fn observe(&self, route: usize, status: u16, elapsed: Duration) {
        let Some(series) = self.series.get(route * SLOTS + slot(status)) else {
            return;
        };
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US.partition_point(|bound| *bound < us);
        series.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        series.count.fetch_add(1, Ordering::Relaxed);
        series.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Appends the request series to `out` in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP zhifu_http_requests_total Requests answered, by route and status.\n");
        out.push_str("# TYPE zhifu_http_requests_total counter\n");
        self.each(|route, status, s| {
            let _ = writeln!(
                out,
                "zhifu_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {}",
                s.count.load(Ordering::Relaxed)
            );
        });
        out.push_str(
            "# HELP zhifu_http_request_duration_seconds Time from request head to response, by route and status.\n",
        );
        out.push_str("# TYPE zhifu_http_request_duration_seconds histogram\n");
        self.each(|route, status, s| {
            let mut cumulative = 0;
            for (i, bound) in BUCKETS_US.iter().map(|b| Some(*b)).chain([None]).enumerate() {
                cumulative += s.buckets[i].load(Ordering::Relaxed);
                let le = bound.map_or_else(|| "+Inf".to_string(), |us| format!("{}", us as f64 / 1e6));
                let _ = writeln!(
                    out,
                    "zhifu_http_request_duration_seconds_bucket{{route=\"{route}\",status=\"{status}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let labels = format!("route=\"{route}\",status=\"{status}\"");
            let _ = writeln!(
                out,
                "zhifu_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_us.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "zhifu_http_request_duration_seconds_count{{{labels}}} {}",
                s.count.load(Ordering::Relaxed)
            );
        });
        out.push_str("# HELP zhifu_http_open_connections Client connections open now.\n");
        out.push_str("# TYPE zhifu_http_open_connections gauge\n");
        let _ = writeln!(
            out,
            "zhifu_http_open_connections {}",
            self.open_connections.load(Ordering::Relaxed)
        );
    }

    /// Calls `f` for every series that has seen a request.
    fn each(&self, mut f: impl FnMut(&str, &str, &Series)) {
        for (i, series) in self.series.iter().enumerate() {
            if series.count.load(Ordering::Relaxed) > 0 {
                f(route_name(i / SLOTS), &slot_label(i % SLOTS), series);
            }
        }
    }
}

/// Appends one gauge with its HELP and TYPE lines.
pub fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_without_a_series_fall_into_their_class() {
        assert_eq!(slot_label(slot(200)), "200");
        assert_eq!(slot_label(slot(418)), "4xx");
        assert_eq!(slot_label(slot(599)), "5xx");
        assert_eq!(slot_label(slot(0)), "1xx");
    }

    #[test]
    fn a_request_shows_up_in_count_sum_and_the_right_buckets() {
        let m = HttpMetrics::default();
        m.observe(1, 200, Duration::from_micros(300));
        m.observe(1, 200, Duration::from_micros(100));
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("zhifu_http_requests_total{route=\"healthz\",status=\"200\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("le=\"0.0005\"} 2\n"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("zhifu_http_request_duration_seconds_sum{route=\"healthz\",status=\"200\"} 0.0004\n"));
        assert!(!out.contains("route=\"index\""));
    }
}
