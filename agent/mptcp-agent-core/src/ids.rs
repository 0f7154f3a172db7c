// SPDX-License-Identifier: MIT OR Apache-2.0
//! Endpoint ids that stay the same for an address across flaps.
//!
//! The kernel names endpoints by a `u8` id (1..=255) and the peer sees it in ADD_ADDR /
//! MP_JOIN. Keeping an address's id across remove and re-add keeps logs and the peer's
//! view consistent. An address keeps its id while the id is free; a new address gets the
//! lowest id nobody remembers, and only when all 255 are remembered does it take the id of
//! the address seen longest ago.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdAllocator {
    /// address → (id, last time it was bound, as a sequence number)
    by_addr: BTreeMap<IpAddr, (u8, u64)>,
    seq: u64,
}

impl IdAllocator {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id this address had last, if any.
    pub fn remembered(&self, addr: &IpAddr) -> Option<u8> {
        self.by_addr.get(addr).map(|(id, _)| *id)
    }

    /// The id to use for `addr`, avoiding `in_use` (ids of current kernel endpoints and
    /// of adds already planned). `None` when all 255 ids are in use.
    pub fn pick(&self, addr: &IpAddr, in_use: &BTreeSet<u8>) -> Option<u8> {
        if let Some(id) = self.remembered(addr) {
            if !in_use.contains(&id) {
                return Some(id);
            }
        }
        let reserved: BTreeSet<u8> = self
            .by_addr
            .iter()
            .filter(|(a, _)| *a != addr)
            .map(|(_, (id, _))| *id)
            .collect();
        if let Some(id) = (1..=255u8).find(|id| !in_use.contains(id) && !reserved.contains(id)) {
            return Some(id);
        }
        // Everything is remembered: take the free id whose address was seen longest ago.
        self.by_addr
            .values()
            .filter(|(id, _)| !in_use.contains(id))
            .min_by_key(|(_, seen)| *seen)
            .map(|(id, _)| *id)
    }

    /// Record that `addr` has `id` (an endpoint was added or found with it). Any other
    /// address remembered with this id forgets it.
    pub fn bind(&mut self, addr: IpAddr, id: u8) {
        self.seq += 1;
        self.by_addr.retain(|a, (i, _)| *a == addr || *i != id);
        self.by_addr.insert(addr, (id, self.seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn stable_across_flaps() {
        let mut a = IdAllocator::new();
        let none = BTreeSet::new();
        let id1 = a.pick(&ip("10.1.0.2"), &none).unwrap();
        a.bind(ip("10.1.0.2"), id1);
        let id2 = a.pick(&ip("10.2.0.2"), &none).unwrap();
        a.bind(ip("10.2.0.2"), id2);
        assert_eq!((id1, id2), (1, 2));
        // 10.2.0.2 goes away; a new address must not take its id.
        let id3 = a.pick(&ip("10.3.0.2"), &[1].into()).unwrap();
        assert_eq!(id3, 3);
        a.bind(ip("10.3.0.2"), id3);
        // 10.2.0.2 comes back: same id.
        assert_eq!(a.pick(&ip("10.2.0.2"), &[1, 3].into()), Some(2));
    }

    #[test]
    fn remembered_id_taken_by_someone_else() {
        let mut a = IdAllocator::new();
        a.bind(ip("10.1.0.2"), 1);
        // A foreign endpoint now holds id 1.
        assert_eq!(a.pick(&ip("10.1.0.2"), &[1].into()), Some(2));
    }

    #[test]
    fn bind_moves_an_id() {
        let mut a = IdAllocator::new();
        a.bind(ip("10.1.0.2"), 5);
        a.bind(ip("10.9.0.9"), 5);
        assert_eq!(a.remembered(&ip("10.1.0.2")), None);
        assert_eq!(a.remembered(&ip("10.9.0.9")), Some(5));
    }

    #[test]
    fn exhaustion_reuses_oldest() {
        let mut a = IdAllocator::new();
        for i in 1..=255u8 {
            a.bind(IpAddr::from([10, 0, 0, i]), i);
        }
        // All remembered, none in use: the oldest (id 1) is reused.
        assert_eq!(a.pick(&ip("192.0.2.1"), &BTreeSet::new()), Some(1));
        let all: BTreeSet<u8> = (1..=255).collect();
        assert_eq!(a.pick(&ip("192.0.2.1"), &all), None);
    }
}
