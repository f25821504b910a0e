//! Counters of a run, printed by `otwatch stats`.
