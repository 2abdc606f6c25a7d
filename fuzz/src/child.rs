//! The child side of crash isolation: `mesh-fuzz child TARGET` reads inputs from stdin, runs
//! each through the target and answers on stdout. The driver ([`crate::driver`]) is the only
//! reader of its answers; anything the child prints for people goes to stderr.
//!
//! Wire (both directions little-endian):
//! - in: for each input, `u32 length` then the bytes;
//! - out: for each input, `u8 status`, `u32 length`, payload: status [`STATUS_OK`] carries
//!   the target's features (`u64` each), [`STATUS_PANIC`] the panic's location and message.
//!
//! A panic is caught and answered, so the child goes on (each input starts from fresh state,
//! so nothing is left half-changed). Whatever cannot be caught (a segfault, an abort, a
//! stack overflow, an allocation failure) ends the child, which is how the driver finds it.

use std::io::{BufReader, BufWriter, Read, Write};
use std::sync::Mutex;

use anyhow::Context;

use crate::targets::{Features, Target};

/// The answer for an input that ran to its end.
pub const STATUS_OK: u8 = 0;
/// The answer for an input whose run panicked (payload: where and why).
pub const STATUS_PANIC: u8 = 1;

/// The stack the target runs on: what a tokio worker thread has (the server's room tasks run
/// there), so that a recursion the server cannot survive is found here too.
pub const TARGET_STACK_BYTES: usize = 2 * 1024 * 1024;

/// The prefix of the line the panic hook writes to stderr. The driver reads it to name an
/// abort that follows a panic (a panic while unwinding, or in a destructor).
pub const PANIC_LINE_PREFIX: &str = "mesh-fuzz: panicked at ";

/// The line the child writes after a panic it caught: a later abort is not that panic's.
pub const PANIC_CAUGHT_LINE: &str = "mesh-fuzz: the panic above was caught";

/// The line the memory watchdog writes before it aborts the child.
pub const MEMORY_LINE_PREFIX: &str = "mesh-fuzz: resident memory over the limit: ";

/// How often the watchdog reads the child's resident memory: often enough to catch an input
/// that swells the child while it runs (the driver also checks each batch's peak afterwards).
const WATCHDOG_PERIOD: std::time::Duration = std::time::Duration::from_millis(5);

/// The page size `statm` counts in (4 KiB on the x86-64 and arm64 Linux machines mesh runs on).
const PAGE_BYTES: u64 = 4096;

/// The last panic of the target thread, taken by the loop after `catch_unwind`.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs inputs from stdin through `target` until stdin closes, or only `single` when given
/// (for a debugger). `mem_limit_mib` caps the child's address space, so that a runaway
/// allocation fails inside the child; past `rss_limit_mib` resident, a watchdog aborts it.
pub fn main(
    target: &'static Target,
    mem_limit_mib: u64,
    rss_limit_mib: u64,
    backtrace: bool,
    single: Option<Vec<u8>>,
) -> anyhow::Result<()> {
    let limit = mem_limit_mib.saturating_mul(1024 * 1024);
    rlimit::setrlimit(rlimit::Resource::AS, limit, limit).context("capping the child's address space")?;
    // The watchdog ends the child while the input that swells it is still running, so the
    // driver knows exactly which input it was.
    std::thread::Builder::new()
        .name("memory-watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(WATCHDOG_PERIOD);
            let rss_mib = std::fs::read_to_string("/proc/self/statm")
                .ok()
                .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
                .map(|pages| pages * PAGE_BYTES / (1024 * 1024));
            if let Some(rss) = rss_mib.filter(|&r| r > rss_limit_mib) {
                eprintln!("{MEMORY_LINE_PREFIX}{rss} MiB, the limit is {rss_limit_mib} MiB");
                std::process::abort();
            }
        })
        .context("starting the memory watchdog")?;
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown".into());
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let text = format!("{location}: {payload}");
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{PANIC_LINE_PREFIX}{text}");
        if backtrace {
            let _ = writeln!(err, "{}", std::backtrace::Backtrace::force_capture());
        }
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(text);
        }
    }));
    let worker = std::thread::Builder::new()
        .name("fuzz-target".into())
        .stack_size(TARGET_STACK_BYTES)
        .spawn(move || match single {
            Some(input) => {
                (target.run)(&input, &mut Features::default());
                Ok(())
            }
            None => serve(target),
        })
        .context("starting the target thread")?;
    match worker.join() {
        Ok(result) => result,
        Err(_) => anyhow::bail!("the target thread ended by a panic outside a target run"),
    }
}

fn serve(target: &'static Target) -> anyhow::Result<()> {
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut output = BufWriter::new(std::io::stdout().lock());
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e).context("reading the next input"),
        }
        buf.resize(u32::from_le_bytes(len) as usize, 0);
        input.read_exact(&mut buf).context("reading an input")?;
        let mut features = Features::default();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (target.run)(&buf, &mut features)));
        let (status, payload) = match run {
            Ok(()) => (STATUS_OK, features.to_bytes()),
            Err(_) => {
                eprintln!("{PANIC_CAUGHT_LINE}");
                let text = LAST_PANIC.lock().ok().and_then(|mut p| p.take()).unwrap_or_default();
                (STATUS_PANIC, text.into_bytes())
            }
        };
        output.write_all(&[status])?;
        output.write_all(&(payload.len() as u32).to_le_bytes())?;
        output.write_all(&payload)?;
        output.flush()?;
    }
}
