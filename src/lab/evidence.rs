//! Evidence the threads gather themselves, judged without asking a primitive about itself.
//!
//! An item is *certainly* inside a buffer from the moment its `put` returned (its producer's
//! clock) to the moment a consumer called the `get` that returned it (that consumer's
//! clock): it went in before the first and came out after the second. The most such
//! intervals that overlap is a lower bound on the buffer's true occupancy, measured from
//! outside; where it exceeds the capacity, the buffer held more than it may.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// The most of `intervals` (start, end) that contain one instant; an interval whose end is
/// not after its start contains none.
pub fn most_at_once(intervals: &[(Instant, Instant)]) -> usize {
    let mut edges: Vec<(Instant, i32)> = Vec::with_capacity(intervals.len() * 2);
    for &(start, end) in intervals {
        if end > start {
            edges.push((start, 1));
            edges.push((end, -1));
        }
    }
    // At one instant an end comes before a start: touching intervals do not overlap.
    edges.sort_by_key(|&(at, step)| (at, step));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

/// Items' times in and out of a buffer, noted by the threads that put and took them.
#[derive(Debug)]
pub struct Occupancy<K> {
    put_done: Mutex<HashMap<K, Instant>>,
    get_called: Mutex<HashMap<K, Instant>>,
}

impl<K> Default for Occupancy<K> {
    fn default() -> Self {
        Self {
            put_done: Mutex::new(HashMap::new()),
            get_called: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Copy> Occupancy<K> {
    /// The producer's `put` of `item` returned at `at` (its own clock).
    pub fn put_done(&self, item: K, at: Instant) {
        crate::sync::lock(&self.put_done).insert(item, at);
    }

    /// A consumer called the `get` that returned `item` at `at` (its own clock).
    pub fn get_called(&self, item: K, at: Instant) {
        crate::sync::lock(&self.get_called).insert(item, at);
    }

    /// The most items certainly inside at once (a lower bound on the true occupancy).
    pub fn most_inside(&self) -> usize {
        let put = crate::sync::lock(&self.put_done);
        let got = crate::sync::lock(&self.get_called);
        let intervals: Vec<(Instant, Instant)> = put
            .iter()
            .filter_map(|(k, &p)| got.get(k).map(|&g| (p, g)))
            .collect();
        most_at_once(&intervals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn overlapping_intervals_are_counted_and_touching_ones_are_not() {
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        assert_eq!(most_at_once(&[]), 0);
        assert_eq!(most_at_once(&[(at(0), at(10)), (at(10), at(20))]), 1);
        assert_eq!(
            most_at_once(&[(at(0), at(10)), (at(5), at(20)), (at(6), at(7))]),
            3
        );
        // An item taken before its put was seen to return is certainly inside never.
        assert_eq!(most_at_once(&[(at(10), at(5))]), 0);
    }

    #[test]
    fn occupancy_pairs_each_item_with_its_own_times() {
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        let o = Occupancy::default();
        for (item, put, got) in [(1, 0, 30), (2, 10, 40), (3, 20, 50), (4, 45, 60)] {
            o.put_done(item, at(put));
            o.get_called(item, at(got));
        }
        assert_eq!(o.most_inside(), 3);
    }
}
