//! The rule index: rules bucketed by protocol and function code (Modbus) or service (OPC UA),
//! plus a wildcard bucket per protocol for rules that name no function. An event looks at two
//! short lists of rule positions, merged in rule order, without allocating. Events that ended
//! normally (most of them) look at a second set of the same buckets without the rules that
//! need an exception or another outcome (scan and no-answer rules), which never match them.

use super::Rule;
use crate::event::{AppProto, IcsEvent, Outcome};

/// Rule positions (into [`super::RuleSet::rules`]) by protocol and function.
#[derive(Clone, Debug, Default)]
struct Buckets {
    modbus_fc: Vec<Vec<u32>>,
    modbus_any: Vec<u32>,
    opcua_service: Vec<(u32, Vec<u32>)>,
    opcua_any: Vec<u32>,
}

impl Buckets {
    /// Buckets of the rules `keep` accepts (positions in `rules`, ascending in every bucket).
    fn build(rules: &[Rule], keep: impl Fn(&Rule) -> bool) -> Self {
        let mut ix = Buckets {
            modbus_fc: vec![Vec::new(); 256],
            ..Buckets::default()
        };
        let mut services: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for (i, r) in rules.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { break };
            if !keep(r) {
                continue;
            }
            match (r.matcher.proto(), r.matcher.function_keys()) {
                (AppProto::Modbus, None) => ix.modbus_any.push(i),
                (AppProto::Modbus, Some(codes)) => {
                    for c in codes {
                        if let Some(b) = usize::try_from(c)
                            .ok()
                            .and_then(|c| ix.modbus_fc.get_mut(c))
                        {
                            b.push(i);
                        }
                    }
                }
                (AppProto::Opcua, None) => ix.opcua_any.push(i),
                (AppProto::Opcua, Some(codes)) => {
                    for c in codes {
                        services.entry(c).or_default().push(i);
                    }
                }
            }
        }
        ix.opcua_service = services.into_iter().collect();
        ix
    }

    #[inline]
    fn candidates(&self, proto: AppProto, code: u32) -> (&[u32], &[u32]) {
        match proto {
            AppProto::Modbus => (
                usize::try_from(code)
                    .ok()
                    .and_then(|c| self.modbus_fc.get(c))
                    .map_or(&[][..], Vec::as_slice),
                &self.modbus_any,
            ),
            AppProto::Opcua => (
                self.opcua_service
                    .binary_search_by_key(&code, |(c, _)| *c)
                    .ok()
                    .and_then(|i| self.opcua_service.get(i))
                    .map_or(&[][..], |(_, v)| v.as_slice()),
                &self.opcua_any,
            ),
        }
    }
}

/// The buckets for every event, and those for events that ended normally.
#[derive(Clone, Debug, Default)]
pub struct Index {
    all: Buckets,
    ok: Buckets,
}

impl Index {
    /// Builds the index of `rules` (positions in that slice, ascending in every bucket).
    pub fn build(rules: &[Rule]) -> Self {
        Index {
            all: Buckets::build(rules, |_| true),
            ok: Buckets::build(rules, |r| r.matcher.can_match_ok()),
        }
    }

    /// The two candidate lists of an event: its function's bucket and the wildcard bucket.
    #[inline]
    pub fn candidates(&self, ev: &IcsEvent) -> (&[u32], &[u32]) {
        self.candidates_of(
            ev.proto,
            ev.function.code,
            matches!(ev.outcome, Outcome::Ok),
        )
    }

    /// The candidate lists of events of a protocol and function, that ended normally or
    /// not: those of every such event.
    #[inline]
    pub fn candidates_of(&self, proto: AppProto, code: u32, ok: bool) -> (&[u32], &[u32]) {
        if ok {
            self.ok.candidates(proto, code)
        } else {
            self.all.candidates(proto, code)
        }
    }
}

/// Iterates two ascending lists as one ascending list (no duplicates across them by
/// construction: a rule is either in function buckets or in the wildcard one).
#[derive(Debug)]
pub struct Merge<'a> {
    a: &'a [u32],
    b: &'a [u32],
}

impl<'a> Merge<'a> {
    /// Merges `a` and `b`.
    pub fn new((a, b): (&'a [u32], &'a [u32])) -> Self {
        Merge { a, b }
    }
}

impl Iterator for Merge<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match (self.a.split_first(), self.b.split_first()) {
            (Some((x, ra)), Some((y, rb))) => {
                if x <= y {
                    self.a = ra;
                    Some(*x)
                } else {
                    self.b = rb;
                    Some(*y)
                }
            }
            (Some((x, ra)), None) => {
                self.a = ra;
                Some(*x)
            }
            (None, Some((y, rb))) => {
                self.b = rb;
                Some(*y)
            }
            (None, None) => None,
        }
    }
}
