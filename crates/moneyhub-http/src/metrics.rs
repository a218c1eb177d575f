//! A small Prometheus text exposition (format 0.0.4) writer and a latency histogram.
//!
//! Hand-written rather than a metrics crate on purpose: the servers' figures already live in
//! their own atomics and in the database (read at scrape time), so a registry would only
//! duplicate them; what is left is formatting a few lines, with escaping, done here once.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds an exposition: each metric's `# HELP` and `# TYPE` once, then its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    described: HashSet<String>,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    fn describe(&mut self, name: &str, kind: &str, help: &str) {
        if self.described.insert(name.to_owned()) {
            let help = help.replace('\\', "\\\\").replace('\n', "\\n");
            let _ = writeln!(self.out, "# HELP {name} {help}");
            let _ = writeln!(self.out, "# TYPE {name} {kind}");
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
    }

    /// A counter sample (`name` ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.describe(name, "counter", help);
        self.sample(name, labels, value as f64);
    }

    /// A gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.describe(name, "gauge", help);
        self.sample(name, labels, value);
    }

    /// A histogram: its buckets, sum and count.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.describe(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, n) in BOUNDS.iter().zip(&h.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            self.sample(&bucket, &[("le", &format_value(*bound))], cumulative as f64);
        }
        let count = h.count.load(Ordering::Relaxed);
        self.sample(&bucket, &[("le", "+Inf")], count as f64);
        self.sample(&format!("{name}_sum"), &[], h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        self.sample(&format!("{name}_count"), &[], count as f64);
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

fn format_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Upper bounds of the histogram's buckets, in seconds: 1 ms to 10 s.
pub const BOUNDS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A latency histogram with the buckets of [`BOUNDS`], lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BOUNDS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let mut e = Exposition::new();
        e.counter("x_total", "Things.", &[("outcome", "a\"b")], 3);
        e.counter("x_total", "Things.", &[("outcome", "c")], 4);
        e.gauge("y", "A level.", &[], 1.5);
        e.histogram("z_seconds", "Latency.", &h);
        let text = e.finish();
        assert_eq!(text.matches("# TYPE x_total counter").count(), 1);
        assert!(text.contains("x_total{outcome=\"a\\\"b\"} 3\n"), "{text}");
        assert!(text.contains("y 1.5\n"));
        assert!(text.contains("z_seconds_bucket{le=\"0.001\"} 0\n"), "{text}");
        assert!(text.contains("z_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("z_seconds_bucket{le=\"10\"} 1\n"), "{text}");
        assert!(text.contains("z_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("z_seconds_count 2\n"));
    }
}
