//! Rule engines that turn events into alerts.

pub mod suricata;
