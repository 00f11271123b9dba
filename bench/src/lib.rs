//! dealbridge's benchmark: measured against the local sandbox with an injected latency on every
//! external call, written to `BENCHMARKS.md` (`make bench`).
//!
//! 1. API calls per seeded deal, per system, next to the fewest the flow needs.
//! 2. End-to-end latency per deal (intake to last write-back), next to its critical path.
//! 3. A burst of deals on concurrent workers, next to Maxio AB's 4 concurrent requests per site.
//! 4. Per function: binary size, init time and peak memory of the release binaries.

pub mod backlog;
pub mod burst;
pub mod calls;
pub mod clones;
pub mod deals;
pub mod functions;
pub mod per_deal;
pub mod report;
pub mod runtime_api;

use std::path::PathBuf;
use std::time::Duration;

use crate::burst::{BurstResult, Concurrency};
use crate::functions::FunctionsReport;
use crate::per_deal::{DealCalls, DealLatency};

/// The optimisation level this benchmark was built with (`opt-level` of its profile).
pub const OPT_LEVEL: &str = env!("BENCH_OPT_LEVEL");
/// The cargo profile this benchmark was built with.
pub const PROFILE: &str = env!("BENCH_PROFILE");

/// What to measure, and how much.
#[derive(Debug, Clone)]
pub struct Options {
    /// Latency added to every answer of every fake.
    pub latency: Duration,
    /// Timed runs per deal.
    pub runs: usize,
    /// Deals in the burst (0: no burst).
    pub burst: usize,
    /// Also run the burst with half its deals on a second AB site.
    pub two_site_burst: bool,
    /// Where the release binaries are (`None`: functions not measured).
    pub functions_dir: Option<PathBuf>,
    /// Timed starts per function.
    pub starts: usize,
    /// Invocations per function for the peak memory (0: not measured).
    pub load: usize,
    /// AB events in the billing sync's backlog (0: not measured).
    pub backlog: usize,
}

impl Options {
    /// The full benchmark.
    pub fn full(latency: Duration) -> Options {
        Options {
            latency,
            runs: 20,
            burst: 1000,
            two_site_burst: true,
            functions_dir: None,
            starts: 10,
            load: 200,
            backlog: 10_000,
        }
    }

    /// Small numbers, for a smoke test.
    pub fn quick(latency: Duration) -> Options {
        Options {
            latency,
            runs: 3,
            burst: 40,
            two_site_burst: true,
            functions_dir: None,
            starts: 3,
            load: 20,
            backlog: 1_000,
        }
    }
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct Results {
    pub options: Options,
    pub calls: Vec<DealCalls>,
    pub latency: Vec<DealLatency>,
    /// The volume deal without injected latency: what the code itself takes (every function and
    /// every fake, in one process).
    pub processing: Option<DealLatency>,
    pub bursts: Vec<BurstResult>,
    pub functions: Option<FunctionsReport>,
    pub backlog: Option<backlog::BacklogResult>,
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

/// The calls of every seeded deal (deterministic; no latency needed).
pub async fn measure_calls() -> anyhow::Result<Vec<DealCalls>> {
    let mut out = Vec::new();
    for kind in deals::seeded() {
        out.push(per_deal::measure_calls(&kind).await?);
    }
    Ok(out)
}

/// Runs everything `options` asks for.
pub async fn run(options: &Options) -> anyhow::Result<Results> {
    progress("counting the API calls of each seeded deal");
    let calls = measure_calls().await?;
    let mut latency = Vec::new();
    if options.runs > 0 {
        for kind in deals::seeded().into_iter().filter(|k| k.timed) {
            progress(&format!(
                "timing {} × {} ({} ms per external call)",
                kind.name,
                options.runs,
                options.latency.as_millis()
            ));
            latency.push(per_deal::measure_latency(&kind, options.latency, options.runs).await?);
        }
    }
    let mut processing = None;
    if options.runs > 0
        && let Some(volume) = deals::seeded().into_iter().find(|k| k.name == "volume")
    {
        progress(&format!("timing volume × {} without latency", options.runs));
        processing = Some(per_deal::measure_latency(&volume, Duration::ZERO, options.runs).await?);
    }
    let mut bursts = Vec::new();
    if options.burst > 0 {
        let concurrency = Concurrency::template()?;
        let mut runs = vec![false];
        if options.two_site_burst {
            runs.push(true);
        }
        for two_sites in runs {
            progress(&format!(
                "burst of {} deals on {} AB site(s), workers: {}",
                options.burst,
                if two_sites { 2 } else { 1 },
                concurrency.name
            ));
            let result = burst::run(
                options.burst,
                options.latency,
                concurrency.clone(),
                two_sites,
            )
            .await?;
            progress(&format!(
                "burst done in {:.1} s (AB phase {:.1} s, bound {:.1} s); slots held / requests in flight: {}",
                result.wall.as_secs_f64(),
                result.ab_phase.as_secs_f64(),
                result.bound().as_secs_f64(),
                result
                    .occupancy
                    .iter()
                    .zip(&result.sites)
                    .map(|(o, s)| format!(
                        "{} {:.2} / {:.2}, answers {:.1} ms",
                        s.site,
                        o.held,
                        o.in_flight,
                        o.answer_time.as_secs_f64() * 1000.0
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            bursts.push(result);
        }
    }
    let functions = match &options.functions_dir {
        Some(dir) => {
            progress(&format!("measuring the functions in {}", dir.display()));
            Some(functions::measure(dir, options.starts, options.load).await?)
        }
        None => None,
    };
    let backlog = if options.backlog > 0 {
        progress(&format!(
            "billing sync of a backlog of {} AB events",
            options.backlog
        ));
        let result = backlog::run(options.backlog).await?;
        progress(&format!(
            "backlog synced in {:.1} s: {} events, {} Opportunities written, {} Salesforce calls (target {})",
            result.wall.as_secs_f64(),
            result.read,
            result.written,
            result.salesforce_calls,
            result.target_calls
        ));
        Some(result)
    } else {
        None
    };
    Ok(Results {
        options: options.clone(),
        calls,
        latency,
        processing,
        bursts,
        functions,
        backlog,
    })
}
