// SPDX-License-Identifier: MIT OR Apache-2.0
//! The deterministic byte pattern both sides derive from the seed, and its running checksum.

/// The deterministic byte stream: byte `i` is byte `i % 8` (little endian) of
/// `splitmix64(seed ^ (i / 8) * golden)`. Position-addressed, so read boundaries don't matter.
#[derive(Debug, Clone)]
pub struct Pattern {
    seed: u64,
    pos: u64,
}

impl Pattern {
    pub fn new(seed: u64) -> Self {
        Pattern { seed, pos: 0 }
    }

    pub(super) fn word(&self, index: u64) -> [u8; 8] {
        let mut z = self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// Fill `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        // Unaligned head, whole words, tail: word-at-a-time keeps debug builds fast enough.
        let mut i = 0;
        let head = ((8 - self.pos % 8) % 8) as usize;
        let head = head.min(buf.len());
        if head > 0 {
            let w = self.word(self.pos / 8);
            let off = (self.pos % 8) as usize;
            buf[..head].copy_from_slice(&w[off..off + head]);
            i = head;
            self.pos += head as u64;
        }
        let mut index = self.pos / 8;
        let rest = buf.len() - i;
        let mut words = buf[i..].chunks_exact_mut(8);
        for chunk in &mut words {
            chunk.copy_from_slice(&self.word(index));
            index += 1;
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let n = tail.len();
            tail.copy_from_slice(&self.word(index)[..n]);
        }
        self.pos += rest as u64;
    }

    /// Check that `data` is the next part of the stream; on a mismatch, the stream offset of
    /// the first wrong byte.
    pub fn verify(&mut self, data: &[u8], scratch: &mut Vec<u8>) -> Result<(), u64> {
        let start = self.pos;
        scratch.resize(data.len(), 0);
        self.fill(scratch);
        if data == &scratch[..] {
            return Ok(());
        }
        let i = data
            .iter()
            .zip(scratch.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        Err(start + i as u64)
    }
}

/// FNV-1a-style 64-bit checksum over little-endian 8-byte words of the stream (the last,
/// partial word zero-padded). Buffered, so it does not depend on how the stream was cut up;
/// word-wise, so it stays fast in debug builds.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64 {
    h: u64,
    pending: [u8; 8],
    npending: usize,
}

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64 {
            h: 0xcbf2_9ce4_8422_2325,
            pending: [0; 8],
            npending: 0,
        }
    }
}

pub(super) const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Fnv64 {
    pub fn update(&mut self, mut data: &[u8]) {
        if self.npending > 0 {
            let k = (8 - self.npending).min(data.len());
            self.pending[self.npending..self.npending + k].copy_from_slice(&data[..k]);
            self.npending += k;
            data = &data[k..];
            if self.npending < 8 {
                return;
            }
            self.h = (self.h ^ u64::from_le_bytes(self.pending)).wrapping_mul(FNV_PRIME);
            self.npending = 0;
        }
        let mut words = data.chunks_exact(8);
        let mut h = self.h;
        for w in &mut words {
            h = (h ^ u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
                .wrapping_mul(FNV_PRIME);
        }
        self.h = h;
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.npending = rest.len();
    }

    pub fn value(&self) -> u64 {
        if self.npending == 0 {
            return self.h;
        }
        let mut last = [0u8; 8];
        last[..self.npending].copy_from_slice(&self.pending[..self.npending]);
        (self.h ^ u64::from_le_bytes(last)).wrapping_mul(FNV_PRIME) ^ self.npending as u64
    }
}

// ---------------------------------------------------------------------------------------------
// Sockets without socket options
