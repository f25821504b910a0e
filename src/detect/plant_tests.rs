//! Synthetic plant tests.
