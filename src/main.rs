//! The `otwatch` binary: a thin shell around [`otwatch::cli`].

/// The binary's allocator: mimalloc, not the C library's. Same output; on the side-by-side
/// capture a run is 6-12 % faster, on 100,000 concurrent flows 13-19 % (benches/README.md,
/// eighteenth pass). The library leaves the choice to whoever links it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    otwatch::cli::main()
}
