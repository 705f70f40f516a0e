//! Load-balance and reordering metrics.
//!
//! * Jain's fairness index (Jain, Chiu, Hawe 1984): (sum x)^2 / (n sum x^2),
//!   1.0 when all paths carry the same load, 1/n when one carries all.
//! * max/mean: the most loaded path over the average, n when one path
//!   carries everything, 1.0 when balanced.
//! * RFC 4737 Type-P-Reordered and Type-P-Reordered-Ratio-Stream: a packet
//!   is reordered if its sequence number is below NextExp, the next
//!   expected number (one more than the highest seen so far); the ratio is
//!   reordered packets over received packets, duplicates not counted.
//! * RFC 5236 Reorder Buffer-occupancy Density (RBD): the receiver keeps
//!   early packets in a hypothetical buffer until the missing ones arrive;
//!   RBD[k] is the fraction of arrivals after which the buffer holds k
//!   packets, and its largest k with RBD[k] > 0 is the receive reorder
//!   buffer (in packets) needed to restore order. A packet not seen within
//!   the occupancy threshold BT is treated as lost (and, if it turns up
//!   later, as a duplicate), which keeps losses from filling the buffer.

use std::collections::{BTreeSet, HashSet, VecDeque};

/// Jain's fairness index of `loads`. Empty or all-zero loads count as fair (1.0).
pub fn jain_index(loads: &[f64]) -> f64 {
    let sum: f64 = loads.iter().sum();
    let sum_sq: f64 = loads.iter().map(|x| x * x).sum();
    if loads.is_empty() || sum_sq == 0.0 {
        return 1.0;
    }
    sum * sum / (loads.len() as f64 * sum_sq)
}

/// Largest load over the mean load. Empty or all-zero loads give 1.0.
pub fn max_over_mean(loads: &[f64]) -> f64 {
    let sum: f64 = loads.iter().sum();
    if loads.is_empty() || sum == 0.0 {
        return 1.0;
    }
    let max = loads.iter().cloned().fold(f64::MIN, f64::max);
    max / (sum / loads.len() as f64)
}

/// RFC 4737 counts for one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReorderCount {
    /// Distinct packets received (L in RFC 4737 section 4.1).
    pub received: u64,
    /// Packets with Type-P-Reordered = TRUE.
    pub reordered: u64,
}

impl ReorderCount {
    /// Type-P-Reordered-Ratio-Stream (a fraction, not a percentage).
    pub fn ratio(&self) -> f64 {
        if self.received == 0 {
            0.0
        } else {
            self.reordered as f64 / self.received as f64
        }
    }

    pub fn add(&mut self, o: ReorderCount) {
        self.received += o.received;
        self.reordered += o.reordered;
    }
}

/// RFC 4737 section 3.3 per packet, in arrival order: `true` where the
/// packet is reordered (s < NextExp); `None` for duplicates (not part of
/// the sample). NextExp starts at the lowest possible number, so the first
/// arrival is in order whatever its number.
pub fn rfc4737_reordered(arrivals: &[u64]) -> Vec<Option<bool>> {
    let mut next_exp = 0u64;
    let mut seen = HashSet::with_capacity(arrivals.len());
    arrivals
        .iter()
        .map(|&s| {
            if !seen.insert(s) {
                return None;
            }
            if s >= next_exp {
                next_exp = s + 1;
                Some(false)
            } else {
                Some(true)
            }
        })
        .collect()
}

/// RFC 4737 Type-P-Reordered-Ratio-Stream counts for one stream.
pub fn rfc4737_ratio(arrivals: &[u64]) -> ReorderCount {
    let flags = rfc4737_reordered(arrivals);
    ReorderCount {
        received: flags.iter().filter(|f| f.is_some()).count() as u64,
        reordered: flags.iter().filter(|f| **f == Some(true)).count() as u64,
    }
}

/// RFC 5236 buffer-occupancy frequencies: `freq[k]` arrivals left k packets
/// in the reorder buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BufferOccupancy {
    pub freq: Vec<u64>,
}

impl BufferOccupancy {
    /// RBD: the frequencies normalized to sum to 1.
    pub fn density(&self) -> Vec<f64> {
        let total: u64 = self.freq.iter().sum();
        self.freq.iter().map(|&f| if total == 0 { 0.0 } else { f as f64 / total as f64 }).collect()
    }

    /// The receive reorder buffer needed to restore order, in packets.
    pub fn max_occupancy(&self) -> usize {
        self.freq.iter().rposition(|&f| f > 0).unwrap_or(0)
    }

    /// Mean occupancy (packets held, averaged over arrivals).
    pub fn mean_occupancy(&self) -> f64 {
        let total: u64 = self.freq.iter().sum();
        if total == 0 {
            return 0.0;
        }
        self.freq.iter().enumerate().map(|(k, &f)| k as f64 * f as f64).sum::<f64>() / total as f64
    }

    /// Pool the frequencies of another stream (e.g. another flow).
    pub fn merge(&mut self, o: &BufferOccupancy) {
        if self.freq.len() < o.freq.len() {
            self.freq.resize(o.freq.len(), 0);
        }
        for (a, b) in self.freq.iter_mut().zip(&o.freq) {
            *a += b;
        }
    }

    fn count(&mut self, k: usize) {
        if self.freq.len() <= k {
            self.freq.resize(k + 1, 0);
        }
        self.freq[k] += 1;
    }
}

/// RFC 5236 RBD of one stream, with occupancy threshold `bt` (packets).
///
/// The RFC's algorithm: a look-ahead window holds the next BT+1 distinct
/// arrivals; the next expected number E is the smallest number in the
/// window (so a packet absent from it is lost, not waited for). Each
/// arrival S leaves the window: if S == E, the buffer releases every packet
/// that is now in sequence (while the smallest number in window and buffer
/// is in the buffer); otherwise S is early and enters the buffer. The
/// occupancy after each arrival is counted. Numbers <= E or already in
/// window or buffer are duplicates and skipped.
pub fn rfc5236_rbd(arrivals: &[u64], bt: usize) -> BufferOccupancy {
    let mut occ = BufferOccupancy::default();
    let mut incoming = arrivals.iter().copied();
    let mut window: VecDeque<u64> = VecDeque::with_capacity(bt + 1);
    let mut window_set: BTreeSet<u64> = BTreeSet::new();
    let mut buffer: BTreeSet<u64> = BTreeSet::new();
    // Pull the next distinct arrival into the window; `e` is the next
    // expected number once the window is primed (anything <= it is done or
    // lost, so a late copy is a duplicate).
    let refill = |incoming: &mut dyn Iterator<Item = u64>,
                  window: &mut VecDeque<u64>,
                  window_set: &mut BTreeSet<u64>,
                  buffer: &BTreeSet<u64>,
                  e: Option<u64>| {
        for s in incoming {
            let dup = e.is_some_and(|e| s <= e) || window_set.contains(&s) || buffer.contains(&s);
            if !dup {
                window.push_back(s);
                window_set.insert(s);
                return;
            }
        }
    };
    for _ in 0..=bt {
        refill(&mut incoming, &mut window, &mut window_set, &buffer, None);
    }
    while let Some(s) = window.pop_front() {
        let expected = *window_set.first().expect("s is in the window");
        window_set.remove(&s);
        let e = if s == expected {
            // Release what is now in sequence: the smallest outstanding
            // number, if it is buffered, can go.
            loop {
                let m = match (window_set.first(), buffer.first()) {
                    (_, None) => break,
                    (None, Some(&b)) => b,
                    (Some(&w), Some(&b)) => w.min(b),
                };
                if !buffer.remove(&m) {
                    break;
                }
            }
            window_set.first().copied().unwrap_or(s)
        } else {
            // Early: wait in the buffer.
            buffer.insert(s);
            expected
        };
        occ.count(buffer.len());
        refill(&mut incoming, &mut window, &mut window_set, &buffer, Some(e));
    }
    occ
}

/// Both reordering figures over many streams (flows): RFC 4737 counts and
/// RFC 5236 occupancies pooled, and the largest per-stream buffer.
#[derive(Clone, Debug, Default)]
pub struct ReorderSummary {
    pub count: ReorderCount,
    pub occupancy: BufferOccupancy,
    /// The largest reorder buffer any one stream needed, in packets.
    pub max_buffer: usize,
}

impl ReorderSummary {
    pub fn add_stream(&mut self, arrivals: &[u64], bt: usize) {
        self.count.add(rfc4737_ratio(arrivals));
        let o = rfc5236_rbd(arrivals, bt);
        self.max_buffer = self.max_buffer.max(o.max_occupancy());
        self.occupancy.merge(&o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_and_max_mean_of_hand_computed_loads() {
        assert_eq!(jain_index(&[5.0; 8]), 1.0);
        assert_eq!(jain_index(&[8.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), 1.0 / 8.0);
        // (3+1)^2 / (2 * (9+1)) = 16/20
        assert!((jain_index(&[3.0, 1.0]) - 0.8).abs() < 1e-12);
        assert_eq!(max_over_mean(&[3.0, 1.0]), 1.5);
        assert_eq!(max_over_mean(&[8.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), 8.0);
        assert_eq!(max_over_mean(&[2.0; 4]), 1.0);
    }

    #[test]
    fn rfc4737_next_expected_rule() {
        // In order: nothing reordered.
        assert_eq!(rfc4737_ratio(&[1, 2, 3, 4]), ReorderCount { received: 4, reordered: 0 });
        // 1,2,3,5,4,6: after 5, NextExp = 6, so 4 is reordered; 6 is not.
        let f = rfc4737_reordered(&[1, 2, 3, 5, 4, 6]);
        assert_eq!(f, vec![Some(false), Some(false), Some(false), Some(false), Some(true), Some(false)]);
        // One late packet among ten: only it is reordered (ratio 1/10),
        // not the packets that overtook it.
        let c = rfc4737_ratio(&[1, 2, 3, 5, 6, 7, 8, 9, 10, 4]);
        assert_eq!(c, ReorderCount { received: 10, reordered: 1 });
        assert!((c.ratio() - 0.1).abs() < 1e-12);
        // One early packet: the ones it overtook are all reordered.
        assert_eq!(rfc4737_ratio(&[1, 5, 2, 3, 4]).reordered, 3);
        // Loss alone is not reordering.
        assert_eq!(rfc4737_ratio(&[1, 2, 4, 5]).reordered, 0);
        // Duplicates are not in the sample (L counts distinct packets).
        assert_eq!(rfc4737_ratio(&[1, 2, 2, 3]), ReorderCount { received: 3, reordered: 0 });
    }

    #[test]
    fn rfc5236_buffer_occupancy() {
        // In order: the buffer never holds anything.
        let o = rfc5236_rbd(&[1, 2, 3, 4, 5], 8);
        assert_eq!(o.freq, vec![5]);
        assert_eq!(o.max_occupancy(), 0);
        // 1,3,4,2: 3 and 4 wait for 2 (occupancy 1, then 2), then all go.
        // Occupancies after each arrival: 0,1,2,0.
        let o = rfc5236_rbd(&[1, 3, 4, 2], 8);
        assert_eq!(o.freq, vec![2, 1, 1]);
        assert_eq!(o.density(), vec![0.5, 0.25, 0.25]);
        assert_eq!(o.max_occupancy(), 2);
        // 1,2,3,5,4,6: one packet waits once.
        let o = rfc5236_rbd(&[1, 2, 3, 5, 4, 6], 8);
        assert_eq!(o.freq, vec![5, 1]);
        // A lost packet (3) is not waited for.
        assert_eq!(rfc5236_rbd(&[1, 2, 4, 5, 6], 8).freq, vec![5]);
        // Packet 1 displaced by 4: within threshold 4 the buffer fills to
        // 4 and empties when 1 arrives ...
        let o = rfc5236_rbd(&[2, 3, 4, 5, 1], 4);
        assert_eq!(o.freq, vec![1, 1, 1, 1, 1]);
        assert_eq!(o.max_occupancy(), 4);
        // ... with threshold 2 it is declared lost, and its late arrival
        // is a duplicate (not counted).
        assert_eq!(rfc5236_rbd(&[2, 3, 4, 5, 1], 2).freq, vec![4]);
        // Duplicates are skipped.
        assert_eq!(rfc5236_rbd(&[1, 1, 2, 2, 3], 8).freq, vec![3]);
    }

    #[test]
    fn summary_pools_streams() {
        let mut s = ReorderSummary::default();
        s.add_stream(&[0, 2, 1, 3], 16);
        s.add_stream(&[0, 1, 2, 3, 4, 5], 16);
        assert_eq!(s.count, ReorderCount { received: 10, reordered: 1 });
        assert_eq!(s.max_buffer, 1);
        assert_eq!(s.occupancy.freq, vec![9, 1]);
    }
}
