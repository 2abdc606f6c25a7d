//! `selftest`: the driver's own check that crash isolation works. Inputs that start with a
//! command word fail the way real targets fail; any other input runs cleanly. Not part of
//! `run all`; the test suite fuzzes it and expects every kind of failure to be found.

use super::{Features, Shape, Target};

/// The target.
pub const TARGET: Target = Target {
    name: "selftest",
    about: "the driver's self-check: panic, abort, stack overflow, hang, memory and oom on command",
    run,
    shape: Shape::Raw,
    dictionary: &[b"panic", b"abort", b"overflow", b"hang", b"grow", b"oom"],
    max_len: 64,
};

/// How much `grow` touches: more than the driver's default resident-memory limit.
const GROW_BYTES: usize = 768 * 1024 * 1024;

fn run(input: &[u8], fx: &mut Features) {
    fx.count("len", input.len());
    if input.starts_with(b"panic") {
        panic!("selftest panic");
    } else if input.starts_with(b"abort") {
        std::process::abort();
    } else if input.starts_with(b"overflow") {
        fx.count("depth", recurse(u64::MAX));
    } else if input.starts_with(b"hang") {
        loop {
            std::thread::park();
        }
    } else if input.starts_with(b"grow") {
        // Every page is written (a memset), so all of it is resident.
        let v = std::hint::black_box(vec![1u8; GROW_BYTES]);
        fx.count("grew", usize::from(v[GROW_BYTES / 2]));
    } else if input.starts_with(b"oom") {
        let v: Vec<u8> = Vec::with_capacity(usize::MAX / 4);
        fx.count("oom", v.capacity());
    }
}

/// Recursion the optimiser cannot turn into a loop: each frame keeps an array alive across
/// the call.
fn recurse(n: u64) -> usize {
    let frame = [n; 64];
    if n == 0 {
        return 0;
    }
    let below = recurse(std::hint::black_box(n - 1));
    below + std::hint::black_box(frame)[(n % 64) as usize] as usize % 2
}
