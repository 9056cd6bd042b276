//! Mutations: the byte-level moves of AFL-style fuzzers, biased toward what
//! breaks framing parsers (CR/LF/space bytes, big-endian lengths around the
//! bounds, signatures and keywords spliced in at the start).

use super::Rng;

/// Bytes that mean something to the parsers under test.
const INTERESTING_BYTES: [u8; 14] = [0x00, 0xFF, 0x0D, 0x0A, 0x20, 0x7F, 0x80, 0x01, 0x16, 0x03, b'0', b'9', b':', b'.'];

/// Length values around the bounds: v2 address blocks (12/36/216), UNIQUE_ID
/// (128), the v2 payload bound (4096), TLS record and extension sizes.
const INTERESTING_U16: [u16; 22] =
    [0, 1, 2, 3, 4, 5, 12, 36, 107, 127, 128, 129, 216, 255, 256, 4095, 4096, 4097, 0x4800, 0x4801, 0x7FFF, 0xFFFF];

/// A random range `start..end` inside `len` bytes (empty when `len` is 0).
fn range(len: usize, rng: &mut Rng) -> (usize, usize) {
    let start = rng.below(len + 1);
    let max = if rng.one_in(4) { 256 } else { 16 };
    let n = 1 + rng.below(max);
    (start, (start + n).min(len))
}

/// Applies one to four random mutations to `input`; the result is at most `max_len` bytes.
pub fn mutate(input: &[u8], corpus: &[Vec<u8>], dictionary: &[&[u8]], max_len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        mutate_once(&mut v, corpus, dictionary, rng);
    }
    v.truncate(max_len);
    v
}

fn mutate_once(v: &mut Vec<u8>, corpus: &[Vec<u8>], dictionary: &[&[u8]], rng: &mut Rng) {
    let len = v.len();
    match rng.below(12) {
        // Flip one bit.
        0 if len > 0 => {
            let i = rng.below(len);
            v[i] ^= 1 << rng.below(8);
        }
        // Set a byte to an interesting value.
        1 if len > 0 => {
            let i = rng.below(len);
            v[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
        }
        // Nudge a byte (lengths off by a little).
        2 if len > 0 => {
            let i = rng.below(len);
            v[i] = v[i].wrapping_add((rng.below(33) as u8).wrapping_sub(16));
        }
        // A big-endian u16 around a bound, or the bytes remaining after it ± 1 (a length that just fits or overruns).
        3 if len >= 2 => {
            let i = rng.below(len - 1);
            let value = if rng.one_in(2) {
                INTERESTING_U16[rng.below(INTERESTING_U16.len())]
            } else {
                ((len - i - 2) as u16).wrapping_add(rng.below(3) as u16).wrapping_sub(1)
            };
            v[i..i + 2].copy_from_slice(&value.to_be_bytes());
        }
        // Insert random bytes.
        4 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            v.splice(at..at, bytes);
        }
        // Delete a chunk.
        5 if len > 0 => {
            let (s, e) = range(len, rng);
            v.drain(s..e);
        }
        // Duplicate a chunk somewhere else.
        6 if len > 0 => {
            let (s, e) = range(len, rng);
            let chunk = v[s..e].to_vec();
            let at = rng.below(len + 1);
            v.splice(at..at, chunk);
        }
        // Truncate.
        7 if len > 0 => v.truncate(rng.below(len)),
        // Splice: this input's head with another entry's tail.
        8 => {
            let other = &corpus[rng.below(corpus.len())];
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            v.truncate(cut);
            v.extend_from_slice(&other[from..]);
        }
        // Overwrite with a dictionary token (often at the start: a signature or prefix).
        9 if !dictionary.is_empty() => {
            let token = dictionary[rng.below(dictionary.len())];
            let at = if rng.one_in(2) { 0 } else { rng.below(len + 1) };
            let end = (at + token.len()).min(len);
            v.splice(at..end, token.iter().copied());
        }
        // Insert a dictionary token.
        10 if !dictionary.is_empty() => {
            let token = dictionary[rng.below(dictionary.len())];
            let at = rng.below(len + 1);
            v.splice(at..at, token.iter().copied());
        }
        // Replace with a whole other corpus entry (keeps the pool mixing).
        _ => {
            v.clear();
            v.extend_from_slice(&corpus[rng.below(corpus.len())]);
        }
    }
}
