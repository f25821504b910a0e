//! Spare vectors of finished events, reused by the parsers for the events they build next.
//!
//! A Modbus transaction builds an access list and a value list; allocating and freeing them
//! per event was a tenth of the packet path. The pipeline hands every event it has emitted to
//! [`recycle_all`], which keeps its vectors; the parsers take them back through
//! [`read_list`], [`accesses`] and [`values`]. The spares are per thread and bounded: at most
//! [`MAX_SPARES`] vectors of each kind, value lists only up to [`MAX_VALUES_CAPACITY`] slots.
//!
//! An access list of at most [`MAX_WHOLE_ACCESSES`] accesses whose value lists are all small
//! enough (a Modbus event's, most of the time) is kept whole, in one push: its accesses keep
//! their objects and their value lists, values still in them. The parsers pay for emptying
//! only what they reuse: [`read_list`] reuses the first access and its value list as they
//! are (emptied), [`accesses`] and [`values`] take the value lists out of a whole list when
//! they need them. Other lists are taken apart when recycled, as a whole list is when
//! reused: value lists kept (emptied) as spares, the list kept empty. Reuse changes no
//! output: what a parser gets is empty, only its capacity is kept.
//!
//! The strings of object names (and sessions) of recycled events are kept too, at most
//! [`MAX_NAMES`] of at most [`MAX_NAME_CAPACITY`] bytes: [`name`] copies a text into one.
//! So are their lists of details (an OPC UA Publish event has two or three), through
//! [`details`].

use crate::event::{Access, AccessDir, IcsEvent, ObjectRef, Value, Values};
use std::cell::RefCell;

/// Most spare vectors kept of each kind.
pub(crate) const MAX_SPARES: usize = 64;
/// Largest value list kept (the Modbus register maximum, rounded up).
pub(crate) const MAX_VALUES_CAPACITY: usize = 128;
/// Largest room for compact values (registers or bits) of an access kept in a whole spare
/// list (the Modbus coil maximum, rounded up: two bytes each).
pub(crate) const MAX_WORDS_CAPACITY: usize = 2048;
/// Largest access list kept.
const MAX_ACCESSES_CAPACITY: usize = 8;
/// Most accesses of a list kept whole (with their value lists).
pub(crate) const MAX_WHOLE_ACCESSES: usize = 2;
/// Most spare object names kept (an OPC UA Publish event names one object per item).
pub(crate) const MAX_NAMES: usize = 256;
/// Largest object name kept.
pub(crate) const MAX_NAME_CAPACITY: usize = 64;
/// Largest list of details kept.
const MAX_DETAILS_CAPACITY: usize = 16;

/// An event's list of details.
type Details = Vec<(&'static str, Value)>;

/// The spare vectors of one thread.
struct Spares {
    /// Access lists kept whole: accesses and value lists as the finished event had them.
    whole: Vec<Vec<Access>>,
    /// Empty access lists.
    bare: Vec<Vec<Access>>,
    /// Empty value lists.
    values: Vec<Vec<Value>>,
    /// Empty vectors of compact values (Modbus registers and bits).
    words: Vec<Vec<u16>>,
    /// Empty strings of the object names of accesses taken apart.
    names: Vec<String>,
    /// Empty lists of details.
    details: Vec<Details>,
}

thread_local! {
    static SPARES: RefCell<Spares> = const {
        RefCell::new(Spares {
            whole: Vec::new(),
            bare: Vec::new(),
            values: Vec::new(),
            words: Vec::new(),
            names: Vec::new(),
            details: Vec::new(),
        })
    };
}

/// Runs `f` on this thread's spares; `None` when they cannot be reached (thread ending, or
/// already borrowed).
#[inline]
fn with_spares<R>(f: impl FnOnce(&mut Spares) -> R) -> Option<R> {
    SPARES
        .try_with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s)))
        .ok()
        .flatten()
}

/// An empty access list (a spare one when there is one).
pub(crate) fn accesses() -> Vec<Access> {
    with_spares(Spares::bare_list).unwrap_or_default()
}

/// The list of the one access `dir`, `object` with an empty value list: a spare list whose
/// first access (and its value list's room) is reused in place when there is one.
#[inline]
pub(crate) fn read_list(dir: AccessDir, object: ObjectRef) -> Vec<Access> {
    let mut list = read_list_stale(dir, object);
    if let Some(a) = list.first_mut() {
        a.values.clear();
    }
    list
}

/// [`read_list`] for a caller that then sets every value of the access: the value list of
/// a spare keeps the values it held (any values, any number), for the caller to overwrite
/// in place, in one pass instead of an emptying pass and a filling one.
#[inline(always)]
pub(crate) fn read_list_stale(dir: AccessDir, object: ObjectRef) -> Vec<Access> {
    let mut list = with_spares(|s| s.whole.pop().or_else(|| s.bare.pop()))
        .flatten()
        .unwrap_or_default();
    match list.first_mut() {
        Some(a) => {
            a.dir = dir;
            a.object = object;
            if list.len() > 1 {
                with_spares(|s| s.harvest_from(&mut list, 1));
                list.truncate(1);
            }
        }
        None => list.push(Access {
            dir,
            object,
            values: Values::new(),
        }),
    }
    list
}

/// An empty value list with room for `n` values (a spare one when `n` is small).
pub(crate) fn values(n: usize) -> Vec<Value> {
    if n > MAX_VALUES_CAPACITY {
        return Vec::with_capacity(n);
    }
    match with_spares(Spares::value_list).flatten() {
        Some(mut v) => {
            v.reserve(n);
            v
        }
        None => Vec::with_capacity(n),
    }
}

/// No values, with the room of a spare vector for compact ones (what the Modbus parser
/// decodes into) when there is one.
#[inline]
pub(crate) fn compact_values() -> Values {
    Values::with_words(with_spares(|s| s.words.pop()).flatten().unwrap_or_default())
}

/// A copy of `text` in a spare string (an object name of a recycled access) when there is
/// one: the same string as `text.to_owned()`, without an allocation.
#[inline]
pub(crate) fn name(text: &str) -> String {
    let mut s = with_spares(|s| s.names.pop()).flatten().unwrap_or_default();
    s.push_str(text);
    s
}

/// An empty list of details with room for `n` (a spare one when there is one).
#[inline]
pub(crate) fn details(n: usize) -> Details {
    let mut d = with_spares(|s| s.details.pop())
        .flatten()
        .unwrap_or_default();
    d.reserve(n);
    d
}

/// Moves up to `n` spare strings (empty) into `out`: a parser that names many objects
/// takes them in one go rather than one by one through [`name`].
pub(crate) fn take_names(out: &mut Vec<String>, n: usize) {
    let _ = with_spares(|s| {
        let from = s.names.len().saturating_sub(n);
        out.extend(s.names.drain(from..));
    });
}

/// Moves up to `n` spare value lists (empty) into `out`, as [`take_names`] does strings.
pub(crate) fn take_values(out: &mut Vec<Vec<Value>>, n: usize) {
    let _ = with_spares(|s| {
        if s.values.is_empty() {
            if let Some(v) = s.value_list() {
                out.push(v);
            }
        }
        let from = s.values.len().saturating_sub(n.saturating_sub(out.len()));
        out.extend(s.values.drain(from..));
    });
}

/// Takes the vectors of emitted events as spares (the events keep empty ones, or the
/// vectors that are not kept).
#[inline]
pub(crate) fn recycle_all(evs: &mut [IcsEvent]) {
    if evs.is_empty() {
        return;
    }
    let _ = with_spares(|s| {
        for ev in evs {
            s.take_from(ev);
        }
    });
}

/// Takes the session string of `ev` as a spare name; the event is left with none.
#[cold]
pub(crate) fn drop_session(ev: &mut IcsEvent) {
    if let Some(mut name) = ev.session.take() {
        let _ = with_spares(|s| s.keep_name(&mut name));
    }
}

/// Keeps the vectors of an access list no longer used, as [`recycle_all`] keeps an
/// event's.
#[cold]
pub(crate) fn keep_accesses(mut list: Vec<Access>) {
    let _ = with_spares(|s| s.take_list(&mut list));
}

/// Most room of an access list [`keep_first`] keeps where it is.
const MAX_KEPT_IN_PLACE: usize = 64;

/// Makes `list` (a stale event's, of any shape) the one access `dir`, `object` with a
/// stale value list, as [`read_list_stale`] gives one: a list of several accesses (a stale
/// OPC UA event's) is cut down in place, its other accesses' vectors and names kept as
/// spares, rather than swapped for a spare list and taken apart and freed. The first
/// access gets a spare vector for compact values when it has none (a read decodes into
/// one). The list keeps its room, at most [`MAX_KEPT_IN_PLACE`] (no more than the stale
/// event held); a larger or empty one is swapped as before.
#[cold]
pub(crate) fn keep_first(list: &mut Vec<Access>, dir: AccessDir, object: ObjectRef) {
    if list.is_empty() || list.capacity() > MAX_KEPT_IN_PLACE {
        keep_accesses(std::mem::replace(list, read_list_stale(dir, object)));
        return;
    }
    let _ = with_spares(|s| {
        s.harvest_from(list, 1);
        if let Some(a) = list.first_mut() {
            if let ObjectRef::Other { name: n } | ObjectRef::Node { node_id: n, .. } = &mut a.object
            {
                s.keep_name(n);
            }
            let v = &mut a.values;
            if v.words_capacity() == 0 {
                if v.list_capacity() > 0
                    && v.list_capacity() <= MAX_VALUES_CAPACITY
                    && s.values.len() < MAX_SPARES
                {
                    s.values.push(v.take_list());
                }
                if let Some(w) = s.words.pop() {
                    *v = Values::with_words(w);
                }
            }
        }
    });
    list.truncate(1);
    if let Some(a) = list.first_mut() {
        a.dir = dir;
        a.object = object;
    }
}

impl Spares {
    /// Keeps the vectors and name strings of `ev` (within the bounds); the event keeps the
    /// others.
    #[inline]
    fn take_from(&mut self, ev: &mut IcsEvent) {
        if let Some(session) = &mut ev.session {
            self.keep_name(session);
        }
        self.take_list(&mut ev.accesses);
        if ev.details.capacity() > 0 {
            self.keep_details(&mut ev.details);
        }
    }

    /// Keeps the list `d` (emptied, within the bounds); `d` keeps an empty one.
    fn keep_details(&mut self, d: &mut Details) {
        if d.capacity() <= MAX_DETAILS_CAPACITY && self.details.len() < MAX_SPARES {
            d.clear();
            self.details.push(std::mem::take(d));
        }
    }

    /// Keeps `list` whole, or its vectors and names (within the bounds); `list` keeps what
    /// is not kept.
    #[inline]
    fn take_list(&mut self, list: &mut Vec<Access>) {
        let cap = list.capacity();
        if cap == 0 {
            return;
        }
        if cap <= MAX_ACCESSES_CAPACITY
            && list.len() <= MAX_WHOLE_ACCESSES
            && self.whole.len() < MAX_SPARES
            && list.iter().all(|a| {
                a.values.list_capacity() <= MAX_VALUES_CAPACITY
                    && a.values.words_capacity() <= MAX_WORDS_CAPACITY
            })
        {
            self.whole.push(std::mem::take(list));
            return;
        }
        self.harvest_from(list, 0);
        if cap <= MAX_ACCESSES_CAPACITY && self.bare.len() < MAX_SPARES {
            let mut list = std::mem::take(list);
            list.clear();
            self.bare.push(list);
        }
    }

    /// Keeps the value lists and object names of the accesses of `list` from the `from`th on
    /// (emptied, within the bounds); the accesses keep empty ones.
    fn harvest_from(&mut self, list: &mut [Access], from: usize) {
        for a in list.iter_mut().skip(from) {
            if let ObjectRef::Other { name: n } | ObjectRef::Node { node_id: n, .. } = &mut a.object
            {
                self.keep_name(n);
            }
            let v = &mut a.values;
            if v.list_capacity() > 0
                && v.list_capacity() <= MAX_VALUES_CAPACITY
                && self.values.len() < MAX_SPARES
            {
                self.values.push(v.take_list());
            }
            if v.words_capacity() > 0
                && v.words_capacity() <= MAX_WORDS_CAPACITY
                && self.words.len() < MAX_SPARES
            {
                self.words.push(v.take_words());
            }
        }
    }

    /// Keeps the string of `n` (emptied, within the bounds); `n` keeps an empty one.
    #[inline]
    fn keep_name(&mut self, n: &mut String) {
        if n.capacity() > 0 && n.capacity() <= MAX_NAME_CAPACITY && self.names.len() < MAX_NAMES {
            n.clear();
            self.names.push(std::mem::take(n));
        }
    }

    /// An empty access list: a bare one, or a whole one taken apart.
    fn bare_list(&mut self) -> Vec<Access> {
        if let Some(l) = self.bare.pop() {
            return l;
        }
        let mut l = self.whole.pop().unwrap_or_default();
        self.harvest_from(&mut l, 0);
        l.clear();
        l
    }

    /// An empty value list: a spare one, or one taken out of a whole access list (whose
    /// other value lists become spares, the list a bare one).
    fn value_list(&mut self) -> Option<Vec<Value>> {
        if let Some(v) = self.values.pop() {
            return Some(v);
        }
        let mut l = self.whole.pop()?;
        self.harvest_from(&mut l, 0);
        l.clear();
        if self.bare.len() < MAX_SPARES {
            self.bare.push(l);
        }
        self.values.pop()
    }
}
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bounded() {
        SPARES.with(|s| {
            let s = s.borrow();
            assert!(
                s.whole.len() <= MAX_SPARES
                    && s.bare.len() <= MAX_SPARES
                    && s.values.len() <= MAX_SPARES
            );
            for l in &s.whole {
                assert!(l.len() <= MAX_WHOLE_ACCESSES && l.capacity() <= MAX_ACCESSES_CAPACITY);
                assert!(l.iter().all(|a| {
                    a.values.list_capacity() <= MAX_VALUES_CAPACITY
                        && a.values.words_capacity() <= MAX_WORDS_CAPACITY
                }));
            }
            for l in &s.bare {
                assert!(l.is_empty() && l.capacity() <= MAX_ACCESSES_CAPACITY);
            }
            for v in &s.values {
                assert!(v.is_empty() && v.capacity() <= MAX_VALUES_CAPACITY);
            }
            assert!(s.words.len() <= MAX_SPARES);
            for w in &s.words {
                assert!(w.is_empty() && w.capacity() <= MAX_WORDS_CAPACITY);
            }
            assert!(s.names.len() <= MAX_NAMES);
            for n in &s.names {
                assert!(n.is_empty() && n.capacity() <= MAX_NAME_CAPACITY);
            }
            assert!(s.details.len() <= MAX_SPARES);
            for d in &s.details {
                assert!(d.is_empty() && d.capacity() <= MAX_DETAILS_CAPACITY);
            }
        });
    }

    fn drain_spares() {
        SPARES.with(|s| {
            let mut s = s.borrow_mut();
            s.whole.clear();
            s.bare.clear();
            s.values.clear();
            s.words.clear();
            s.names.clear();
            s.details.clear();
        });
    }

    #[test]
    fn spares_come_back_empty_and_bounded() {
        drain_spares();
        let mut a = accesses();
        let mut v = values(10);
        v.push(Value::Int(1));
        a.push(Access {
            dir: crate::event::AccessDir::Read,
            object: crate::event::ObjectRef::Other {
                name: "x".to_string(),
            },
            values: v.into(),
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
                values: Vec::with_capacity(4).into(),
            }];
            recycle_all(&mut [IcsEvent {
                accesses: a,
                ..test_event()
            }]);
        }
        bounded();
    }

    /// An object of kind `k`: Modbus, OPC UA node, named.
    fn object(k: u32) -> ObjectRef {
        match k % 3 {
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
        }
    }

    /// The compact values of an event taken apart are handed out again, emptied, by
    /// `compact_values` (a Modbus write's registers then allocate nothing).
    #[test]
    fn compact_values_reuse_the_room_of_recycled_ones() {
        drain_spares();
        assert_eq!(compact_values().words_capacity(), 0);
        // Three accesses: more than a list kept whole, so it is taken apart.
        recycle_all(&mut events(3, false, 1));
        let v = compact_values();
        assert!(
            v.is_empty() && v.words_capacity() >= 2,
            "{}",
            v.words_capacity()
        );
        bounded();
    }

    /// Events of `n` accesses each (value lists of `big` size or small, with values; every
    /// other access with compact values, of more than the room kept when `big`).
    fn events(n: usize, big: bool, count: usize) -> Vec<IcsEvent> {
        (0..count)
            .map(|e| {
                let a = (0..n)
                    .map(|k| {
                        let len = if big { MAX_VALUES_CAPACITY + 1 } else { k + 1 };
                        let mut values = Vec::with_capacity(len);
                        values.extend((0..len).map(|i| Value::Int(i as i64)));
                        values.push(Value::Str("s".to_string()));
                        let mut values = Values::from(values);
                        if (k + e) % 2 == 1 {
                            let words = if big { MAX_WORDS_CAPACITY + 1 } else { len };
                            values.set_registers(&vec![7; 2 * words], words);
                        }
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
            .collect()
    }

    /// Spare access lists (whole ones still holding accesses and values, bare ones) are
    /// empty through `accesses`, their value lists empty through `values`, and through
    /// `read_list` become exactly the one access asked for, as a fresh list would.
    #[test]
    fn reused_access_lists_equal_fresh_ones() {
        for n in 0..=MAX_ACCESSES_CAPACITY + 1 {
            for big in [false, true] {
                drain_spares();
                let mut evs = events(n, big, 2 * MAX_SPARES);
                recycle_all(&mut evs);
                bounded();
                assert!(accesses().is_empty());
                assert!(values(3).is_empty());
                bounded();
                for k in 0..3 {
                    let mut list = read_list(AccessDir::Read, object(k));
                    assert_eq!(
                        list,
                        vec![Access {
                            dir: AccessDir::Read,
                            object: object(k),
                            values: Values::new(),
                        }]
                    );
                    list[0].values.push(Value::Int(7));
                    let stale = read_list_stale(AccessDir::Read, object(k));
                    assert_eq!(stale.len(), 1);
                    assert_eq!(
                        (stale[0].dir, &stale[0].object),
                        (AccessDir::Read, &object(k))
                    );
                    recycle_all(&mut [IcsEvent {
                        accesses: stale,
                        ..test_event()
                    }]);
                    recycle_all(&mut [IcsEvent {
                        accesses: list,
                        ..test_event()
                    }]);
                    bounded();
                }
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Recycle(usize, bool),
        Accesses,
        Values(usize),
        Words,
        Read(u32),
        Stale(u32),
        Name(u32),
    }

    proptest! {
        /// Whatever mix of events is recycled and of vectors taken, every vector handed out
        /// is empty (or exactly the access asked for), and the spares stay within bounds.
        #[test]
        fn any_mix_hands_out_empty_vectors(ops in proptest::collection::vec(prop_oneof![
            (0usize..5, any::<bool>()).prop_map(|(n, b)| Op::Recycle(n, b)),
            Just(Op::Accesses),
            (0usize..200).prop_map(Op::Values),
            Just(Op::Words),
            (0u32..6).prop_map(Op::Read),
            (0u32..6).prop_map(Op::Stale),
            (0u32..100_000).prop_map(Op::Name),
        ], 0..200)) {
            drain_spares();
            for op in ops {
                match op {
                    Op::Recycle(n, big) => recycle_all(&mut events(n, big, 3)),
                    Op::Accesses => prop_assert!(accesses().is_empty()),
                    Op::Values(n) => {
                        let v = values(n);
                        prop_assert!(v.is_empty() && v.capacity() >= n);
                    }
                    Op::Words => {
                        let v = compact_values();
                        prop_assert!(v.is_empty() && v.words_capacity() <= MAX_WORDS_CAPACITY);
                    }
                    Op::Read(k) => prop_assert_eq!(
                        read_list(AccessDir::Write, object(k)),
                        vec![Access { dir: AccessDir::Write, object: object(k), values: Values::new() }]
                    ),
                    Op::Name(k) => {
                        let text = format!("client_handle={k}");
                        prop_assert_eq!(name(&text), text);
                    }
                    Op::Stale(k) => {
                        let l = read_list_stale(AccessDir::Write, object(k));
                        prop_assert!(l.len() == 1 && l[0].dir == AccessDir::Write && l[0].object == object(k));
                        prop_assert!(l[0].values.list_capacity() <= MAX_VALUES_CAPACITY);
                    }
                }
                bounded();
            }
        }
    }

    proptest! {
        /// `keep_first` leaves any stale list (any number of accesses, kinds of objects and
        /// values, room small or large) as the one access asked for, as the swap for a
        /// `read_list_stale` list does, with a value list that a read's decode makes the
        /// same; the spares stay within bounds.
        #[test]
        fn keep_first_is_the_swap_for_a_spare(
            n in 0usize..=MAX_WHOLE_ACCESSES + 4,
            big in any::<bool>(),
            room in prop_oneof![Just(0usize), 0usize..=MAX_KEPT_IN_PLACE + 8],
            e in 0usize..4,
            k in 0u32..6,
            spares in 0usize..3,
            data in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            drain_spares();
            recycle_all(&mut events(1, false, spares));
            let stale = || {
                let mut evs = events(n, big, e + 1);
                let mut list = std::mem::take(&mut evs[e].accesses);
                list.reserve(room);
                list
            };
            let (mut kept, mut swapped) = (stale(), stale());
            keep_first(&mut kept, AccessDir::Read, object(k));
            keep_accesses(std::mem::replace(
                &mut swapped,
                read_list_stale(AccessDir::Read, object(k)),
            ));
            bounded();
            prop_assert_eq!(kept.len(), 1);
            prop_assert!(kept.capacity() <= MAX_KEPT_IN_PLACE.max(MAX_ACCESSES_CAPACITY));
            for l in [&mut kept, &mut swapped] {
                l[0].values.set_registers(&data, usize::MAX);
            }
            prop_assert_eq!(&kept, &swapped);
            recycle_all(&mut [IcsEvent { accesses: kept, ..test_event() }]);
            bounded();
        }
    }

    /// Names of recycled accesses come back empty and hold exactly the text asked for, from
    /// a spare string when there is one (no allocation), from a new one otherwise.
    #[test]
    fn reused_names_equal_fresh_ones() {
        drain_spares();
        assert_eq!(name("client_handle=7"), "client_handle=7");
        let mut evs = events(5, false, 4);
        recycle_all(&mut evs);
        bounded();
        let kept = SPARES.with(|s| s.borrow().names.len());
        assert!(kept > 0);
        for k in 0..kept + 3 {
            let text = format!("client_handle={k}");
            let n = name(&text);
            assert_eq!(n, text);
        }
        assert_eq!(SPARES.with(|s| s.borrow().names.len()), 0);
        let long = "x".repeat(MAX_NAME_CAPACITY + 1);
        recycle_all(&mut [IcsEvent {
            accesses: (0..3)
                .map(|_| Access {
                    dir: AccessDir::Read,
                    object: ObjectRef::Other { name: long.clone() },
                    values: Values::new(),
                })
                .collect(),
            ..test_event()
        }]);
        assert_eq!(SPARES.with(|s| s.borrow().names.len()), 0);
        bounded();
    }

    /// A Publish event's list of details comes back empty with its room, a list too large for
    /// a spare stays with its event, and the spares stay bounded.
    #[test]
    fn details_come_back_empty_with_their_room_and_bounded() {
        drain_spares();
        assert!(details(3).capacity() >= 3);
        let mut d = details(4);
        d.push(("acknowledgements", Value::Str("x".repeat(40))));
        d.push(("notifications", Value::Int(2)));
        let room = d.capacity();
        let mut ev = IcsEvent {
            details: d,
            ..test_event()
        };
        recycle_all(std::slice::from_mut(&mut ev));
        assert!(ev.details.is_empty() && ev.details.capacity() == 0);
        let d = details(1);
        assert!(d.is_empty() && d.capacity() == room);
        // A list larger than a spare may be is left to its event (and freed with it).
        let mut ev = IcsEvent {
            details: Vec::with_capacity(MAX_DETAILS_CAPACITY + 1),
            ..test_event()
        };
        recycle_all(std::slice::from_mut(&mut ev));
        assert_eq!(ev.details.capacity(), MAX_DETAILS_CAPACITY + 1);
        for _ in 0..2 * MAX_SPARES {
            let mut ev = IcsEvent {
                details: Vec::with_capacity(2),
                ..test_event()
            };
            recycle_all(std::slice::from_mut(&mut ev));
        }
        bounded();
    }

    /// Any event: what is recycled is its accesses and its list of details, whatever the
    /// kind.
    fn test_event() -> IcsEvent {
        crate::detect::testkit::read_hr(0, "10.0.0.1", "10.0.0.2", 1, 0, &[])
    }
}
