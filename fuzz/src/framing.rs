//! How a target reads one input.
//!
//! Some targets take a *sequence* (the room takes several frames, so that a corrupted update
//! can build on earlier ones); their input is records, each a little-endian `u32` length and
//! that many bytes. Decoding is lenient so that every byte string is a valid input: a length
//! that runs past the end takes the rest, and fewer than four trailing bytes are ignored.
//!
//! Stream targets (the DAP and LSP framings) take one byte that picks how the rest is cut
//! into chunks, so that every chunking is reached by mutation.

use crate::rng::Rng;

/// Splits a sequence input into its records.
pub fn records(input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        rest = &rest[take..];
    }
    out
}

/// Joins records into a sequence input.
pub fn join<R: AsRef<[u8]>>(records: &[R]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.iter().map(|r| r.as_ref().len() + 4).sum());
    for r in records {
        let r = r.as_ref();
        out.extend_from_slice(&(r.len() as u32).to_le_bytes());
        out.extend_from_slice(r);
    }
    out
}

/// Cuts a stream input into chunks. The first byte picks the chunking: whole, every byte on
/// its own, or pseudo-random sizes up to 8, 64 or 4096 bytes (seeded by that byte).
pub fn chunks(input: &[u8]) -> Vec<&[u8]> {
    let Some((&how, stream)) = input.split_first() else {
        return Vec::new();
    };
    let max = match how % 5 {
        0 => return vec![stream],
        1 => 1,
        2 => 8,
        3 => 64,
        _ => 4096,
    };
    let mut rng = Rng::new(u64::from(how));
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = (rng.below(max) + 1).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_any_bytes_decode() {
        let recs: Vec<&[u8]> = vec![b"ab", b"", b"cde"];
        assert_eq!(records(&join(&recs)), recs);
        // A length past the end takes the rest; a short tail is ignored.
        assert_eq!(records(&[9, 0, 0, 0, b'x', b'y']), vec![b"xy".as_slice()]);
        assert!(records(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn chunks_cover_the_stream_exactly() {
        let stream: Vec<u8> = (0..200u8).collect();
        for how in 0..=255u8 {
            let input = [&[how][..], &stream].concat();
            let got: Vec<u8> = chunks(&input).concat();
            assert_eq!(got, stream, "chunking {how}");
        }
        assert_eq!(chunks(&[1, 7, 8]).len(), 2, "chunking 1 is byte by byte");
    }
}
