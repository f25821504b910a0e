//! Spare vectors of finished events, reused by the parsers for the events they build next.
//!
//! A Modbus transaction builds an access list and a value list; allocating and freeing them
//! per event was a tenth of the packet path. The pipeline hands every event it has emitted to
//! [`recycle_all`], which keeps its (emptied) vectors; the parsers take them back through
//! [`accesses`] and [`values`]. The spares are per thread and bounded: at most
//! [`MAX_SPARES`] vectors of each kind, value lists only up to [`MAX_VALUES_CAPACITY`] slots.
//! Reuse changes no output: a spare is empty, only its capacity is kept.

use crate::event::{Access, IcsEvent, Value};
use std::cell::RefCell;

/// Most spare vectors kept of each kind.
pub(crate) const MAX_SPARES: usize = 64;
/// Largest value list kept (the Modbus register maximum, rounded up).
pub(crate) const MAX_VALUES_CAPACITY: usize = 128;
/// Largest access list kept.
const MAX_ACCESSES_CAPACITY: usize = 8;

/// The spare vectors of one thread.
struct Spares {
    accesses: Vec<Vec<Access>>,
    values: Vec<Vec<Value>>,
}

thread_local! {
    static SPARES: RefCell<Spares> = const {
        RefCell::new(Spares {
            accesses: Vec::new(),
            values: Vec::new(),
        })
    };
}

/// An empty access list (a spare one when there is one).
pub(crate) fn accesses() -> Vec<Access> {
    SPARES
        .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.accesses.pop()))
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// An empty access list and an empty value list (spares when there are, found with one
/// look-up), for a request whose values come later: the value list gets its room then.
pub(crate) fn accesses_and_values() -> (Vec<Access>, Vec<Value>) {
    SPARES
        .try_with(|s| {
            s.try_borrow_mut()
                .ok()
                .map(|mut s| {
                    (
                        s.accesses.pop().unwrap_or_default(),
                        s.values.pop().unwrap_or_default(),
                    )
                })
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// An empty value list with room for `n` values (a spare one when `n` is small).
pub(crate) fn values(n: usize) -> Vec<Value> {
    if n > MAX_VALUES_CAPACITY {
        return Vec::with_capacity(n);
    }
    let spare = SPARES
        .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.values.pop()))
        .ok()
        .flatten();
    match spare {
        Some(mut v) => {
            v.reserve(n);
            v
        }
        None => Vec::with_capacity(n),
    }
}

/// Takes the vectors of emitted events as spares (the events keep empty ones, or the
/// vectors that are not kept).
pub(crate) fn recycle_all(evs: &mut [IcsEvent]) {
    if evs.is_empty() {
        return;
    }
    let _ = SPARES.try_with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return;
        };
        for ev in evs {
            s.take_from(ev);
        }
    });
}

impl Spares {
    /// Keeps the vectors of `ev` (within the bounds); the event keeps the others.
    #[inline]
    fn take_from(&mut self, ev: &mut IcsEvent) {
        if ev.accesses.capacity() == 0 {
            return;
        }
        for a in &mut ev.accesses {
            let v = &mut a.values;
            if v.capacity() > 0
                && v.capacity() <= MAX_VALUES_CAPACITY
                && self.values.len() < MAX_SPARES
            {
                v.clear();
                self.values.push(std::mem::take(v));
            }
        }
        if ev.accesses.capacity() <= MAX_ACCESSES_CAPACITY && self.accesses.len() < MAX_SPARES {
            let mut accesses = std::mem::take(&mut ev.accesses);
            accesses.clear();
            self.accesses.push(accesses);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn spares_come_back_empty_and_bounded() {
        let mut a = accesses();
        let mut v = values(10);
        v.push(Value::Int(1));
        a.push(Access {
            dir: crate::event::AccessDir::Read,
            object: crate::event::ObjectRef::Other {
                name: "x".to_string(),
            },
            values: v,
        });
        let ev = IcsEvent {
            accesses: a,
            ..test_event()
        };
        recycle_all(std::slice::from_mut(&mut { ev }));
        let a = accesses();
        assert!(a.is_empty() && a.capacity() > 0);
        let v = values(5);
        assert!(v.is_empty() && v.capacity() >= 10);
        assert!(values(MAX_VALUES_CAPACITY + 1).capacity() > MAX_VALUES_CAPACITY);
        for _ in 0..2 * MAX_SPARES {
            let a = vec![Access {
                dir: crate::event::AccessDir::Read,
                object: crate::event::ObjectRef::Other {
                    name: String::new(),
                },
                values: Vec::with_capacity(4),
            }];
            recycle_all(&mut [IcsEvent {
                accesses: a,
                ..test_event()
            }]);
        }
        SPARES.with(|s| {
            let s = s.borrow();
            assert!(s.accesses.len() <= MAX_SPARES && s.values.len() <= MAX_SPARES);
        });
    }

    /// Any event: what is recycled is only its accesses.
    fn test_event() -> IcsEvent {
        crate::detect::testkit::read_hr(0, "10.0.0.1", "10.0.0.2", 1, 0, &[])
    }
}
