//! `learn`, `detect` and `audit`: baselines and alerts from captures.

use crate::alert::{Alert, AlertWriter};
use crate::baseline::{Baseline, LearnConfig, Learner};
use crate::capture::CaptureFile;
use crate::detect::ml::MlConfig;
use crate::detect::{DetectConfig, Engine};
use crate::event::IcsEvent;
use crate::pipeline::{self, PipelineConfig};
use crate::rules::detector::RulesDetector;
use crate::rules::{self, RuleSet};
use crate::shard;
use crate::stats::RunStats;
use crate::time::Timestamp;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which rules `detect` and `audit` run.
#[derive(Clone, Debug)]
pub struct RuleChoice {
    paths: Vec<PathBuf>,
    off: bool,
}

impl RuleChoice {
    /// `--rules PATH...` (empty: the shipped pack) or `--no-rules`.
    pub fn new(paths: Vec<PathBuf>, no_rules: bool) -> Self {
        RuleChoice {
            paths,
            off: no_rules,
        }
    }

    /// No rules at all.
    pub fn none() -> Self {
        RuleChoice {
            paths: Vec::new(),
            off: true,
        }
    }

    /// Loads the chosen rules; any error in them is bad input (exit 2), with every position.
    fn load(&self) -> anyhow::Result<Option<Arc<RuleSet>>> {
        if self.off {
            return Ok(None);
        }
        let sources = if self.paths.is_empty() {
            rules::embedded_pack()
        } else {
            rules::read_paths(&self.paths).map_err(|e| BadInput(e.to_string()))?
        };
        let report = rules::load(&sources);
        if !report.errors.is_empty() {
            let lines: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
            bail!(BadInput(format!(
                "rules have errors (see `otwatch rules check`):\n{}",
                lines.join("\n")
            )));
        }
        for n in &report.notices {
            tracing::info!("{n}");
        }
        let skipped = report
            .notices
            .iter()
            .filter(|n| n.message.starts_with("Suricata rule not loaded"))
            .count();
        if skipped > 0 {
            eprintln!(
                "otwatch: {skipped} Suricata rule{} not loaded (`otwatch rules check` says why)",
                if skipped == 1 { "" } else { "s" }
            );
        }
        Ok(Some(Arc::new(report.set)))
    }
}

/// Adds the rules detector to `engine` when there are rules.
fn add_rules(engine: &mut Engine, set: Option<&Arc<RuleSet>>) {
    if let Some(set) = set.filter(|s| !s.is_empty()) {
        engine.add_detector(Box::new(RulesDetector::new(Arc::clone(set))));
    }
}

/// `otwatch rules check PATH...`: the report text and whether the rules are free of errors.
pub fn rules_check(paths: &[PathBuf]) -> anyhow::Result<(String, bool)> {
    let sources = rules::read_paths(paths).map_err(|e| BadInput(e.to_string()))?;
    let report = rules::load(&sources);
    let mut o = String::new();
    for e in &report.errors {
        let _ = writeln!(o, "{e}");
    }
    for n in &report.notices {
        let _ = writeln!(o, "{n}");
    }
    let enabled = report.set.rules.len();
    let _ = writeln!(
        o,
        "{} file{}: {} rule{} loaded ({enabled} enabled, {} disabled), {} error{}",
        report.files,
        if report.files == 1 { "" } else { "s" },
        enabled + report.set.disabled,
        if enabled + report.set.disabled == 1 {
            ""
        } else {
            "s"
        },
        report.set.disabled,
        report.errors.len(),
        if report.errors.len() == 1 { "" } else { "s" },
    );
    Ok((o, report.errors.is_empty()))
}

/// How much of the input `audit` learns on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LearnSpan {
    /// The first this many seconds of capture time.
    Seconds(f64),
    /// This fraction (0..1) of the capture's time span.
    Fraction(f64),
}

impl std::str::FromStr for LearnSpan {
    type Err = String;

    /// `10m`, `90s`, `1h`, `500ms` (capture time), or `0.3` / `30%` (fraction of the span).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad =
            || format!("'{s}' is neither a duration (90s, 10m, 1h) nor a fraction (0.3, 30%)");
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            return if v > 0.0 && v < 100.0 {
                Ok(LearnSpan::Fraction(v / 100.0))
            } else {
                Err(bad())
            };
        }
        let units: [(&str, f64); 4] = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)];
        for (suffix, mult) in units {
            if let Some(n) = s.strip_suffix(suffix) {
                if let Ok(v) = n.trim().parse::<f64>() {
                    return if v > 0.0 && v.is_finite() {
                        Ok(LearnSpan::Seconds(v * mult))
                    } else {
                        Err(bad())
                    };
                }
            }
        }
        match s.parse::<f64>() {
            Ok(v) if v > 0.0 && v < 1.0 => Ok(LearnSpan::Fraction(v)),
            _ => Err(bad()),
        }
    }
}

/// Runs the pipeline over `pcaps`, handing each event to `f`.
fn events(
    pcaps: &[PathBuf],
    threads: usize,
    f: &mut impl FnMut(&IcsEvent),
) -> anyhow::Result<RunStats> {
    let mut files = pipeline::open_all(pcaps)?;
    Ok(shard::run(
        PipelineConfig::default(),
        threads,
        &mut files,
        f,
        &mut |_, _| {},
    )?)
}

/// `otwatch learn -o BASELINE PCAP...`.
pub fn learn(pcaps: &[PathBuf], output: &Path, ml: bool, threads: usize) -> anyhow::Result<()> {
    let mut learner = Learner::new(learn_config(ml));
    let stats = events(pcaps, threads, &mut |e| learner.observe(e))?;
    let baseline = learner.finish().context("building the baseline")?;
    baseline
        .save(output)
        .with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "otwatch: learned {} assets and {} channels from {} events ({} packets) into {}",
        baseline.assets.len(),
        baseline.channels.len(),
        stats.events,
        stats.packets,
        output.display()
    );
    Ok(())
}

/// Learning settings: the defaults, with the ML model trained when asked for.
fn learn_config(ml: bool) -> LearnConfig {
    LearnConfig {
        ml: ml.then(MlConfig::default),
        ..LearnConfig::default()
    }
}

/// Where alerts go: stdout or a file, as JSON lines.
fn alert_writer(output: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

/// Writes `alerts` (emptying the list) as JSON lines, each written by hand into one reused
/// buffer ([`AlertWriter`]: the bytes `serde_json` writes).
fn write_alerts(w: &mut dyn Write, alerts: &mut Vec<Alert>) -> std::io::Result<()> {
    let mut json = AlertWriter::new();
    let mut line = String::with_capacity(2048);
    for a in alerts.drain(..) {
        line.clear();
        json.write(&a, &mut line);
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// The detection counters of a run, as `(name, count)`: the engine's (raised, suppressed, the
/// aggregator's and each detector's), then the engine's numbering caches
/// (`engine.channels_unnumbered`, `engine.requests_unnumbered`: their events were looked up
/// without a number, no check skipped).
fn detection_counters(engine: &Engine) -> Vec<(String, u64)> {
    let mut counters = engine.counters();
    counters.push((
        "engine.channels_unnumbered".to_string(),
        engine.channels_unnumbered,
    ));
    counters.push((
        "engine.requests_unnumbered".to_string(),
        engine.requests_unnumbered,
    ));
    counters
}

/// What [`report_counters`] logs: the line of every counter, and the warnings (counter,
/// count, message) for the caps that were reached.
fn counter_report(counters: &[(String, u64)]) -> (String, Vec<(&str, u64, &'static str)>) {
    let line: Vec<String> = counters.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let mut warnings = Vec::new();
    for (k, n) in counters {
        if *n == 0 {
            continue;
        }
        let msg = if k.ends_with("dropped") {
            "a detection cap was reached: some checks were skipped"
        } else if k.ends_with("closed_early") {
            "the aggregation table was full: summaries of the oldest episodes came out early"
        } else if k.ends_with("unnumbered") {
            "the engine's numbering was full: more lookups, no check skipped"
        } else {
            continue;
        };
        warnings.push((k.as_str(), *n, msg));
    }
    (line.join(", "), warnings)
}

/// Logs the detection counters (`-v`), and warns when a detector's cap made it skip checks
/// (or a cache or the aggregation table was full).
fn report_counters(engine: &Engine) {
    let counters = detection_counters(engine);
    let (line, warnings) = counter_report(&counters);
    tracing::info!("detection counters: {line}");
    for (k, n, msg) in warnings {
        tracing::warn!(counter = %k, count = n, "{msg}");
    }
}

/// `otwatch detect [--baseline B] [--output F] [--rules PATH]... PCAP...`.
pub fn detect(
    pcaps: &[PathBuf],
    baseline: Option<&Path>,
    output: Option<&Path>,
    rules: &RuleChoice,
    threads: usize,
) -> anyhow::Result<()> {
    // The inputs are checked before the output is created, in this order: baseline, rules,
    // captures. With several threads the pipeline runs on workers and detection stays on this
    // thread, which merges their events (on two cores one packet worker and detection balance
    // the load, with no copy of the events and no merge of alerts); the captures are then
    // opened first, so that the workers start while this thread loads the baseline and the
    // rules. A capture that does not open takes the order above, for the same error.
    let early = if threads > 1 {
        pipeline::open_all(pcaps).ok()
    } else {
        None
    };
    let (mut files, mut inputs) = match early {
        Some(files) => (files, None),
        None => {
            let inputs = detect_inputs(baseline, rules)?;
            (pipeline::open_all(pcaps)?, Some(inputs))
        }
    };
    let setup = || -> anyhow::Result<Detection> {
        let (baseline, rule_set) = match inputs.take() {
            Some(i) => i,
            None => detect_inputs(baseline, rules)?,
        };
        let w = alert_writer(output)?;
        let mut engine = Engine::new(baseline, DetectConfig::default());
        add_rules(&mut engine, rule_set.as_ref());
        Ok(Detection {
            engine,
            w,
            alerts: Vec::new(),
            io_err: None,
        })
    };
    let (_, mut d) = shard::run_with(
        PipelineConfig::default(),
        threads,
        &mut files,
        setup,
        &mut |d, e| d.on_event(e),
        &mut |_, _| {},
    )?;
    d.engine.finish(&mut d.alerts);
    report_counters(&d.engine);
    let mut io_err = d.io_err;
    if io_err.is_none() {
        io_err = write_alerts(&mut d.w, &mut d.alerts).err();
    }
    if io_err.is_none() {
        io_err = d.w.flush().err();
    }
    // The engine's tables (the baseline's, its detectors' state) go with the process: freeing
    // them one by one took ~1 % of a run. Everything it owes is out (alerts written, counters
    // reported).
    std::mem::forget(d.engine);
    match io_err {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing alerts"),
        _ => Ok(()),
    }
}

/// The baseline (bad: exit code 2) and the rules of `detect`.
fn detect_inputs(
    baseline: Option<&Path>,
    rules: &RuleChoice,
) -> anyhow::Result<(Option<Baseline>, Option<Arc<RuleSet>>)> {
    let baseline = match baseline {
        Some(p) => Some(Baseline::load(p).map_err(|e| anyhow::anyhow!(BadInput(e.to_string())))?),
        None => None,
    };
    Ok((baseline, rules.load()?))
}

/// `detect`'s consumer of events: the engine and where its alerts go.
struct Detection {
    engine: Engine,
    w: Box<dyn Write>,
    alerts: Vec<Alert>,
    /// The first error writing alerts (later alerts are dropped).
    io_err: Option<std::io::Error>,
}

impl Detection {
    /// Runs detection on one event and writes its alerts.
    #[inline]
    fn on_event(&mut self, e: &IcsEvent) {
        self.engine.on_event(e, &mut self.alerts);
        if !self.alerts.is_empty() {
            if self.io_err.is_none() {
                self.io_err = write_alerts(&mut self.w, &mut self.alerts).err();
            }
            self.alerts.clear();
        }
    }
}

/// A baseline that cannot be loaded: bad input, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// First and last capture timestamps over all files (a quick pass that decodes nothing).
fn time_span(pcaps: &[PathBuf]) -> anyhow::Result<Option<(Timestamp, Timestamp)>> {
    let mut span: Option<(Timestamp, Timestamp)> = None;
    for p in pcaps {
        let mut cap = CaptureFile::open(p)?;
        while let Some(pkt) = cap.next_packet()? {
            span = Some(match span {
                None => (pkt.ts, pkt.ts),
                Some((a, b)) => (a.min(pkt.ts), b.max(pkt.ts)),
            });
        }
    }
    Ok(span)
}

/// `otwatch audit [--learn-for SPAN] [--alerts FILE] PCAP...`: learn on the first part, detect
/// on the rest, print a summary for a person.
pub fn audit(
    pcaps: &[PathBuf],
    span: LearnSpan,
    alerts_out: Option<&Path>,
    ml: bool,
    rules: &RuleChoice,
    threads: usize,
) -> anyhow::Result<String> {
    let rule_set = rules.load()?;
    let Some((first, last)) = time_span(pcaps)? else {
        bail!(BadInput("the captures hold no packets".into()))
    };
    let learn_secs = match span {
        LearnSpan::Seconds(s) => s,
        LearnSpan::Fraction(f) => (last.as_nanos() - first.as_nanos()) as f64 / 1e9 * f,
    };
    let cut = Timestamp::from_micros(first.as_micros() + (learn_secs * 1e6) as i64);
    let mut learner = Some(Learner::new(learn_config(ml)));
    let mut engine: Option<Engine> = None;
    let mut learn_events = 0u64;
    let mut detect_events = 0u64;
    let mut all_alerts: Vec<Alert> = Vec::new();
    let mut build_err: Option<anyhow::Error> = None;
    let mut batch = Vec::new();
    let stats = events(pcaps, threads, &mut |e| {
        if e.ts < cut {
            if let Some(l) = learner.as_mut() {
                l.observe(e);
                learn_events += 1;
                return;
            }
        }
        if engine.is_none() {
            let b = learner.take().map(|l| l.finish());
            let mut en = match b {
                Some(Ok(b)) => Engine::new(Some(b), DetectConfig::default()),
                Some(Err(err)) => {
                    build_err.get_or_insert(err.into());
                    Engine::new(None, DetectConfig::default())
                }
                None => Engine::new(None, DetectConfig::default()),
            };
            add_rules(&mut en, rule_set.as_ref());
            engine = Some(en);
        }
        if let Some(en) = engine.as_mut() {
            en.on_event(e, &mut batch);
            detect_events += 1;
            all_alerts.append(&mut batch);
        }
    })?;
    if let Some(e) = build_err {
        return Err(e.context("building the baseline"));
    }
    let baseline = match (engine.as_mut(), learner.take()) {
        (Some(en), _) => {
            en.finish(&mut all_alerts);
            report_counters(en);
            en.baseline().cloned()
        }
        // Everything fell in the learning span: nothing to detect on.
        (None, Some(l)) => Some(l.finish().context("building the baseline")?),
        (None, None) => None,
    };
    if let Some(p) = alerts_out {
        let mut w = alert_writer(Some(p))?;
        let mut copy = all_alerts.clone();
        write_alerts(&mut w, &mut copy)
            .and_then(|_| w.flush())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(summary(
        pcaps,
        &stats,
        first,
        last,
        cut,
        learn_events,
        detect_events,
        baseline.as_ref(),
        rule_set.as_deref(),
        &all_alerts,
    ))
}

#[allow(clippy::too_many_arguments)]
fn summary(
    pcaps: &[PathBuf],
    stats: &RunStats,
    first: Timestamp,
    last: Timestamp,
    cut: Timestamp,
    learn_events: u64,
    detect_events: u64,
    baseline: Option<&Baseline>,
    rule_set: Option<&RuleSet>,
    alerts: &[Alert],
) -> String {
    let mut o = String::new();
    let names: Vec<String> = pcaps.iter().map(|p| p.display().to_string()).collect();
    let _ = writeln!(o, "otwatch audit of {}", names.join(", "));
    let _ = writeln!(
        o,
        "  {} packets, {} flows, {} Modbus and {} OPC UA messages, {} ICS operations",
        stats.packets,
        stats.flows.created,
        stats.proto.modbus.pdus,
        stats.proto.opcua.messages,
        stats.events
    );
    let _ = writeln!(
        o,
        "  learned on {first} .. {} ({learn_events} operations)",
        cut.min(last)
    );
    let _ = writeln!(
        o,
        "  checked   {} .. {last} ({detect_events} operations)",
        cut.min(last)
    );
    if let Some(r) = rule_set {
        let fired = alerts
            .iter()
            .filter(|a| a.otwatch.detector == "rules")
            .count();
        let _ = writeln!(
            o,
            "  rules     {} enabled, {} disabled, {fired} alerts",
            r.rules.len(),
            r.disabled
        );
    }
    if let Some(b) = baseline {
        let _ = writeln!(o, "\nAssets ({}):", b.assets.len());
        for a in &b.assets {
            let roles: Vec<&str> = a.roles.iter().map(String::as_str).collect();
            let mut line = format!("  {:<40} {}", a.ip.to_string(), roles.join(", "));
            if !a.server_ports.is_empty() {
                let ports: Vec<String> = a.server_ports.iter().map(u16::to_string).collect();
                let _ = write!(line, " (port {})", ports.join(", "));
            }
            for (k, vs) in &a.facts {
                let v: Vec<&str> = vs.iter().map(String::as_str).collect();
                let _ = write!(line, "; {k}: {}", v.join(" / "));
            }
            let _ = writeln!(o, "{line}");
        }
        let _ = writeln!(o, "\nChannels ({}):", b.channels.len());
        for c in &b.channels {
            let ops: Vec<&str> = c.operations.iter().map(|op| op.name.as_str()).collect();
            let periodic = c.polls.iter().filter(|p| p.periodic).count();
            let _ = writeln!(
                o,
                "  {} -> {} {} ({} operations, {} periodic polls): {}",
                c.client,
                c.server,
                c.proto,
                c.events,
                periodic,
                ops.join(", ")
            );
        }
    }
    let mut by_sev: BTreeMap<u8, usize> = BTreeMap::new();
    for a in alerts {
        *by_sev.entry(a.alert.severity).or_insert(0) += 1;
    }
    let sev_name = |s: u8| match s {
        1 => "high",
        2 => "medium",
        _ => "low",
    };
    let counts: Vec<String> = by_sev
        .iter()
        .map(|(s, n)| format!("{n} {}", sev_name(*s)))
        .collect();
    let _ = writeln!(
        o,
        "\nAlerts: {}{}",
        alerts.len(),
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        }
    );
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    sorted.sort_by_key(|a| (a.alert.severity, a.timestamp));
    for a in sorted {
        let agg = if a.otwatch.count > 1 {
            format!(" [x{}]", a.otwatch.count)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "  [{}] {} {}{}\n      {}",
            sev_name(a.alert.severity),
            a.timestamp,
            a.alert.signature,
            agg,
            a.otwatch.explanation
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learn_span_parses() {
        assert_eq!("10m".parse::<LearnSpan>(), Ok(LearnSpan::Seconds(600.0)));
        assert_eq!("90s".parse::<LearnSpan>(), Ok(LearnSpan::Seconds(90.0)));
        assert_eq!("1.5h".parse::<LearnSpan>(), Ok(LearnSpan::Seconds(5400.0)));
        assert_eq!("500ms".parse::<LearnSpan>(), Ok(LearnSpan::Seconds(0.5)));
        assert_eq!("0.3".parse::<LearnSpan>(), Ok(LearnSpan::Fraction(0.3)));
        assert_eq!("30%".parse::<LearnSpan>(), Ok(LearnSpan::Fraction(0.3)));
        for bad in ["", "x", "0", "1.5", "-3m", "100%", "nanm"] {
            assert!(bad.parse::<LearnSpan>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_engines_unnumbered_counters_are_reported() {
        // One channel with more distinct requests than the engine numbers per channel (64):
        // the rest are counted in engine.requests_unnumbered, which the report lists and warns
        // about (as a cost, not as skipped checks).
        use crate::detect::testkit::{read_hr, MASTER, PLC};
        let mut engine = Engine::new(None, DetectConfig::default());
        let mut out = Vec::new();
        for k in 0..70u32 {
            let ev = read_hr(i64::from(k), MASTER, PLC, 1, k * 10, &[1]);
            engine.on_event(&ev, &mut out);
        }
        engine.finish(&mut out);
        let counters = detection_counters(&engine);
        let get = |name: &str| counters.iter().find(|(k, _)| k == name).map(|(_, n)| *n);
        assert_eq!(get("engine.requests_unnumbered"), Some(6));
        assert_eq!(get("engine.channels_unnumbered"), Some(0));
        assert_eq!(get("aggregate.episodes_closed_early"), Some(0));
        let (line, warnings) = counter_report(&counters);
        assert!(line.contains("engine.requests_unnumbered 6"), "{line}");
        assert!(line.contains("engine.channels_unnumbered 0"), "{line}");
        assert_eq!(
            warnings,
            [(
                "engine.requests_unnumbered",
                6,
                "the engine's numbering was full: more lookups, no check skipped"
            )]
        );
    }

    #[test]
    fn caps_reached_are_warned_about() {
        let counters: Vec<(String, u64)> = [
            ("raised", 9),
            ("values.chans_dropped", 3),
            ("values.states_dropped", 0),
            ("aggregate.episodes_closed_early", 2),
        ]
        .iter()
        .map(|(k, n)| (k.to_string(), *n))
        .collect();
        let (line, warnings) = counter_report(&counters);
        assert_eq!(
            line,
            "raised 9, values.chans_dropped 3, values.states_dropped 0, \
             aggregate.episodes_closed_early 2"
        );
        let names: Vec<&str> = warnings.iter().map(|w| w.0).collect();
        assert_eq!(
            names,
            ["values.chans_dropped", "aggregate.episodes_closed_early"]
        );
        assert!(warnings[0].2.contains("some checks were skipped"));
    }
}
