//! The mutator: small random edits of a real input, stacked a few at a time.
//!
//! Byte-level edits are those of AFL and libFuzzer (bit flips, interesting integers, range
//! insert/delete/duplicate, splicing with another input, dictionary tokens) plus two that fit
//! mesh's formats: LEB128 varint tweaks (lib0, which y-sync and yrs updates are written in)
//! and ASCII number tweaks (JSON and `Content-Length`). Sequence inputs are also edited as
//! records (drop, duplicate, swap, borrow a record of another input), so that a corrupted
//! frame still follows the real frames it builds on.

use crate::framing::{join, records};
use crate::rng::Rng;
use crate::targets::{Shape, Target};

/// Most edits stacked onto one input.
const MAX_STACK: usize = 8;

/// Integers that break parsers: boundaries of every width, as bytes.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    (1 << 53) - 1,
    1 << 53,
    i64::MAX as u64,
    u64::MAX,
    u64::MAX - 1,
];

/// Numbers as text, for JSON and headers.
const INTERESTING_TEXT: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "2147483648",
    "4294967296",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "1e309",
    "-1e309",
    "0.0000001",
    "1.5",
    "99999999999999999999999999",
];

/// Returns a mutant of `base`. `others` is the corpus, for splicing.
pub fn mutate(target: &Target, base: &[u8], others: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut out = if target.shape == Shape::Sequence && !rng.one_in(8) {
        mutate_records(target, base, others, rng)
    } else {
        let mut data = base.to_vec();
        stack(target, &mut data, others, rng);
        data
    };
    out.truncate(target.max_len);
    out
}

fn stack(target: &Target, data: &mut Vec<u8>, others: &[Vec<u8>], rng: &mut Rng) {
    let n = 1 << rng.below(MAX_STACK.trailing_zeros() as usize + 1);
    for _ in 0..n {
        edit(target, data, others, rng);
    }
}

fn mutate_records(target: &Target, base: &[u8], others: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut recs: Vec<Vec<u8>> = records(base).into_iter().map(<[u8]>::to_vec).collect();
    let edits = 1 + rng.below(3);
    for _ in 0..edits {
        if recs.is_empty() {
            recs.push(vec![rng.below(4) as u8]);
        }
        let i = rng.below(recs.len());
        match rng.below(10) {
            // Most edits change the bytes of one record and keep the rest as it was.
            0..=5 => {
                let mut r = std::mem::take(&mut recs[i]);
                stack(target, &mut r, others, rng);
                recs[i] = r;
            }
            6 => {
                recs.remove(i);
            }
            7 => {
                let copy = recs[i].clone();
                let at = rng.below(recs.len() + 1);
                recs.insert(at, copy);
            }
            8 => {
                let j = rng.below(recs.len());
                recs.swap(i, j);
            }
            _ => {
                let other = records(rng.pick(others).as_slice())
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>();
                if !other.is_empty() {
                    let r = rng.pick(&other).clone();
                    let at = rng.below(recs.len() + 1);
                    recs.insert(at, r);
                }
            }
        }
    }
    join(&recs)
}

/// One edit, in place.
fn edit(target: &Target, data: &mut Vec<u8>, others: &[Vec<u8>], rng: &mut Rng) {
    if data.is_empty() {
        let len = 1 + rng.below(8);
        data.extend((0..len).map(|_| rng.next_u64() as u8));
        return;
    }
    let len = data.len();
    match rng.below(14) {
        0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(len);
            data[i] = rng.next_u64() as u8;
        }
        2 => {
            let i = rng.below(len);
            data[i] = *rng.pick(INTERESTING) as u8;
        }
        3 => {
            let i = rng.below(len);
            let delta = rng.below(35) as u8;
            data[i] = if rng.one_in(2) {
                data[i].wrapping_add(delta)
            } else {
                data[i].wrapping_sub(delta)
            };
        }
        4 => {
            // An interesting integer of 2, 4 or 8 bytes, either endianness.
            let width = *rng.pick(&[2usize, 4, 8]);
            let v = *rng.pick(INTERESTING);
            let bytes = if rng.one_in(2) {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            let bytes = if rng.one_in(2) {
                &bytes[..width]
            } else {
                &bytes[8 - width..]
            };
            let i = rng.below(len);
            let end = (i + width).min(len);
            data[i..end].copy_from_slice(&bytes[..end - i]);
        }
        5 => varint(data, rng),
        6 => {
            let (start, n) = range(len, rng);
            data.drain(start..start + n);
        }
        7 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let fill: Vec<u8> = if rng.one_in(2) {
                (0..n).map(|_| rng.next_u64() as u8).collect()
            } else {
                vec![rng.next_u64() as u8; n]
            };
            data.splice(at..at, fill);
        }
        8 => {
            let (start, n) = range(len, rng);
            let copy = data[start..start + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, copy);
        }
        9 => {
            let (start, n) = range(len, rng);
            let copy = data[start..start + n].to_vec();
            let at = rng.below(len);
            let end = (at + n).min(len);
            data[at..end].copy_from_slice(&copy[..end - at]);
        }
        10 => {
            // Splice: a piece of another input, inserted or overwriting.
            let other = rng.pick(others);
            if !other.is_empty() {
                let (start, n) = range(other.len(), rng);
                let at = rng.below(len + 1);
                if rng.one_in(2) {
                    data.splice(at..at, other[start..start + n].iter().copied());
                } else {
                    let end = (at + n).min(len);
                    data.splice(at..end, other[start..start + n].iter().copied());
                }
            }
        }
        11 if !target.dictionary.is_empty() => {
            let token = *rng.pick(target.dictionary);
            let at = rng.below(len + 1);
            if rng.one_in(2) {
                data.splice(at..at, token.iter().copied());
            } else {
                let end = (at + token.len()).min(len);
                data.splice(at..end, token.iter().copied());
            }
        }
        12 => ascii_number(data, rng),
        _ => {
            let n = rng.below(len) + 1;
            if rng.one_in(2) {
                data.truncate(len - n.min(len - 1));
            } else {
                data.drain(..n.min(len - 1));
            }
        }
    }
}

/// A random range of at most a quarter of the input (at least one byte).
fn range(len: usize, rng: &mut Rng) -> (usize, usize) {
    let max = (len / 4).max(1);
    let n = 1 + rng.below(max);
    let start = rng.below(len - n.min(len) + 1);
    (start, n.min(len - start))
}

/// Replaces the LEB128 varint at a random position with another value (a boundary, or the
/// old one plus or minus a little): lengths and counts in lib0 are varints.
fn varint(data: &mut Vec<u8>, rng: &mut Rng) {
    let start = rng.below(data.len());
    let mut end = start;
    let mut old: u64 = 0;
    let mut shift = 0;
    while end < data.len() && shift < 64 {
        old |= u64::from(data[end] & 0x7f) << shift;
        shift += 7;
        end += 1;
        if data[end - 1] & 0x80 == 0 {
            break;
        }
    }
    let new = match rng.below(3) {
        0 => *rng.pick(INTERESTING),
        1 => old.wrapping_add(1 + rng.below(4) as u64),
        _ => old.wrapping_sub(1 + rng.below(4) as u64),
    };
    let mut encoded = Vec::new();
    let mut v = new;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            encoded.push(byte);
            break;
        }
        encoded.push(byte | 0x80);
    }
    data.splice(start..end, encoded);
}

/// Replaces a run of ASCII digits with an interesting number.
fn ascii_number(data: &mut Vec<u8>, rng: &mut Rng) {
    let from = rng.below(data.len());
    let Some(start) = (from..data.len()).chain(0..from).find(|&i| data[i].is_ascii_digit()) else {
        let at = rng.below(data.len() + 1);
        data.splice(at..at, rng.pick(INTERESTING_TEXT).bytes());
        return;
    };
    let end = (start..data.len())
        .find(|&i| !data[i].is_ascii_digit())
        .unwrap_or(data.len());
    data.splice(start..end, rng.pick(INTERESTING_TEXT).bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::by_name;

    #[test]
    fn mutants_differ_stay_in_bounds_and_replay_from_the_seed() {
        let target = by_name("room").unwrap();
        let base = join(&[b"\x00abc".to_vec(), b"\x01defgh".to_vec()]);
        let others = vec![base.clone(), b"xyz".to_vec()];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..2000)
                .map(|_| mutate(target, &base, &others, &mut rng))
                .collect::<Vec<_>>()
        };
        let mutants = run(1);
        assert_eq!(mutants, run(1), "the same seed gives the same mutants");
        assert!(mutants.iter().all(|m| m.len() <= target.max_len));
        let changed = mutants.iter().filter(|m| **m != base).count();
        assert!(changed > 1800, "only {changed} of 2000 mutants differ from the base");
    }

    #[test]
    fn every_edit_keeps_any_input_valid() {
        let target = by_name("dap").unwrap();
        let mut rng = Rng::new(3);
        let others = vec![Vec::new(), vec![1], b"Content-Length: 2\r\n\r\n{}".to_vec()];
        for len in 0..40 {
            let mut data: Vec<u8> = (0..len as u8).collect();
            for _ in 0..500 {
                edit(target, &mut data, &others, &mut rng);
                data.truncate(256);
            }
        }
    }
}
