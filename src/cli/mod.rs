//! The `otwatch` command line: argument parsing, output formats and exit codes.
//!
//! Exit codes: 0 success, 1 internal error, 2 bad input (missing file, not a capture,
//! bad arguments).

pub mod analyze;
mod table;

use crate::capture::{CaptureError, CaptureFile};
use crate::event::IcsEvent;
use crate::pipeline::{self, PipelineConfig};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// otwatch: a passive security sensor for industrial networks (Modbus/TCP, OPC UA).
#[derive(Debug, Parser)]
#[command(name = "otwatch", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). OTWATCH_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Read pcap and pcapng files with plain reads instead of a memory map (same output; for
    /// files on a share that may go away while they are read).
    #[arg(long, global = true)]
    pub no_mmap: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the ICS events (one per operation) found in captures.
    Inspect {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Threads: above 1, N - 1 workers decode, reassemble and parse while the main thread
        /// merges their events and consumes them (two threads: 1.55x one on a polling plant's
        /// capture; see README). Same output for any N.
        #[arg(long, default_value_t = 1, value_name = "N")]
        threads: usize,
        /// pcap or pcapng files, read in order as one capture.
        #[arg(required = true, value_name = "PCAP")]
        pcaps: Vec<PathBuf>,
    },
    /// Print counters: packets, decode errors, flows, reassembly, protocol messages.
    Stats {
        /// Print one JSON object instead of `key value` lines.
        #[arg(long)]
        json: bool,
        /// Threads: above 1, N - 1 workers decode, reassemble and parse while the main thread
        /// merges their events and consumes them (two threads: 1.55x one on a polling plant's
        /// capture; see README). Same output for any N.
        #[arg(long, default_value_t = 1, value_name = "N")]
        threads: usize,
        /// pcap or pcapng files, read in order as one capture.
        #[arg(required = true, value_name = "PCAP")]
        pcaps: Vec<PathBuf>,
    },
    /// Learn a baseline of normal plant behaviour from captures.
    Learn {
        /// Where to write the baseline (JSON, reviewable and editable).
        #[arg(short, long, value_name = "BASELINE")]
        output: PathBuf,
        /// Also train the machine-learning model (k-means over per-channel windows) into the
        /// baseline; `detect` then adds its anomaly score as an extra detector.
        #[arg(long)]
        ml: bool,
        /// Threads: above 1, N - 1 workers decode, reassemble and parse while the main thread
        /// merges their events and consumes them (two threads: 1.55x one on a polling plant's
        /// capture; see README). Same output for any N.
        #[arg(long, default_value_t = 1, value_name = "N")]
        threads: usize,
        /// pcap or pcapng files of normal traffic, read in order as one capture.
        #[arg(required = true, value_name = "PCAP")]
        pcaps: Vec<PathBuf>,
    },
    /// Write alerts (JSON lines) for what deviates from a baseline or breaks the protocol.
    Detect {
        /// Baseline from `otwatch learn`. Without one, only checks that need none run.
        #[arg(long, value_name = "BASELINE")]
        baseline: Option<PathBuf>,
        /// Write alerts to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Rule file or directory (repeatable); default: the shipped pack built into otwatch.
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
        /// Run no rules.
        #[arg(long, conflicts_with = "rules")]
        no_rules: bool,
        /// Threads: above 1, N - 1 workers decode, reassemble and parse while the main thread
        /// merges their events and consumes them (two threads: 1.55x one on a polling plant's
        /// capture; see README). Same output for any N.
        #[arg(long, default_value_t = 1, value_name = "N")]
        threads: usize,
        /// pcap or pcapng files, read in order as one capture.
        #[arg(required = true, value_name = "PCAP")]
        pcaps: Vec<PathBuf>,
    },
    /// Learn on the first part of captures, check the rest, and print a summary for a person.
    Audit {
        /// How much to learn on: capture time (90s, 10m, 1h) or a fraction (0.3, 30%).
        #[arg(long, value_name = "SPAN", default_value = "30%")]
        learn_for: analyze::LearnSpan,
        /// Also write the alerts as JSON lines to this file.
        #[arg(long, value_name = "FILE")]
        alerts: Option<PathBuf>,
        /// Also train and apply the machine-learning model.
        #[arg(long)]
        ml: bool,
        /// Rule file or directory (repeatable); default: the shipped pack built into otwatch.
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
        /// Run no rules.
        #[arg(long, conflicts_with = "rules")]
        no_rules: bool,
        /// Threads: above 1, N - 1 workers decode, reassemble and parse while the main thread
        /// merges their events and consumes them (two threads: 1.55x one on a polling plant's
        /// capture; see README). Same output for any N.
        #[arg(long, default_value_t = 1, value_name = "N")]
        threads: usize,
        /// pcap or pcapng files, read in order as one capture.
        #[arg(required = true, value_name = "PCAP")]
        pcaps: Vec<PathBuf>,
    },
    /// Rule files: check them.
    Rules {
        /// What to do with rules.
        #[command(subcommand)]
        command: RulesCommand,
    },
}

/// Subcommands of `otwatch rules`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate rule files and directories: one `file:line:col: message` per error, a notice
    /// per disabled rule and a summary; exit 1 on any error.
    Check {
        /// Rule files or directories (`*.toml`, `*.rules`).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

/// Output format of `inspect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// A table for people.
    Table,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    crate::capture::set_mapping(!cli.no_mmap);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A capture error's message is complete (file and reason); others get their chain.
            if let Some(ce) = e.downcast_ref::<CaptureError>() {
                eprintln!("otwatch: error: {ce}");
                ExitCode::from(2)
            } else if let Some(bad) = e.downcast_ref::<analyze::BadInput>() {
                eprintln!("otwatch: error: {bad}");
                ExitCode::from(2)
            } else {
                eprintln!("otwatch: error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OTWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// A progress bar over the total size of the inputs, shown only when stderr is a terminal
/// and the input is large enough to wait for.
fn progress_for(files: &[CaptureFile]) -> Option<(ProgressBar, Vec<u64>)> {
    const SHOW_ABOVE: u64 = 32 * 1024 * 1024;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f.path()).map(|m| m.len()).unwrap_or(0))
        .collect();
    let total: u64 = sizes.iter().sum();
    if total < SHOW_ABOVE {
        return None;
    }
    let pb = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    ) {
        pb.set_style(style);
    }
    // Offsets of each file's start in the total.
    let mut starts = Vec::with_capacity(sizes.len());
    let mut acc = 0;
    for s in sizes {
        starts.push(acc);
        acc += s;
    }
    Some((pb, starts))
}

/// Writes to stdout, treating a closed pipe (`otwatch inspect x | head`) as a normal end.
struct Out {
    w: std::io::BufWriter<std::io::Stdout>,
    closed: bool,
    error: Option<std::io::Error>,
}

impl Out {
    fn new() -> Self {
        Out {
            w: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            closed: false,
            error: None,
        }
    }

    fn line(&mut self, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
        if self.closed {
            return;
        }
        if let Err(e) = f(&mut self.w) {
            self.closed = true;
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                self.error = Some(e);
            }
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if !self.closed {
            if let Err(e) = self.w.flush() {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("writing to stdout");
                }
            }
        }
        match self.error {
            Some(e) => Err(e).context("writing to stdout"),
            None => Ok(()),
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inspect {
            format,
            threads,
            pcaps,
        } => {
            let mut files = pipeline::open_all(&pcaps)?;
            let mut out = Out::new();
            let mut table = table::Table::new();
            if format == Format::Table {
                out.line(|w| writeln!(w, "{}", table::Table::header()));
            }
            if format == Format::Json && threads > 1 {
                // Serialise on the workers; this thread only writes, in order.
                let map = |e: &IcsEvent| {
                    let mut v = Vec::with_capacity(512);
                    let _ = serde_json::to_writer(&mut v, e);
                    v.push(b'\n');
                    v
                };
                with_progress(&mut files, |files, mut progress| {
                    crate::shard::run_map(
                        PipelineConfig::default(),
                        threads,
                        files,
                        &map,
                        &mut |v: Vec<u8>| out.line(|w| w.write_all(&v)),
                        &mut progress,
                    )
                })?;
            } else {
                let mut emit = |e: &IcsEvent| match format {
                    Format::Json => out.line(|w| {
                        serde_json::to_writer(&mut *w, e)?;
                        w.write_all(b"\n")
                    }),
                    Format::Table => {
                        let row = table.row(e);
                        out.line(|w| writeln!(w, "{row}"));
                    }
                };
                run_with_progress(&mut files, threads, &mut emit)?;
            }
            out.finish()?;
        }
        Command::Stats {
            json,
            threads,
            pcaps,
        } => {
            let mut files = pipeline::open_all(&pcaps)?;
            // Events are dropped where they are made.
            let stats = with_progress(&mut files, |files, mut progress| {
                crate::shard::run_map(
                    PipelineConfig::default(),
                    threads,
                    files,
                    &|_| (),
                    &mut |()| {},
                    &mut progress,
                )
            })?;
            let mut out = Out::new();
            if json {
                let j = stats.to_json();
                out.line(|w| {
                    serde_json::to_writer_pretty(&mut *w, &j)?;
                    w.write_all(b"\n")
                });
            } else {
                let t = stats.to_text();
                out.line(|w| w.write_all(t.as_bytes()));
            }
            out.finish()?;
        }
        Command::Learn {
            output,
            ml,
            threads,
            pcaps,
        } => analyze::learn(&pcaps, &output, ml, threads)?,
        Command::Detect {
            baseline,
            output,
            rules,
            no_rules,
            threads,
            pcaps,
        } => analyze::detect(
            &pcaps,
            baseline.as_deref(),
            output.as_deref(),
            &analyze::RuleChoice::new(rules, no_rules),
            threads,
        )?,
        Command::Audit {
            learn_for,
            alerts,
            ml,
            rules,
            no_rules,
            threads,
            pcaps,
        } => {
            let text = analyze::audit(
                &pcaps,
                learn_for,
                alerts.as_deref(),
                ml,
                &analyze::RuleChoice::new(rules, no_rules),
                threads,
            )?;
            let mut out = Out::new();
            out.line(|w| w.write_all(text.as_bytes()));
            out.finish()?;
        }
        Command::Rules {
            command: RulesCommand::Check { paths },
        } => {
            let (text, ok) = analyze::rules_check(&paths)?;
            let mut out = Out::new();
            out.line(|w| w.write_all(text.as_bytes()));
            out.finish()?;
            if !ok {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_with_progress(
    files: &mut [CaptureFile],
    threads: usize,
    emit: &mut impl FnMut(&IcsEvent),
) -> anyhow::Result<crate::stats::RunStats> {
    with_progress(files, |files, mut progress| {
        crate::shard::run(
            PipelineConfig::default(),
            threads,
            files,
            emit,
            &mut progress,
        )
    })
}

/// Runs `run` with a progress bar over the inputs (when stderr is a terminal).
fn with_progress(
    files: &mut [CaptureFile],
    run: impl FnOnce(
        &mut [CaptureFile],
        &mut dyn FnMut(usize, u64),
    ) -> Result<crate::stats::RunStats, CaptureError>,
) -> anyhow::Result<crate::stats::RunStats> {
    let bar = progress_for(files);
    let mut progress = |i: usize, pos: u64| {
        if let Some((pb, starts)) = &bar {
            pb.set_position(starts.get(i).copied().unwrap_or(0) + pos);
        }
    };
    let stats = run(files, &mut progress)?;
    if let Some((pb, _)) = bar {
        pb.finish_and_clear();
    }
    Ok(stats)
}
