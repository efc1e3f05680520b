//! Fault injection and write counting shared by every platform fake (and the
//! proxy in front of moto): the sink suite throttles or fails the next calls
//! of a kind (listing, reading, writing), breaks the writes of one name, and
//! counts the calls an import or a sync made. Each fake answers a fault the way its
//! platform does (status, error code, with or without `Retry-After`).

use std::collections::HashSet;
use std::sync::Mutex;

/// The kind of call a fault is armed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A listing (one page of it).
    List,
    /// A read of values: one secret's, or one batch's where the platform
    /// reads in batches (AWS `BatchGetSecretValue`).
    Read,
    /// A create, update, label edit or delete.
    Write,
}

/// What a fake must answer instead of serving a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The platform's throttling answer. `retry_after`: whether to say when
    /// to come back, on platforms that sometimes do (GitHub's secondary
    /// limit); a platform that never sends the header ignores it.
    Throttle {
        /// Send `Retry-After` where the platform may.
        retry_after: bool,
    },
    /// The platform's transient failure (a 5xx).
    Unavailable,
    /// A non-retryable error (the platform's 4xx for a refused write).
    Break,
}

/// The faults armed on one fake, and its counters.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    calls: [usize; 3],
    writes: usize,
    throttle_next: [usize; 3],
    unavailable_next: [usize; 3],
    without_retry_after: bool,
    throttled: usize,
    failed: usize,
    broken: HashSet<String>,
}

fn slot(call: Call) -> usize {
    match call {
        Call::List => 0,
        Call::Read => 1,
        Call::Write => 2,
    }
}

impl Faults {
    /// Makes the next `count` calls of `call`'s kind answer the platform's
    /// throttle.
    pub fn throttle_next(&self, call: Call, count: usize) {
        self.lock().throttle_next[slot(call)] += count;
    }

    /// Makes the next `count` writes answer the platform's throttle.
    pub fn throttle_next_writes(&self, count: usize) {
        self.throttle_next(Call::Write, count);
    }

    /// Makes the next `count` calls of `call`'s kind answer a 5xx.
    pub fn fail_next(&self, call: Call, count: usize) {
        self.lock().unavailable_next[slot(call)] += count;
    }

    /// Throttles from now on say nothing about when to come back.
    pub fn throttle_without_retry_after(&self) {
        self.lock().without_retry_after = true;
    }

    /// Makes every write of `name` fail until [`Faults::heal`].
    pub fn break_writes_of(&self, name: &str) {
        self.lock().broken.insert(name.to_owned());
    }

    /// Disarms every fault.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.broken.clear();
        state.throttle_next = [0; 3];
        state.unavailable_next = [0; 3];
        state.without_retry_after = false;
    }

    /// Writes served so far (throttled, failed and broken ones excluded).
    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    /// Calls of `call`'s kind received so far, answered or faulted: what
    /// an import or a sync cost in API calls.
    pub fn calls(&self, call: Call) -> usize {
        self.lock().calls[slot(call)]
    }

    /// Throttles answered so far.
    pub fn throttled(&self) -> usize {
        self.lock().throttled
    }

    /// 5xx answers given so far.
    pub fn failed(&self) -> usize {
        self.lock().failed
    }

    /// Called by a fake before it serves a list or read call: the fault to
    /// answer instead, or `None` to serve it.
    pub fn on_call(&self, call: Call) -> Option<Fault> {
        self.armed(call, None)
    }

    /// Called by a fake before it serves a write (create, update, label
    /// edit or delete) of `name`, once its request has passed the checks
    /// the platform makes: the fault to answer instead, or `None` to serve
    /// it (and count it).
    pub fn on_write(&self, name: &str) -> Option<Fault> {
        self.armed(Call::Write, Some(name))
    }

    fn armed(&self, call: Call, written: Option<&str>) -> Option<Fault> {
        let mut state = self.lock();
        let index = slot(call);
        state.calls[index] += 1;
        if state.throttle_next[index] > 0 {
            state.throttle_next[index] -= 1;
            state.throttled += 1;
            return Some(Fault::Throttle {
                retry_after: !state.without_retry_after,
            });
        }
        if state.unavailable_next[index] > 0 {
            state.unavailable_next[index] -= 1;
            state.failed += 1;
            return Some(Fault::Unavailable);
        }
        let name = written?;
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

    const HINTED: Fault = Fault::Throttle { retry_after: true };

    #[test]
    fn throttles_then_breaks_then_counts() {
        let faults = Faults::default();
        faults.throttle_next_writes(2);
        faults.break_writes_of("B");
        assert_eq!(faults.on_write("A"), Some(HINTED));
        assert_eq!(faults.on_write("B"), Some(HINTED));
        assert_eq!(faults.on_write("B"), Some(Fault::Break));
        assert_eq!(faults.on_write("A"), None);
        assert_eq!((faults.writes(), faults.throttled()), (1, 2));
        faults.heal();
        assert_eq!(faults.on_write("B"), None);
        assert_eq!(faults.writes(), 2);
    }

    #[test]
    fn each_kind_of_call_has_its_own_faults() {
        let faults = Faults::default();
        faults.throttle_next(Call::List, 1);
        faults.fail_next(Call::Read, 2);
        faults.throttle_without_retry_after();
        assert_eq!(faults.on_write("A"), None, "writes are not armed");
        assert_eq!(faults.on_call(Call::Read), Some(Fault::Unavailable));
        assert_eq!(
            faults.on_call(Call::List),
            Some(Fault::Throttle { retry_after: false })
        );
        assert_eq!(faults.on_call(Call::List), None);
        assert_eq!(faults.on_call(Call::Read), Some(Fault::Unavailable));
        assert_eq!(faults.on_call(Call::Read), None);
        assert_eq!(
            (faults.writes(), faults.throttled(), faults.failed()),
            (1, 1, 2)
        );
    }
}
