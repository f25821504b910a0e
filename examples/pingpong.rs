//! The round trip of a cache line between two cores: two threads hand a counter back and forth
//! through one atomic, spinning. `otwatch detect --threads 2` passes every event from the
//! worker's core to the calling thread's and its slot back, so its speed follows this figure;
//! on a virtual machine it changes with where the host runs the virtual CPUs (measured here
//! between 90 and 1,160 ns within one hour). `benches/sidebyside.sh` prints it next to the
//! two-thread figures.
//!
//! `cargo run --release --example pingpong [ROUND_TRIPS]` prints `round trip N ns` (the
//! median of five trials of ROUND_TRIPS round trips, 200,000 by default).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The counter, alone in its cache line.
#[repr(align(128))]
struct Line(AtomicU64);

/// Nanoseconds per round trip over `n` round trips.
fn trial(n: u64) -> f64 {
    let line = Arc::new(Line(AtomicU64::new(0)));
    let peer = Arc::clone(&line);
    let pong = std::thread::spawn(move || {
        for i in 0..n {
            while peer.0.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            peer.0.store(2 * i + 2, Ordering::Release);
        }
    });
    let t0 = Instant::now();
    for i in 0..n {
        line.0.store(2 * i + 1, Ordering::Release);
        while line.0.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    let _ = pong.join();
    ns
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| format!("ROUND_TRIPS {a:?}: {e}"))?,
        None => 200_000,
    };
    let mut t: Vec<f64> = (0..5).map(|_| trial(n.max(1))).collect();
    t.sort_by(f64::total_cmp);
    println!("round trip {:.0} ns", t.get(2).copied().unwrap_or(0.0));
    Ok(())
}
