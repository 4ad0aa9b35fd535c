//! A bounded map from codes (or event keys) to what the importer knows about
//! them, for resolving references without a database round trip.
//!
//! Two generations: inserts go to the young map; when it is full the old map
//! is dropped and the young one takes its place. Memory stays within twice the
//! capacity, and anything used recently is kept (a hit in the old map is
//! promoted). Good enough for data that arrives roughly in order, which is how
//! aggregation data is written.

use rustc_hash::FxHashMap;

/// See the module documentation.
#[derive(Debug)]
pub struct TwoGenerationCache<V: Copy> {
    young: FxHashMap<String, V>,
    old: FxHashMap<String, V>,
    capacity: usize,
}

impl<V: Copy> TwoGenerationCache<V> {
    /// A cache keeping at least the last `capacity` inserted keys.
    pub fn new(capacity: usize) -> Self {
        TwoGenerationCache {
            young: FxHashMap::default(),
            old: FxHashMap::default(),
            capacity: capacity.max(1),
        }
    }

    /// The value for `key`, if remembered.
    pub fn get(&mut self, key: &str) -> Option<V> {
        if let Some(v) = self.young.get(key) {
            return Some(*v);
        }
        let v = *self.old.get(key)?;
        self.insert(key.to_owned(), v);
        Some(v)
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &str) {
        self.young.remove(key);
        self.old.remove(key);
    }

    /// Remembers `key`.
    pub fn insert(&mut self, key: String, value: V) {
        if self.young.len() >= self.capacity {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recent_keys_and_bounds_memory() {
        let mut cache = TwoGenerationCache::new(100);
        for i in 0..1000 {
            cache.insert(format!("c{i}"), i);
        }
        assert_eq!(cache.get("c999"), Some(999));
        assert_eq!(cache.get("c900"), Some(900));
        assert_eq!(cache.get("c0"), None);
        assert!(cache.young.len() + cache.old.len() <= 200);
    }

    #[test]
    fn a_hit_in_the_old_generation_survives_the_next_turnover() {
        let mut cache = TwoGenerationCache::new(2);
        cache.insert("a".into(), 1);
        cache.insert("b".into(), 2);
        cache.insert("c".into(), 3); // a, b now old
        assert_eq!(cache.get("a"), Some(1)); // promoted
        cache.insert("d".into(), 4);
        assert_eq!(cache.get("a"), Some(1));
    }
}
