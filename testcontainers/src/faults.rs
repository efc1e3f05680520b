//! Fault injection and write counting shared by every platform fake (and the
//! proxy in front of moto): the sink suite throttles the next writes with
//! 429s, breaks the writes of one name, and counts the writes a sync made.

use std::collections::HashSet;
use std::sync::Mutex;

/// What a fake must answer instead of serving a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 429 with a short `Retry-After`, as the platform does when
    /// throttling.
    Throttle,
    /// Answer a non-retryable error (the platform's 4xx for a refused write).
    Break,
}

/// The faults armed on one fake, and its counters.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    writes: usize,
    throttle_next: usize,
    throttled: usize,
    broken: HashSet<String>,
}

impl Faults {
    /// Makes the next `count` writes answer 429.
    pub fn throttle_next_writes(&self, count: usize) {
        self.lock().throttle_next += count;
    }

    /// Makes every write of `name` fail until [`Faults::heal`].
    pub fn break_writes_of(&self, name: &str) {
        self.lock().broken.insert(name.to_owned());
    }

    /// Disarms every fault.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.broken.clear();
        state.throttle_next = 0;
    }

    /// Writes served so far (throttled and broken ones excluded).
    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    /// 429s answered so far.
    pub fn throttled(&self) -> usize {
        self.lock().throttled
    }

    /// Called by a fake before it serves a write (create, update or delete)
    /// of `name`: the fault to answer instead, or `None` to serve it (and
    /// count it).
    pub fn on_write(&self, name: &str) -> Option<Fault> {
        let mut state = self.lock();
        if state.throttle_next > 0 {
            state.throttle_next -= 1;
            state.throttled += 1;
            return Some(Fault::Throttle);
        }
        if state.broken.contains(name) {
            return Some(Fault::Break);
        }
        state.writes += 1;
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("faults lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_then_breaks_then_counts() {
        let faults = Faults::default();
        faults.throttle_next_writes(2);
        faults.break_writes_of("B");
        assert_eq!(faults.on_write("A"), Some(Fault::Throttle));
        assert_eq!(faults.on_write("B"), Some(Fault::Throttle));
        assert_eq!(faults.on_write("B"), Some(Fault::Break));
        assert_eq!(faults.on_write("A"), None);
        assert_eq!((faults.writes(), faults.throttled()), (1, 2));
        faults.heal();
        assert_eq!(faults.on_write("B"), None);
        assert_eq!(faults.writes(), 2);
    }
}
