//! Per-direction TCP reassembly with bounded buffering.
