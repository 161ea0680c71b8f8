//! The Prometheus endpoint: a tiny HTTP/1.1 server on its own thread that answers
//! `GET /metrics` with the text exposition format (version 0.0.4). It corresponds to Apache
//! ZooKeeper's PrometheusMetricsProvider, switched on by `metricsProvider.httpPort` (or by
//! naming that provider class, which implies port 7000).
//!
//! What it serves is a snapshot: the event loop calls `MetricsHub::update` about once a
//! second with its `mntr` text and its request latency histogram, and the snapshot is
//! rendered there, once. Serving a scrape only copies that text under a short lock, so a
//! scraper can never slow the event loop down, and the endpoint never sees the server's
//! state directly. Every `zk_<key>\t<number>` line of mntr becomes a gauge of the same name;
//! `zk_server_state` becomes `zk_server_state{state="..."} 1` and `zk_version` becomes
//! `zk_build_info{version="..."} 1`; other non-numeric lines are left out. The histogram
//! comes out as `zk_request_latency_ms_bucket{le="..."}`, `_sum` and `_count`.
//!
//! Bounds: one connection is served at a time, each within `REQUEST_TIMEOUT` in all; a
//! request head larger than `REQUEST_BYTES_MAX` is refused; one request per connection
//! (`Connection: close`). Any path but `/metrics` is a 404. This module never spawns more
//! than its one thread and uses std::net only.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The largest request head (request line and headers) read from a scraper.
pub const REQUEST_BYTES_MAX: usize = 8 << 10;
/// The longest one connection may take to send its request and receive the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the accept loop rests after an accept error (such as too many open files), so
/// it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// The upper bounds of the latency histogram's buckets, in milliseconds; `+Inf` follows.
pub const LATENCY_BUCKETS_MS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    10000.0,
];
/// The Content-Type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The metric name of the latency histogram.
const LATENCY_METRIC: &str = "zk_request_latency_ms";

/// Request latencies in fixed buckets (`LATENCY_BUCKETS_MS`), counted since the server
/// started, as Prometheus histograms are. Owned by the event loop and updated without locks;
/// a copy goes to the hub with each update.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    /// Observations per bucket, not cumulative; the last one is the `+Inf` bucket.
    counts: [u64; LATENCY_BUCKETS_MS.len() + 1],
    sum_ms: f64,
    count: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> LatencyHistogram {
        LatencyHistogram {
            counts: [0; LATENCY_BUCKETS_MS.len() + 1],
            sum_ms: 0.0,
            count: 0,
        }
    }

    /// Records one request that took `ms` milliseconds. Negative or NaN values (a clock
    /// going backwards) count as 0.
    pub fn observe(&mut self, ms: f64) {
        let ms = if ms.is_nan() || ms < 0.0 { 0.0 } else { ms };
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|&le| ms <= le)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.counts[i] += 1;
        self.sum_ms += ms;
        self.count += 1;
    }

    /// Records one request that took `d`.
    pub fn observe_duration(&mut self, d: Duration) {
        self.observe(d.as_secs_f64() * 1000.0);
    }

    /// How many requests were observed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of every observed latency, in milliseconds.
    pub fn sum_ms(&self) -> f64 {
        self.sum_ms
    }

    /// Appends the histogram in the text format, cumulative as Prometheus wants it.
    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {LATENCY_METRIC} Client request latency in milliseconds, from the \
             request's arrival to its reply."
        );
        let _ = writeln!(out, "# TYPE {LATENCY_METRIC} histogram");
        let mut cumulative = 0;
        for (i, le) in LATENCY_BUCKETS_MS.iter().enumerate() {
            cumulative += self.counts[i];
            let _ = writeln!(out, "{LATENCY_METRIC}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += self.counts[LATENCY_BUCKETS_MS.len()];
        let _ = writeln!(out, "{LATENCY_METRIC}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{LATENCY_METRIC}_sum {}", number(self.sum_ms));
        let _ = writeln!(out, "{LATENCY_METRIC}_count {}", self.count);
    }
}

/// The snapshot the endpoint serves, shared between the event loop (which updates it) and
/// the endpoint's thread (which reads it).
#[derive(Debug, Default)]
pub struct MetricsHub {
    /// The rendered exposition text; empty until the first update.
    text: Mutex<String>,
}

impl MetricsHub {
    pub fn new() -> MetricsHub {
        MetricsHub::default()
    }

    /// Replaces the snapshot with these figures: the `mntr` four-letter word's text
    /// (`zk_<key>\t<value>` lines) and the request latency histogram.
    pub fn update(&self, mntr_text: &str, latency: &LatencyHistogram) {
        let text = render(mntr_text, latency);
        *self.text.lock().unwrap_or_else(|e| e.into_inner()) = text;
    }

    /// The text a scrape gets now.
    pub fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Renders mntr text and a histogram in the Prometheus text format.
pub fn render(mntr_text: &str, latency: &LatencyHistogram) -> String {
    let mut out = String::with_capacity(4096);
    let mut seen: Vec<String> = Vec::new();
    for line in mntr_text.lines() {
        let Some((key, value)) = line.split_once('\t') else {
            continue;
        };
        let Some(key) = key.strip_prefix("zk_") else {
            continue;
        };
        let value = value.trim();
        match key {
            "server_state" => {
                let _ = writeln!(
                    out,
                    "# HELP zk_server_state The server's mode; the gauge is 1 for the current one."
                );
                let _ = writeln!(out, "# TYPE zk_server_state gauge");
                let _ = writeln!(out, "zk_server_state{{state=\"{}\"}} 1", label(value));
                continue;
            }
            "version" => {
                let _ = writeln!(
                    out,
                    "# HELP zk_build_info The server's version, as mntr says it."
                );
                let _ = writeln!(out, "# TYPE zk_build_info gauge");
                let _ = writeln!(out, "zk_build_info{{version=\"{}\"}} 1", label(value));
                continue;
            }
            _ => {}
        }
        let Some(v) = parse_number(value) else {
            continue;
        };
        let name = format!("zk_{}", metric_name(key));
        // A name the histogram uses, or one seen before after sanitizing, would make the
        // exposition invalid; the first one wins.
        if name.starts_with(LATENCY_METRIC) || seen.contains(&name) {
            continue;
        }
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {}", number(v));
        seen.push(name);
    }
    latency.render(&mut out);
    out
}

/// Parses an mntr value as a number; Java's `NaN` and `Infinity` too.
fn parse_number(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// A number as the text format writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

/// A metric name made of `[a-zA-Z0-9_:]` only (mntr keys may carry znode names, in the
/// per-namespace quota gauges).
fn metric_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds `addr` and serves the hub's snapshot there on a thread of its own. Binding happens
/// before this returns, so a port in use is reported to the caller.
pub fn spawn(addr: SocketAddr, hub: Arc<MetricsHub>) -> io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("metrics endpoint on {addr}: {e}")))?;
    spawn_on(listener, hub)
}

/// Serves the hub's snapshot on an already bound listener (for tests, which bind port 0 and
/// read the address back).
pub fn spawn_on(listener: TcpListener, hub: Arc<MetricsHub>) -> io::Result<JoinHandle<()>> {
    let local = listener.local_addr()?;
    let handle = std::thread::Builder::new()
        .name("zk-metrics".to_owned())
        .spawn(move || {
            log::info!("serving Prometheus metrics on http://{local}/metrics");
            serve(listener, &hub)
        })?;
    Ok(handle)
}

/// The accept loop: one connection at a time, until the process exits.
fn serve(listener: TcpListener, hub: &MetricsHub) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = handle(stream, hub) {
                    log::debug!("metrics: {peer}: {e}");
                }
            }
            Err(e) => {
                log::warn!("metrics: accept failed: {e}");
                std::thread::sleep(ACCEPT_ERROR_PAUSE);
            }
        }
    }
}

/// Reads one request and answers it.
fn handle(mut stream: TcpStream, hub: &MetricsHub) -> io::Result<()> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let head = match read_head(&mut stream, deadline)? {
        Head::Complete(head) => head,
        Head::TooLarge => {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "",
                "",
                true,
            )
        }
    };
    let request_line = head.lines().next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(target), Some(version)) = (method, target, version) else {
        return respond(&mut stream, "400 Bad Request", "", "", true);
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return respond(&mut stream, "400 Bad Request", "", "", true);
    }
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return respond(
            &mut stream,
            "404 Not Found",
            "",
            "not found\n",
            method != "HEAD",
        );
    }
    match method {
        "GET" => respond(&mut stream, "200 OK", "", &hub.text(), true),
        "HEAD" => respond(&mut stream, "200 OK", "", &hub.text(), false),
        _ => respond(
            &mut stream,
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            "",
            true,
        ),
    }
}

/// What reading a request head gave.
enum Head {
    Complete(String),
    TooLarge,
}

/// Reads up to the blank line that ends the request head, within the deadline and
/// `REQUEST_BYTES_MAX`. A body, if any, is never read.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> io::Result<Head> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "request too slow"));
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the end of the request head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&buf) {
            return Ok(Head::Complete(
                String::from_utf8_lossy(&buf[..end]).into_owned(),
            ));
        }
        if buf.len() > REQUEST_BYTES_MAX {
            return Ok(Head::TooLarge);
        }
    }
}

/// Where the head ends (`\r\n\r\n`, or `\n\n` from lenient clients), if it does.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Writes a whole response and closes the connection's write side.
fn respond(
    stream: &mut TcpStream,
    status: &str,
    extra_headers: &str,
    body: &str,
    send_body: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\
         {extra_headers}Connection: close\r\n\r\n",
        body.len()
    );
    if send_body {
        out.push_str(body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNTR: &str = "zk_version\t3.9.4-zk-0.1.0, built on 2026-11-24 00:00 UTC\n\
zk_server_state\tstandalone\n\
zk_avg_latency\t0.5\n\
zk_max_latency\t3\n\
zk_min_latency\t0\n\
zk_packets_received\t12\n\
zk_num_alive_connections\t1\n\
zk_znode_count\t5\n\
zk_approximate_data_size\t44\n\
zk_peer_state\tfollowing - broadcast\n\
zk_/app_quota_count_limit\t-1\n\
not a metric line\n";

    fn histogram() -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for ms in [0.05, 0.3, 0.3, 2.0, 20000.0] {
            h.observe(ms);
        }
        h.observe_duration(Duration::from_micros(700));
        h
    }

    /// Sends raw bytes to the endpoint and returns the whole answer.
    fn fetch(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// An endpoint on a free loopback port, fed MNTR and `histogram()`.
    fn endpoint() -> (SocketAddr, Arc<MetricsHub>) {
        let hub = Arc::new(MetricsHub::new());
        hub.update(MNTR, &histogram());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_on(listener, Arc::clone(&hub)).unwrap();
        (addr, hub)
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let text = render("", &histogram());
        assert!(
            text.contains("# TYPE zk_request_latency_ms histogram\n"),
            "{text}"
        );
        for (le, n) in [
            ("0.1", 1),
            ("0.25", 1),
            ("0.5", 3),
            ("1", 4),
            ("2.5", 5),
            ("10000", 5),
            ("+Inf", 6),
        ] {
            let line = format!("zk_request_latency_ms_bucket{{le=\"{le}\"}} {n}\n");
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("zk_request_latency_ms_count 6\n"), "{text}");
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("zk_request_latency_ms_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 20003.35).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn negative_and_nan_latencies_count_as_zero() {
        let mut h = LatencyHistogram::new();
        h.observe(-5.0);
        h.observe(f64::NAN);
        assert_eq!(h.count(), 2);
        assert_eq!(h.sum_ms(), 0.0);
        assert!(render("", &h).contains("zk_request_latency_ms_bucket{le=\"0.1\"} 2\n"));
    }

    #[test]
    fn mntr_lines_become_gauges() {
        let text = render(MNTR, &LatencyHistogram::new());
        for line in [
            "zk_server_state{state=\"standalone\"} 1\n",
            "zk_build_info{version=\"3.9.4-zk-0.1.0, built on 2026-11-24 00:00 UTC\"} 1\n",
            "# TYPE zk_znode_count gauge\nzk_znode_count 5\n",
            "zk_avg_latency 0.5\n",
            "zk_packets_received 12\n",
            "zk_approximate_data_size 44\n",
            "zk__app_quota_count_limit -1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains("peer_state"),
            "non-numeric lines are skipped:\n{text}"
        );
        assert!(!text.contains("not a metric"), "{text}");
        // Every sample line is `name[{labels}] value` with a valid name.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name_end = l.find(['{', ' ']).unwrap();
            let name = &l[..name_end];
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "{l}"
            );
            let value = l.rsplit(' ').next().unwrap();
            assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{l}");
        }
    }

    #[test]
    fn labels_are_escaped_and_duplicates_dropped() {
        let text = render(
            "zk_server_state\ta\"b\\c\nzk_a.b\t1\nzk_a_b\t2\nzk_request_latency_ms_count\t9\n",
            &LatencyHistogram::new(),
        );
        assert!(
            text.contains("zk_server_state{state=\"a\\\"b\\\\c\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("zk_a_b 1\n") && !text.contains("zk_a_b 2"),
            "{text}"
        );
        assert!(!text.contains("zk_request_latency_ms_count 9"), "{text}");
    }

    #[test]
    fn get_metrics_over_http() {
        let (addr, hub) = endpoint();
        let answer = fetch(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
        );
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{head}"
        );
        assert_eq!(body, hub.text());
        for name in [
            "zk_znode_count 5",
            "zk_server_state{state=\"standalone\"} 1",
            "zk_request_latency_ms_bucket{le=\"+Inf\"} 6",
            "zk_request_latency_ms_count 6",
        ] {
            assert!(body.contains(name), "missing {name} in\n{body}");
        }
        // A new snapshot is what the next scrape sees; a query string is ignored.
        hub.update("zk_znode_count\t7\n", &LatencyHistogram::new());
        let answer = fetch(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert!(answer.contains("\nzk_znode_count 7\n"), "{answer}");
        // HEAD: the headers only.
        let answer = fetch(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\n"));
    }

    #[test]
    fn other_paths_methods_and_garbage_are_refused() {
        let (addr, _hub) = endpoint();
        let status = |req: &[u8]| fetch(addr, req).lines().next().unwrap_or("").to_owned();
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
        assert_eq!(
            status(b"GET /metricsx HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status(b"GET /commands/mntr HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(status(b"hello\r\n\r\n"), "HTTP/1.1 400 Bad Request");
        assert_eq!(
            status(b"GET /metrics SPDY/3\r\n\r\n"),
            "HTTP/1.1 400 Bad Request"
        );
        let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
        huge.extend(vec![b'a'; REQUEST_BYTES_MAX + 10]);
        // The server may close before reading all of it; only the status line matters.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(&huge);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(
            String::from_utf8_lossy(&out).starts_with("HTTP/1.1 431 "),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
        // After all that, it still serves.
        assert_eq!(status(b"GET /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 200 OK");
    }

    #[test]
    fn a_silent_client_does_not_block_the_endpoint_forever() {
        let (addr, _hub) = endpoint();
        // Connects and sends nothing: served first, it holds the thread until the timeout.
        let _silent = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        let answer = fetch(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(started.elapsed() < REQUEST_TIMEOUT + Duration::from_secs(3));
    }

    #[test]
    fn a_port_in_use_is_an_error_at_spawn() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let e = spawn(taken.local_addr().unwrap(), Arc::new(MetricsHub::new())).unwrap_err();
        assert!(e.to_string().contains("metrics endpoint"), "{e}");
    }
}
