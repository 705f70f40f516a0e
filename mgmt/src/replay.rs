//! Bounded nonce cache for replay protection.
//!
//! A nonce only needs remembering while its request could still pass the
//! freshness check, i.e. until `timestamp + window`. Entries are evicted once
//! they expire. If the cache is full of unexpired nonces, new requests are
//! rejected (fail closed) rather than evicting a live nonce.

use std::collections::{HashMap, VecDeque};

pub struct NonceCache {
    capacity: usize,
    map: HashMap<Vec<u8>, u64>,
    order: VecDeque<(u64, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Fresh,
    Replayed,
    Full,
}

impl NonceCache {
    pub fn new(capacity: usize) -> Self {
        NonceCache {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn evict(&mut self, now_ms: u64) {
        // `order` is roughly sorted by expiry; evict from the front while expired.
        while let Some((exp, _)) = self.order.front() {
            if *exp > now_ms {
                break;
            }
            let (exp, n) = self.order.pop_front().unwrap();
            if self.map.get(&n) == Some(&exp) {
                self.map.remove(&n);
            }
        }
    }

    /// Records `nonce` as used until `expires_ms`. Returns whether it was new.
    pub fn check_and_insert(&mut self, nonce: &[u8], now_ms: u64, expires_ms: u64) -> NonceCheck {
        self.evict(now_ms);
        if self.map.contains_key(nonce) {
            return NonceCheck::Replayed;
        }
        if self.map.len() >= self.capacity {
            // Entries inserted out of expiry order may hide expired ones behind a live one.
            self.map.retain(|_, e| *e > now_ms);
            self.order.retain(|(e, _)| *e > now_ms);
            if self.map.len() >= self.capacity {
                return NonceCheck::Full;
            }
        }
        self.map.insert(nonce.to_vec(), expires_ms);
        self.order.push_back((expires_ms, nonce.to_vec()));
        NonceCheck::Fresh
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
