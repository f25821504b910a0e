//! The `otwatch` binary: a thin shell around [`otwatch::cli`].

fn main() -> std::process::ExitCode {
    otwatch::cli::main()
}
