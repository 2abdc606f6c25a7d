//! Results, and how they are shown: a table per measurement with one row per server, side
//! by side, each followed by mesh's ratio to every other server; or JSON.

use serde::Serialize;

use crate::run::Load;

/// Latency percentiles of one set of samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Number of samples.
    pub samples: usize,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Largest sample, in milliseconds.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles (nearest rank) of samples in microseconds; `None` without samples.
    pub fn from_micros(mut samples: Vec<u32>) -> Option<Self> {
        let max = *samples.iter().max()?;
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            f64::from(samples[rank - 1]) / 1000.0
        };
        Some(Latency {
            samples: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: f64::from(max) / 1000.0,
        })
    }
}

/// Server memory, from its resident set size.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// RSS after start, before any room or connection.
    pub idle_kib: u64,
    /// RSS with every client connected and synced.
    pub connected_kib: u64,
    /// (connected − idle) / connections.
    pub per_connection_kib: f64,
    /// Peak RSS over the whole run.
    pub peak_kib: u64,
}

/// One phase's results against one server.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// `typing` or `saturation`.
    pub phase: &'static str,
    /// Seconds of load.
    pub load_secs: f64,
    /// Updates sent.
    pub sent: u64,
    /// Receipts expected: each update by each of its sender's room-mates.
    pub expected: u64,
    /// Receipts that arrived by the end of the drain.
    pub received: u64,
    /// `expected − received`.
    pub lost: u64,
    /// Updates sent per second of load.
    pub sent_per_sec: f64,
    /// Receipts per second, from the start of the load to the last receipt.
    pub delivered_per_sec: f64,
    /// Send-to-receipt latency.
    pub latency: Option<Latency>,
    /// Server CPU time over wall time (load and drain); 100 is one core.
    pub server_cpu_percent: f64,
    /// The bench's own CPU time over the same wall time.
    pub bench_cpu_percent: f64,
    /// Server CPU time per receipt, in microseconds: efficiency independent of which
    /// side was the bottleneck.
    pub server_cpu_us_per_delivery: Option<f64>,
    /// Server RSS at the end of the phase.
    pub rss_after_kib: u64,
}

/// One server's results.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// Server name.
    pub server: &'static str,
    /// Client connections.
    pub connections: usize,
    /// Connect time: handshake start to first server message.
    pub connect: Option<Latency>,
    /// Server memory.
    pub memory: MemoryReport,
    /// Results per phase, in the order they ran.
    pub phases: Vec<PhaseReport>,
    /// Clients whose socket the server closed (or that failed) before the end.
    pub disconnected_clients: usize,
    /// Received updates that did not decode.
    pub undecodable_updates: u64,
}

/// A server's results, or why it has none.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Server name.
    pub server: &'static str,
    /// The report, or the error that ended the run.
    pub result: Result<ServerReport, String>,
}

/// How tables are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned plain text.
    Text,
    /// GitHub-flavoured Markdown.
    Markdown,
}

/// The results as one JSON document.
pub fn to_json(load: &Load, bench_threads: usize, outcomes: &[Outcome]) -> serde_json::Value {
    let results: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(report) => serde_json::to_value(report).unwrap_or_default(),
            Err(error) => serde_json::json!({ "server": o.server, "error": error }),
        })
        .collect();
    serde_json::json!({ "load": load, "bench_threads": bench_threads, "results": results })
}

/// The results as tables.
pub fn render(load: &Load, bench_threads: usize, outcomes: &[Outcome], style: Style) -> String {
    let mut out = String::new();
    let heading = format!(
        "mesh-bench: {} rooms x {} clients ({} connections, {} typing per room), {} s per phase; typing {} updates/s \
         per typist; saturation window {} per typist; bench threads {}",
        load.rooms,
        load.clients,
        load.connections(),
        load.writers,
        load.duration_secs,
        load.rate,
        load.window,
        bench_threads
    );
    match style {
        Style::Text => out.push_str(&format!("{heading}\n\n")),
        Style::Markdown => out.push_str(&format!("**{heading}**\n\n")),
    }
    let ok: Vec<&ServerReport> = outcomes.iter().filter_map(|o| o.result.as_ref().ok()).collect();
    if !ok.is_empty() {
        out.push_str(&tables(load, &ok, style));
    }
    for r in &ok {
        if r.disconnected_clients > 0 || r.undecodable_updates > 0 {
            out.push_str(&format!(
                "note: {}: {} clients disconnected before the end, {} received updates did not decode\n",
                r.server, r.disconnected_clients, r.undecodable_updates
            ));
        }
    }
    for o in outcomes {
        if let Err(e) = &o.result {
            out.push_str(&format!("{}: FAILED: {e}\n", o.server));
        }
    }
    out
}

/// The tables of the servers that have results.
fn tables(load: &Load, ok: &[&ServerReport], style: Style) -> String {
    let mut out = String::new();

    let mut table = Table::new(
        "Connections and memory",
        &[
            "server",
            "conns",
            "connect p50 ms",
            "connect p99 ms",
            "RSS idle MiB",
            "RSS connected MiB",
            "KiB/conn",
            "peak RSS MiB",
        ],
    );
    for r in ok {
        table.row(vec![
            r.server.to_string(),
            r.connections.to_string(),
            opt(r.connect.as_ref().map(|l| l.p50_ms), 2),
            opt(r.connect.as_ref().map(|l| l.p99_ms), 2),
            mib(r.memory.idle_kib),
            mib(r.memory.connected_kib),
            format!("{:.1}", r.memory.per_connection_kib),
            mib(r.memory.peak_kib),
        ]);
    }
    out.push_str(&table.render(style));
    out.push_str(&ratios(ok, style, |r| {
        vec![
            Ratio::lower("connect p50", r.connect.as_ref().map(|l| l.p50_ms)),
            Ratio::lower("connect p99", r.connect.as_ref().map(|l| l.p99_ms)),
            Ratio::lower("KiB/conn", Some(r.memory.per_connection_kib)),
            Ratio::lower("peak RSS", Some(r.memory.peak_kib as f64)),
        ]
    }));
    out.push('\n');

    let phase_names: Vec<&str> = ok
        .first()
        .map(|r| r.phases.iter().map(|p| p.phase).collect())
        .unwrap_or_default();
    for (i, name) in phase_names.iter().enumerate() {
        let title = match *name {
            "typing" => format!(
                "Typing: {} updates/s per client for {} s",
                load.rate, load.duration_secs
            ),
            _ => format!(
                "Saturation: window {} per client for {} s",
                load.window, load.duration_secs
            ),
        };
        let mut table = Table::new(
            &title,
            &[
                "server",
                "sent",
                "sent/s",
                "expected",
                "received",
                "lost",
                "delivered/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "server CPU %",
                "CPU us/delivery",
                "bench CPU %",
            ],
        );
        for r in ok {
            let p = &r.phases[i];
            table.row(vec![
                r.server.to_string(),
                p.sent.to_string(),
                format!("{:.0}", p.sent_per_sec),
                p.expected.to_string(),
                p.received.to_string(),
                p.lost.to_string(),
                format!("{:.0}", p.delivered_per_sec),
                opt(p.latency.as_ref().map(|l| l.p50_ms), 2),
                opt(p.latency.as_ref().map(|l| l.p99_ms), 2),
                opt(p.latency.as_ref().map(|l| l.max_ms), 1),
                format!("{:.0}", p.server_cpu_percent),
                opt(p.server_cpu_us_per_delivery, 1),
                format!("{:.0}", p.bench_cpu_percent),
            ]);
        }
        out.push_str(&table.render(style));
        out.push_str(&ratios(ok, style, |r| {
            let p = &r.phases[i];
            vec![
                Ratio::lower("p50", p.latency.as_ref().map(|l| l.p50_ms)),
                Ratio::lower("p99", p.latency.as_ref().map(|l| l.p99_ms)),
                Ratio::lower("CPU/delivery", p.server_cpu_us_per_delivery),
                Ratio::higher("delivered/s", Some(p.delivered_per_sec)),
            ]
        }));
        out.push('\n');
    }
    out
}

/// One compared quantity of a ratio line.
struct Ratio {
    name: &'static str,
    value: Option<f64>,
    lower_is_better: bool,
}

impl Ratio {
    fn lower(name: &'static str, value: Option<f64>) -> Self {
        Ratio {
            name,
            value,
            lower_is_better: true,
        }
    }

    fn higher(name: &'static str, value: Option<f64>) -> Self {
        Ratio {
            name,
            value,
            lower_is_better: false,
        }
    }
}

/// One line per other server: mesh's value divided by theirs, for each quantity.
fn ratios(reports: &[&ServerReport], style: Style, quantities: impl Fn(&ServerReport) -> Vec<Ratio>) -> String {
    let Some(mesh) = reports.iter().find(|r| r.server == "mesh") else {
        return String::new();
    };
    let ours = quantities(mesh);
    let mut out = String::new();
    for other in reports.iter().filter(|r| r.server != "mesh") {
        let theirs = quantities(other);
        let group = |lower_is_better: bool| -> Vec<String> {
            ours.iter()
                .zip(&theirs)
                .filter(|(a, _)| a.lower_is_better == lower_is_better)
                .map(|(a, b)| match (a.value, b.value) {
                    (Some(x), Some(y)) if y > 0.0 => format!("{} {:.2}x", a.name, x / y),
                    _ => format!("{} n/a", a.name),
                })
                .collect()
        };
        let mut parts = Vec::new();
        for (lower_is_better, verdict) in [(true, "lower is better"), (false, "higher is better")] {
            let group = group(lower_is_better);
            if !group.is_empty() {
                parts.push(format!("{} ({verdict})", group.join(", ")));
            }
        }
        let line = format!("mesh / {}: {}", other.server, parts.join("; "));
        match style {
            Style::Text => out.push_str(&format!("{line}\n")),
            Style::Markdown => out.push_str(&format!("*{line}*\n")),
        }
    }
    out
}

/// A table: a title, a header and rows of cells (first column left-aligned, others right).
pub(crate) struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a title and a header, no rows yet.
    pub(crate) fn new(title: &str, header: &[&str]) -> Self {
        Table {
            title: title.to_string(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as the header).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text or Markdown.
    pub(crate) fn render(&self, style: Style) -> String {
        match style {
            Style::Text => self.render_text(),
            Style::Markdown => self.render_markdown(),
        }
    }

    fn render_text(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].len())
                    .chain([self.header[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, &w))| {
                    if c == 0 {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            format!("{}\n", padded.join("  ").trim_end())
        };
        let mut out = format!("{}\n", self.title);
        out.push_str(&line(&self.header));
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        out.push_str(&line(&rule));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    fn render_markdown(&self) -> String {
        let mut out = format!("### {}\n\n| {} |\n", self.title, self.header.join(" | "));
        let align: Vec<&str> = (0..self.header.len())
            .map(|c| if c == 0 { ":---" } else { "---:" })
            .collect();
        out.push_str(&format!("| {} |\n", align.join(" | ")));
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out.push('\n');
        out
    }
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

pub(crate) fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let latency = Latency::from_micros((1..=100).map(|ms| ms * 1000).collect()).unwrap();
        assert_eq!((latency.p50_ms, latency.p99_ms, latency.max_ms), (50.0, 99.0, 100.0));
        assert_eq!(Latency::from_micros(vec![7]).unwrap().p99_ms, 0.007);
        assert!(Latency::from_micros(Vec::new()).is_none());
    }

    #[test]
    fn text_tables_align_and_markdown_tables_have_a_rule() {
        let mut table = Table::new("T", &["server", "n"]);
        table.row(vec!["mesh".into(), "1234".into()]);
        assert_eq!(
            table.render(Style::Text),
            "T\nserver     n\n------  ----\nmesh    1234\n"
        );
        assert_eq!(
            table.render(Style::Markdown),
            "### T\n\n| server | n |\n| :--- | ---: |\n| mesh | 1234 |\n\n"
        );
    }
}
