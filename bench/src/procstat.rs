//! Memory and CPU time of a process, read from `/proc` (Linux only).

use std::time::Duration;

use anyhow::Context;

/// Kernel clock ticks per second in `/proc/<pid>/stat` (USER_HZ): 100 on every Linux
/// architecture the bench runs on.
const CLOCK_TICKS_PER_SEC: u64 = 100;

/// Memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size since the process started (`VmHWM`).
    pub peak_kib: u64,
}

/// Reads `pid`'s resident memory.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} for pid {pid}"))?;
        let kib = line[name.len()..].trim().trim_end_matches("kB").trim();
        kib.parse().with_context(|| format!("bad {name} line {line:?}"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// CPU time (user + system, all threads) that `pid` has used; `None` for this process.
pub fn cpu_time(pid: Option<u32>) -> anyhow::Result<Duration> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_string(), |pid| format!("/proc/{pid}/stat"));
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start with field 3 (state), so utime (field 14) and stime (field 15) are 11 and 12.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("bad stat line")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .context("short stat line")?
            .parse()
            .context("bad stat field")
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 1000 / CLOCK_TICKS_PER_SEC))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let memory = memory(std::process::id()).unwrap();
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
        assert!(cpu_time(None).is_ok());
        assert!(cpu_time(Some(std::process::id())).is_ok());
    }
}
