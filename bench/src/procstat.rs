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

/// Resets `pid`'s peak resident set size (`VmHWM`) to its current RSS (Linux 4.0 and later,
/// `man 5 proc`, `clear_refs`), so a later [`memory`] reports the peak since now.
pub fn reset_peak(pid: u32) -> anyhow::Result<()> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").with_context(|| format!("writing {path}"))
}

/// CPU time (user + system, all threads) that `pid` has used; `None` for this process.
pub fn cpu_time(pid: Option<u32>) -> anyhow::Result<Duration> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_string(), |pid| format!("/proc/{pid}/stat"));
    let stat = Stat::read(&path)?;
    Ok(ticks_to_duration(stat.field(UTIME)? + stat.field(STIME)?))
}

/// CPU time of `pid` and of its children: its own, its waited-for children's (the kernel
/// adds them to the parent when it reaps them), and its live children's. For a server made
/// of processes, such as Postgres's postmaster and its backends.
pub fn tree_cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let own = Stat::read(&format!("/proc/{pid}/stat"))?;
    let mut ticks = own.field(UTIME)? + own.field(STIME)? + own.field(CUTIME)? + own.field(CSTIME)?;
    for entry in std::fs::read_dir("/proc").context("reading /proc")?.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit between the listing and the read: it is skipped, and its time
        // is in its parent's children's fields from then on.
        let Ok(stat) = Stat::read(&format!("/proc/{child}/stat")) else {
            continue;
        };
        if stat.field(PPID).ok() == Some(u64::from(pid)) {
            ticks += stat.field(UTIME)? + stat.field(STIME)?;
        }
    }
    Ok(ticks_to_duration(ticks))
}

/// Indices into the fields after the command name, which start with field 3 (state): the
/// parent pid is field 4, utime 14, stime 15, cutime 16, cstime 17 (`man 5 proc`).
const PPID: usize = 1;
const UTIME: usize = 11;
const STIME: usize = 12;
const CUTIME: usize = 13;
const CSTIME: usize = 14;

/// The fields of one `/proc/<pid>/stat` line after the command name.
struct Stat(Vec<u64>);

impl Stat {
    fn read(path: &str) -> anyhow::Result<Stat> {
        let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        // The command name (field 2) may hold spaces and parentheses: the fields start after
        // the last closing parenthesis. Field 3 (state) is a letter, kept as 0.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("bad stat line")?;
        Ok(Stat(
            after_name.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect(),
        ))
    }

    fn field(&self, i: usize) -> anyhow::Result<u64> {
        self.0.get(i).copied().context("short stat line")
    }
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let memory = memory(std::process::id()).unwrap();
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
        // A peak far above the current RSS, then a reset: the peak drops back near it.
        let big = vec![1u8; 64 << 20];
        assert!(big.iter().step_by(4096).all(|&b| b == 1));
        drop(big);
        let high = super::memory(std::process::id()).unwrap();
        reset_peak(std::process::id()).unwrap();
        let after = super::memory(std::process::id()).unwrap();
        assert!(after.peak_kib < high.peak_kib, "{after:?} after a reset from {high:?}");
        assert!(cpu_time(None).is_ok());
        assert!(cpu_time(Some(std::process::id())).is_ok());
        // Read in this order, the tree's time (this process included) cannot be the smaller.
        let own = cpu_time(None).unwrap();
        assert!(tree_cpu_time(std::process::id()).unwrap() >= own);
    }
}
