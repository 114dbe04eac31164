//! The access log, nearly free: each request's line (time, request id, client ip, method,
//! path, status, micros) is formatted with precomputed pieces into a buffer of the worker
//! thread that served it, and one writer thread hands the buffers to stdout in batches —
//! off the request path, one write per buffer. The writer empties the buffers every
//! [`FLUSH_EVERY`], and at once when one of them reaches [`WAKE_AT`]: a busy server writes
//! many small batches, not a few large ones, so that no request waits long behind a write
//! on a shared core. A buffer is swapped for an empty one, never copied under its lock.
//!
//! Lines look as `tracing`'s text or JSON lines do, with target `zhifu::access`. On SIGTERM
//! the buffers are flushed before exit ([`AccessLog::close`]); a SIGKILL loses at most the
//! last [`FLUSH_EVERY`] of lines (and at most [`WAKE_AT`] bytes of them per worker thread on
//! a busy server). A buffer that the writer cannot empty (stdout blocked)
//! stops growing at [`MAX_BUFFER`]: further lines are counted as dropped, never waited for.
//! Without a process log writer (tests, embedders), lines go out as `tracing` events instead.

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

/// How often the writer thread empties the buffers.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A worker's pending bytes at which the writer is woken at once (about 450 lines; at
/// 150,000 requests a second, a write of this size every 3 ms or so).
pub const WAKE_AT: usize = 64 << 10;
/// Most bytes a thread's buffer holds before lines are dropped.
pub const MAX_BUFFER: usize = 8 << 20;

/// Set by [`install_stdout`] when the process writes its logs to stdout (the binary does);
/// otherwise lines go through `tracing`.
static STDOUT: AtomicBool = AtomicBool::new(false);

/// Makes access logs write in batches straight to stdout (call once, where the process's
/// log subscriber writes to stdout too: both write whole lines under stdout's lock).
pub fn install_stdout() {
    STDOUT.store(true, Ordering::Relaxed);
}

/// One thread's pending lines.
#[derive(Debug, Default)]
struct Shard {
    /// A std mutex: the owning thread and the writer hold it for a copy at most.
    lines: Mutex<Vec<u8>>,
}

/// The access log of one server (shared by its worker threads).
#[derive(Debug)]
pub struct AccessLog {
    json: bool,
    shards: Mutex<Vec<Arc<Shard>>>,
    dropped: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The writer thread, to wake when a buffer reaches [`WAKE_AT`] (no lock to find it).
    waker: OnceLock<Thread>,
    closed: AtomicBool,
}

thread_local! {
    /// This thread's shard of each live access log (usually one), and its clock cache.
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

#[derive(Default)]
struct Local {
    shards: Vec<(Weak<AccessLog>, Arc<Shard>)>,
    /// `2026-12-06T03:20:28.` for `second`, rebuilt when the second changes.
    second: u64,
    stamp: Vec<u8>,
    /// The wall clock read at a monotonic instant, at most [`ANCHOR_FOR`] ago: a line's time
    /// is counted from it, so that a request reads the clock once (for its duration).
    anchor: Option<(Instant, Duration)>,
    /// The last client address written, and its text.
    last_ip: Option<(IpAddr, Vec<u8>)>,
}

/// How long a wall-clock reading serves as the anchor of line times (the two clocks drift
/// apart by well under a millisecond in that time).
const ANCHOR_FOR: Duration = Duration::from_secs(1);

impl Local {
    /// The wall-clock time (since the Unix epoch) at the monotonic instant `at`.
    fn wall(&mut self, at: Instant) -> Duration {
        if let Some((mono, wall)) = self.anchor
            && let Some(since) = at.checked_duration_since(mono)
            && since < ANCHOR_FOR
        {
            return wall + since;
        }
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.anchor = Some((at, wall));
        wall
    }
}

impl AccessLog {
    /// An access log writing `text` or `json` lines; starts its writer thread when lines go
    /// to stdout.
    pub fn start(json: bool) -> Arc<AccessLog> {
        let log = Arc::new(AccessLog {
            json,
            shards: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            writer: Mutex::new(None),
            waker: OnceLock::new(),
            closed: AtomicBool::new(false),
        });
        if STDOUT.load(Ordering::Relaxed) {
            let weak = Arc::downgrade(&log);
            let writer = std::thread::Builder::new()
                .name("zhifu-access-log".into())
                .spawn(move || write_forever(&weak))
                .ok();
            if let Some(writer) = &writer {
                let _ = log.waker.set(writer.thread().clone());
            }
            *log.writer.lock().unwrap_or_else(|e| e.into_inner()) = writer;
        }
        log
    }

    /// Lines dropped because stdout did not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records one request, answered at the instant `at`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        self: &Arc<Self>,
        request_id: &str,
        ip: IpAddr,
        method: &str,
        path: &str,
        status: u16,
        micros: u64,
        at: Instant,
    ) {
        if !STDOUT.load(Ordering::Relaxed) {
            tracing::info!(target: "zhifu::access", request_id, %ip, method, path, status, micros);
            return;
        }
        LOCAL.with_borrow_mut(|local| {
            let now = local.wall(at);
            if local.stamp.is_empty() || local.second != now.as_secs() {
                local.second = now.as_secs();
                local.stamp = stamp(now.as_secs());
            }
            // Taken apart: the shard and the address's text are borrowed at once.
            let Local {
                shards, stamp, last_ip, ..
            } = local;
            let shard = shard_of(shards, self);
            let mut lines = shard.lines.lock().unwrap_or_else(|e| e.into_inner());
            if lines.len() > MAX_BUFFER {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if last_ip.as_ref().is_none_or(|(last, _)| *last != ip) {
                let mut text = Vec::with_capacity(15);
                write_ip(ip, &mut text);
                *last_ip = Some((ip, text));
            }
            let line = Line {
                stamp,
                micros_of_second: now.subsec_micros(),
                request_id,
                ip: last_ip.as_ref().map_or(&[], |(_, text)| text),
                method,
                path,
                status,
                micros,
            };
            let before = lines.len();
            if self.json {
                line.json(&mut lines);
            } else {
                line.text(&mut lines);
            }
            if before < WAKE_AT && lines.len() >= WAKE_AT {
                drop(lines);
                if let Some(writer) = self.waker.get() {
                    writer.unpark();
                }
            }
        });
    }

    /// Stops the writer thread and writes every pending line (at shutdown; again after
    /// late workers finish, for their lines).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            writer.thread().unpark();
            let _ = writer.join();
        }
        self.drain(&mut Vec::new(), write_out);
    }

    /// Hands every shard's pending lines to `out`, one shard at a time: each shard's buffer is
    /// swapped for `spare` (empty, and empty again on return), so that a worker waits for a
    /// swap, not a copy.
    fn drain(&self, spare: &mut Vec<u8>, mut out: impl FnMut(&[u8])) {
        let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for shard in shards {
            if spare.capacity() > 4 * WAKE_AT {
                // What a stall grew is not kept.
                spare.shrink_to(2 * WAKE_AT);
            }
            std::mem::swap(&mut *shard.lines.lock().unwrap_or_else(|e| e.into_inner()), spare);
            out(spare);
            spare.clear();
        }
    }
}

/// This thread's shard of `log` among `shards`, made and registered on first use (borrowed:
/// no reference count touched per line).
fn shard_of<'a>(shards: &'a mut Vec<(Weak<AccessLog>, Arc<Shard>)>, log: &Arc<AccessLog>) -> &'a Shard {
    let found = shards
        .iter()
        .position(|(owner, _)| std::ptr::eq(owner.as_ptr(), Arc::as_ptr(log)));
    let index = match found {
        Some(index) => index,
        None => {
            shards.retain(|(owner, _)| owner.strong_count() > 0);
            let shard = Arc::new(Shard::default());
            log.shards
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Arc::clone(&shard));
            shards.push((Arc::downgrade(log), shard));
            shards.len() - 1
        }
    };
    &shards[index].1
}

/// The writer thread: empties the buffers every [`FLUSH_EVERY`], or when a worker wakes it,
/// until the log closes or is dropped, then once more.
fn write_forever(log: &Weak<AccessLog>) {
    let mut spare = Vec::with_capacity(2 * WAKE_AT);
    loop {
        std::thread::park_timeout(FLUSH_EVERY);
        let Some(log) = log.upgrade() else { return };
        log.drain(&mut spare, write_out);
        if log.closed.load(Ordering::Relaxed) {
            return;
        }
    }
}

/// One write of whole lines to stdout (under its lock, so no other log line cuts in).
fn write_out(batch: &[u8]) {
    if !batch.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(batch).and_then(|()| out.flush());
    }
}

/// `2026-12-06T03:20:28.` for the Unix second `secs` (UTC, as `tracing` writes it).
fn stamp(secs: u64) -> Vec<u8> {
    let at =
        OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
    .into_bytes()
}

/// One request's fields.
struct Line<'a> {
    stamp: &'a [u8],
    micros_of_second: u32,
    request_id: &'a str,
    /// The client address as text.
    ip: &'a [u8],
    method: &'a str,
    path: &'a str,
    status: u16,
    micros: u64,
}

impl Line<'_> {
    fn time(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.stamp);
        // Six digits and the zone, zero-padded (`micros_of_second` is below 1,000,000).
        let mut fraction = *b"000000Z";
        let mut rest = self.micros_of_second;
        for digit in fraction[..6].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend_from_slice(&fraction);
    }

    /// `2026-12-06T03:20:28.123456Z  INFO zhifu::access: request_id=… ip=… method=GET
    /// path="/healthz" status=200 micros=12`
    fn text(&self, out: &mut Vec<u8>) {
        let mut digits = itoa::Buffer::new();
        self.time(out);
        out.extend_from_slice(b"  INFO zhifu::access: request_id=");
        out.extend_from_slice(self.request_id.as_bytes());
        out.extend_from_slice(b" ip=");
        out.extend_from_slice(self.ip);
        out.extend_from_slice(b" method=");
        out.extend_from_slice(self.method.as_bytes());
        out.extend_from_slice(b" path=\"");
        escaped(self.path, out);
        out.extend_from_slice(b"\" status=");
        out.extend_from_slice(digits.format(self.status).as_bytes());
        out.extend_from_slice(b" micros=");
        out.extend_from_slice(digits.format(self.micros).as_bytes());
        out.push(b'\n');
    }

    /// The same fields as one JSON object, as `tracing`'s JSON lines are.
    fn json(&self, out: &mut Vec<u8>) {
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(b"{\"timestamp\":\"");
        self.time(out);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"request_id\":\"");
        escaped(self.request_id, out);
        out.extend_from_slice(b"\",\"ip\":\"");
        out.extend_from_slice(self.ip);
        out.extend_from_slice(b"\",\"method\":\"");
        escaped(self.method, out);
        out.extend_from_slice(b"\",\"path\":\"");
        escaped(self.path, out);
        out.extend_from_slice(b"\",\"status\":");
        out.extend_from_slice(digits.format(self.status).as_bytes());
        out.extend_from_slice(b",\"micros\":");
        out.extend_from_slice(digits.format(self.micros).as_bytes());
        out.extend_from_slice(b",\"target\":\"zhifu::access\"}\n");
    }
}

/// `ip` as `Display` writes it; IPv4 without `core::fmt` (most lines).
fn write_ip(ip: IpAddr, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// The bytes [`escaped`] copies as they are, by value: one load per byte of a path.
const PLAIN: [bool; 256] = {
    let mut table = [true; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = !matches!(b as u8, b'"' | b'\\' | 0..=0x1f | 0x7f);
        b += 1;
    }
    table
};

/// `text` inside double quotes: `"` and `\` escaped, control characters as `\u00XX` (valid
/// in JSON and unambiguous in text lines).
fn escaped(text: &str, out: &mut Vec<u8>) {
    if text.bytes().all(|b| PLAIN[usize::from(b)]) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for &b in text.as_bytes() {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0..=0x1f | 0x7f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(stamp: &'a [u8], path: &'a str) -> Line<'a> {
        Line {
            stamp,
            micros_of_second: 4_321,
            request_id: "0a1b2c3d-7f",
            ip: b"10.0.0.7",
            method: "GET",
            path,
            status: 200,
            micros: 87,
        }
    }

    #[test]
    fn times_carry_six_digits_of_microseconds() {
        let stamp = stamp(1_796_500_800);
        for (micros, written) in [(0, "000000"), (7, "000007"), (4_321, "004321"), (999_999, "999999")] {
            let mut out = Vec::new();
            Line {
                micros_of_second: micros,
                ..line(&stamp, "/")
            }
            .time(&mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("2026-12-05T20:00:00.{written}Z")
            );
        }
    }

    #[test]
    fn text_lines_read_like_tracing_lines() {
        let stamp = stamp(1_796_500_800);
        let mut out = Vec::new();
        line(&stamp, "/api/rankings").text(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-12-05T20:00:00.004321Z  INFO zhifu::access: request_id=0a1b2c3d-7f ip=10.0.0.7 method=GET path=\"/api/rankings\" status=200 micros=87\n"
        );
    }

    #[test]
    fn json_lines_parse_with_every_field_even_for_hostile_paths() {
        let stamp = stamp(1_796_500_800);
        let mut out = Vec::new();
        let hostile = "/a\"b\\c\u{1}";
        line(&stamp, hostile).json(&mut out);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["path"], hostile);
        assert_eq!(value["timestamp"], "2026-12-05T20:00:00.004321Z");
        assert_eq!(value["status"], 200);
        assert_eq!(value["micros"], 87);
        assert_eq!(value["ip"], "10.0.0.7");
        assert_eq!(value["target"], "zhifu::access");
        assert_eq!(out.last(), Some(&b'\n'));
    }

    #[test]
    fn exactly_quotes_backslashes_and_control_characters_are_escaped() {
        for b in 0..0x80u8 {
            let mut out = Vec::new();
            escaped(char::from(b).encode_utf8(&mut [0; 4]), &mut out);
            let special = matches!(b, b'"' | b'\\' | 0..=0x1f | 0x7f);
            assert_eq!(out != [b], special, "byte {b:#04x}: {out:?}");
        }
        let mut out = Vec::new();
        escaped("/a\"b\u{7f}é", &mut out);
        assert_eq!(out, "/a\\\"b\\u007fé".as_bytes());
    }

    #[test]
    fn addresses_read_as_display_writes_them() {
        for text in [
            "0.0.0.0",
            "10.0.0.7",
            "255.255.255.255",
            "192.168.1.20",
            "::1",
            "2001:db8::7",
            "::ffff:10.0.0.1",
        ] {
            let address: IpAddr = text.parse().unwrap();
            let mut out = Vec::new();
            write_ip(address, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), address.to_string());
        }
    }

    #[test]
    fn lines_from_several_threads_are_all_taken_whole() {
        install_stdout();
        let log = AccessLog::start(false);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let log = &log;
                scope.spawn(move || {
                    for i in 0..500 {
                        log.record(
                            "id",
                            IpAddr::from([127, 0, 0, 1]),
                            "GET",
                            &format!("/t{t}/{i}"),
                            200,
                            1,
                            Instant::now(),
                        );
                    }
                });
            }
        });
        // Whatever the writer took already went to stdout; the rest is taken here.
        let mut batch = Vec::new();
        log.drain(&mut Vec::new(), |lines| batch.extend_from_slice(lines));
        let text = String::from_utf8(batch).unwrap();
        assert!(
            text.lines()
                .all(|l| l.contains("zhifu::access") && l.ends_with("micros=1"))
        );
        log.close();
        let mut after = Vec::new();
        log.drain(&mut Vec::new(), |lines| after.extend_from_slice(lines));
        assert!(after.is_empty(), "close wrote everything");
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn a_full_buffer_wakes_the_writer_and_is_swapped_out_whole() {
        install_stdout();
        // A stand-in for the writer: it parks far longer than the test and says when it woke.
        let (woke, heard) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            std::thread::park_timeout(Duration::from_secs(120));
            let _ = woke.send(());
        });
        let log = Arc::new(AccessLog {
            json: false,
            shards: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            writer: Mutex::new(None),
            waker: OnceLock::from(writer.thread().clone()),
            closed: AtomicBool::new(false),
        });
        let pending = |log: &AccessLog| {
            let shards = log.shards.lock().unwrap().clone();
            shards.iter().map(|s| s.lines.lock().unwrap().len()).sum::<usize>()
        };
        let mut lines = 0;
        while pending(&log) < WAKE_AT {
            assert!(heard.try_recv().is_err(), "woken before {WAKE_AT} bytes were pending");
            log.record(
                "id",
                IpAddr::from([10, 0, 0, 7]),
                "GET",
                "/healthz",
                200,
                1,
                Instant::now(),
            );
            lines += 1;
        }
        heard
            .recv_timeout(Duration::from_secs(60))
            .expect("the writer was woken, not left to its timeout");
        writer.join().unwrap();

        let mut taken = Vec::new();
        let mut spare = Vec::new();
        log.drain(&mut spare, |batch| taken.extend_from_slice(batch));
        assert_eq!(taken.iter().filter(|b| **b == b'\n').count(), lines);
        assert!(spare.is_empty() && pending(&log) == 0);
    }
}
