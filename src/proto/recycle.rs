//! Spare vectors of finished events, reused by the parsers for the events they build next.
//!
//! A Modbus transaction builds an access list and a value list; allocating and freeing them
//! per event was a tenth of the packet path. The pipeline hands every event it has emitted to
//! [`recycle_all`], which keeps its (emptied) vectors; the parsers take them back through
//! [`accesses`] and [`values`]. The spares are per thread and bounded: at most
//! [`MAX_SPARES`] vectors of each kind, value lists only up to [`MAX_VALUES_CAPACITY`] slots.
//! Reuse changes no output: a spare value list is empty, only its capacity is kept. A spare
//! access list keeps its last accesses (whose value lists were taken or emptied), so that
//! recycling does not drop them one by one: [`accesses`] empties it before handing it out,
//! [`accesses_and_values`] hands it out as it is, for the read fast path to overwrite its
//! first access in place ([`reuse_first`]).

use crate::event::{Access, AccessDir, IcsEvent, ObjectRef, Value};
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
    let mut a: Vec<Access> = SPARES
        .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.accesses.pop()))
        .ok()
        .flatten()
        .unwrap_or_default();
    a.clear();
    a
}

/// An access list that may still hold a finished event's accesses (make it the list of
/// one access with [`reuse_first`]) and an empty value list (spares when there are, found
/// with one look-up), for a request whose values come later: the value list gets its room
/// then.
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

/// Makes `list` (from [`accesses_and_values`]) the list of the one access `dir`, `object`,
/// `values`: its first access is overwritten in place when it has one, the others dropped.
#[inline]
pub(crate) fn reuse_first(
    list: &mut Vec<Access>,
    dir: AccessDir,
    object: ObjectRef,
    values: Vec<Value>,
) {
    match list.first_mut() {
        Some(a) => {
            a.dir = dir;
            a.object = object;
            a.values = values;
            list.truncate(1);
        }
        None => list.push(Access {
            dir,
            object,
            values,
        }),
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
    /// Keeps the vectors of `ev` (within the bounds); the event keeps the others. A kept
    /// access list keeps its accesses, their value lists taken (or dropped when not kept).
    #[inline]
    fn take_from(&mut self, ev: &mut IcsEvent) {
        if ev.accesses.capacity() == 0 {
            return;
        }
        let keep_list =
            ev.accesses.capacity() <= MAX_ACCESSES_CAPACITY && self.accesses.len() < MAX_SPARES;
        for a in &mut ev.accesses {
            let v = &mut a.values;
            if v.capacity() > 0
                && v.capacity() <= MAX_VALUES_CAPACITY
                && self.values.len() < MAX_SPARES
            {
                v.clear();
                self.values.push(std::mem::take(v));
            } else if keep_list && v.capacity() > 0 {
                // Not kept as a spare: not kept in the spare access list either.
                *v = Vec::new();
            }
        }
        if keep_list {
            self.accesses.push(std::mem::take(&mut ev.accesses));
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

    /// A spare access list still holding accesses (Modbus, OPC UA node and named objects,
    /// several, with value lists kept or too big to keep) is empty through `accesses`, and
    /// through `reuse_first` becomes exactly the one access asked for, as a fresh list would.
    #[test]
    fn reused_access_lists_equal_fresh_ones() {
        let object = |k: u32| match k % 3 {
            0 => ObjectRef::Modbus {
                table: crate::event::ModbusTable::HoldingRegister,
                start: k,
                count: 2,
            },
            1 => ObjectRef::Node {
                node_id: format!("ns=2;i={k}"),
                attribute: Some(13),
            },
            _ => ObjectRef::Other {
                name: "x".to_string(),
            },
        };
        for n in 0..=MAX_ACCESSES_CAPACITY + 1 {
            for big in [false, true] {
                let evs: Vec<IcsEvent> = (0..2 * MAX_SPARES)
                    .map(|e| {
                        let a = (0..n)
                            .map(|k| {
                                let len = if big { MAX_VALUES_CAPACITY + 1 } else { k + 1 };
                                let mut values = Vec::with_capacity(len);
                                values.extend((0..len).map(|i| Value::Int(i as i64)));
                                values.push(Value::Str("s".to_string()));
                                Access {
                                    dir: crate::event::AccessDir::Write,
                                    object: object((k + e) as u32),
                                    values,
                                }
                            })
                            .collect();
                        IcsEvent {
                            accesses: a,
                            ..test_event()
                        }
                    })
                    .collect();
                let mut evs = evs;
                recycle_all(&mut evs);
                SPARES.with(|s| {
                    let s = s.borrow();
                    assert!(s.accesses.len() <= MAX_SPARES && s.values.len() <= MAX_SPARES);
                    for l in &s.accesses {
                        assert!(l.iter().all(|a| a.values.capacity() == 0));
                    }
                });
                assert!(accesses().is_empty());
                for k in 0..3 {
                    let (mut list, values) = accesses_and_values();
                    assert!(values.is_empty());
                    let mut want_values = values.clone();
                    want_values.push(Value::Int(7));
                    let mut values = values;
                    values.push(Value::Int(7));
                    reuse_first(&mut list, AccessDir::Read, object(k), values);
                    assert_eq!(
                        list,
                        vec![Access {
                            dir: AccessDir::Read,
                            object: object(k),
                            values: want_values,
                        }]
                    );
                }
            }
        }
    }

    /// Any event: what is recycled is only its accesses.
    fn test_event() -> IcsEvent {
        crate::detect::testkit::read_hr(0, "10.0.0.1", "10.0.0.2", 1, 0, &[])
    }
}
