//! Reference model of the tagged cache-way allocator (issue: tagged cache),
//! and the prime-and-probe isolation experiment with its mutual-information
//! estimate. The HDL cache will be checked against this model hit for hit;
//! the experiment runs here already, so the model's isolation claim is
//! tested before any hardware exists.
//!
//! Isolation follows DAWG (MICRO 2018), not Intel CAT: a lookup hits only a
//! line owned by the requesting tag in a way of its mask; a fill replaces only
//! within the requester's ways; replacement state is kept per (tag, set).

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Line {
    valid: bool,
    owner: u8,
    key: u32,
    value: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagCounters {
    pub hits: u64,
    pub misses: u64,
    pub fills: u64,
    pub evictions: u64,
}

/// What the isolation experiment needs of a tagged cache: the model and
/// the Verilated hardware both provide it.
pub trait TagCache {
    fn ways(&self) -> usize;
    /// The set `key` maps to.
    fn set_of(&self, key: u32) -> usize;
    /// Look `key` up for `tag`; on a miss, fill it. `true` on a hit.
    fn access(&mut self, tag: u8, key: u32) -> bool;
}

pub struct CacheModel {
    pub sets: usize,
    pub ways: usize,
    lines: Vec<Line>,
    masks: Vec<u64>,
    /// Round-robin victim pointer per (tag, set): replacement state that
    /// belongs to the partition, so one tag's fills do not move another's.
    next_victim: Vec<u8>,
    pub counters: Vec<TagCounters>,
    /// Partitioning off: every tag may fill any way and hit any line (the
    /// shared baseline the isolation test must be able to catch).
    pub shared: bool,
}

impl CacheModel {
    pub fn new(sets: usize, ways: usize, tags: usize) -> Self {
        assert!(ways <= 64 && tags <= 256 && sets.is_power_of_two());
        CacheModel {
            sets,
            ways,
            lines: vec![Line::default(); sets * ways],
            masks: vec![(1u64 << ways) - 1; tags],
            next_victim: vec![0; sets * tags],
            counters: vec![TagCounters::default(); tags],
            shared: false,
        }
    }

    /// The card's geometry (`regmap::cache`).
    pub fn card() -> Self {
        use offcard_hdl::regmap::cache as c;
        Self::new(c::SETS as usize, c::WAYS as usize, c::TAGS as usize)
    }

    /// The set of a key: its bits XOR-folded to log2(sets) bits, as the
    /// hardware does (`regmap::cache::set_of` for the card's geometry).
    pub fn set_of(&self, key: u32) -> usize {
        let bits = self.sets.trailing_zeros();
        let (mut s, mut k) = (0u32, key);
        while k != 0 && bits > 0 {
            s ^= k & (self.sets as u32 - 1);
            k >>= bits;
        }
        s as usize
    }

    fn mask(&self, tag: u8) -> u64 {
        if self.shared {
            (1u64 << self.ways) - 1
        } else {
            self.masks[tag as usize]
        }
    }

    /// Reassign a tag's ways in the safe order: ways it loses are flushed
    /// first (nothing of it stays visible to the next owner), ways it gains
    /// are flushed of any other tag's lines before the grant.
    pub fn set_mask(&mut self, tag: u8, mask: u64) {
        let old = self.masks[tag as usize];
        let changed = old ^ mask;
        for set in 0..self.sets {
            for w in 0..self.ways {
                if changed >> w & 1 == 1 {
                    let l = &mut self.lines[set * self.ways + w];
                    if l.valid && (l.owner == tag || mask >> w & 1 == 1) {
                        *l = Line::default();
                    }
                }
            }
        }
        self.masks[tag as usize] = mask;
    }

    fn find(&self, tag: u8, key: u32) -> Option<usize> {
        let base = self.set_of(key) * self.ways;
        let mask = self.mask(tag);
        (0..self.ways).map(|w| base + w).find(|&i| {
            let l = self.lines[i];
            mask >> (i - base) & 1 == 1 && l.valid && l.key == key && (self.shared || l.owner == tag)
        })
    }

    /// Look `key` up for `tag`: the owner and value of the line that hit.
    pub fn lookup_owner(&mut self, tag: u8, key: u32) -> Option<(u8, u32)> {
        match self.find(tag, key) {
            Some(i) => {
                self.counters[tag as usize].hits += 1;
                Some((self.lines[i].owner, self.lines[i].value))
            }
            None => {
                self.counters[tag as usize].misses += 1;
                None
            }
        }
    }

    pub fn lookup(&mut self, tag: u8, key: u32) -> Option<u32> {
        self.lookup_owner(tag, key).map(|(_, v)| v)
    }

    /// Install `key` -> `value` for `tag` (the host's answer to a miss). A
    /// line the tag already holds for the key gets the new value; otherwise
    /// the victim is an invalid way of the tag's mask, else the next way of
    /// the mask after the tag's round-robin pointer for the set.
    pub fn fill(&mut self, tag: u8, key: u32, value: u32) {
        if let Some(i) = self.find(tag, key) {
            self.lines[i].value = value;
            return;
        }
        let mask = self.mask(tag);
        if mask == 0 {
            return;
        }
        let set = self.set_of(key);
        let base = set * self.ways;
        let victim = (0..self.ways).find(|&w| mask >> w & 1 == 1 && !self.lines[base + w].valid).unwrap_or_else(|| {
            let ptr = &mut self.next_victim[tag as usize * self.sets + set];
            let mut w = *ptr as usize;
            loop {
                w = (w + 1) % self.ways;
                if mask >> w & 1 == 1 {
                    break;
                }
            }
            *ptr = w as u8;
            w
        });
        let l = &mut self.lines[base + victim];
        if l.valid {
            let owner = l.owner as usize;
            self.counters[owner].evictions += 1;
        }
        *l = Line { valid: true, owner: tag, key, value };
        self.counters[tag as usize].fills += 1;
    }

    /// Look up; on a miss, fill (value 0). `true` on a hit.
    pub fn access(&mut self, tag: u8, key: u32) -> bool {
        self.access_owner(tag, key).is_some()
    }

    /// As [`access`](Self::access), returning the tag that filled the line
    /// that hit (the isolation tests check it is always the requester).
    pub fn access_owner(&mut self, tag: u8, key: u32) -> Option<u8> {
        match self.lookup_owner(tag, key) {
            Some((o, _)) => Some(o),
            None => {
                self.fill(tag, key, 0);
                None
            }
        }
    }

    /// Lines a tag holds now.
    pub fn occupancy(&self, tag: u8) -> usize {
        self.lines.iter().filter(|l| l.valid && l.owner == tag).count()
    }
}

impl TagCache for CacheModel {
    fn ways(&self) -> usize {
        self.ways
    }
    fn set_of(&self, key: u32) -> usize {
        CacheModel::set_of(self, key)
    }
    fn access(&mut self, tag: u8, key: u32) -> bool {
        CacheModel::access(self, tag, key)
    }
}

/// Mutual information (bits) between a binary secret and an observation.
pub fn mutual_information(samples: &[(bool, u32)]) -> f64 {
    use std::collections::HashMap;
    let n = samples.len() as f64;
    let mut joint: HashMap<(bool, u32), f64> = HashMap::new();
    let mut ps: HashMap<bool, f64> = HashMap::new();
    let mut po: HashMap<u32, f64> = HashMap::new();
    for &(s, o) in samples {
        *joint.entry((s, o)).or_default() += 1.0;
        *ps.entry(s).or_default() += 1.0;
        *po.entry(o).or_default() += 1.0;
    }
    joint
        .iter()
        .map(|(&(s, o), &c)| {
            let pxy = c / n;
            pxy * (pxy / ((ps[&s] / n) * (po[&o] / n))).log2()
        })
        .sum()
}

/// Prime and probe: the attacker fills its view of one set, the victim
/// touches that set or not (the secret), the attacker probes and counts its
/// misses. Returns (information per trial, the same on shuffled secrets as
/// the no-leak threshold).
pub fn prime_probe<C: TagCache>(cache: &mut C, attacker: u8, victim: u8, trials: usize, seed: u64) -> (f64, f64) {
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Keys that land in set 0, for each party.
    let keys_in_set0 = |start: u32, n: usize, c: &C| -> Vec<u32> {
        (start..).filter(|&k| c.set_of(k) == 0).take(n).collect()
    };
    let a_keys = keys_in_set0(1 << 20, cache.ways(), cache);
    let v_keys = keys_in_set0(2 << 20, cache.ways(), cache);
    let mut samples = Vec::with_capacity(trials);
    for _ in 0..trials {
        for &k in &a_keys {
            cache.access(attacker, k);
        }
        let secret = rnd() & 1 == 1;
        if secret {
            for &k in &v_keys {
                cache.access(victim, k);
            }
        }
        let misses = a_keys.iter().filter(|&&k| !cache.access(attacker, k)).count() as u32;
        samples.push((secret, misses));
    }
    let mi = mutual_information(&samples);
    // Threshold: the same estimate with the secrets shuffled (no relation left).
    let mut shuffled = samples.clone();
    for i in (1..shuffled.len()).rev() {
        let j = (rnd() % (i as u64 + 1)) as usize;
        let s = shuffled[i].0;
        shuffled[i].0 = shuffled[j].0;
        shuffled[j].0 = s;
    }
    (mi, mutual_information(&shuffled))
}
