//! `make bench`: measures dealbridge against the local sandbox and writes `BENCHMARKS.md`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use dealbridge_bench::report::{Comparison, Context as ReportContext, render, summary};
use dealbridge_bench::{Options, run};

#[derive(Parser, Debug)]
#[command(about = "Measure dealbridge against the local sandbox and write BENCHMARKS.md")]
struct Args {
    /// Latency added to every answer of every fake, in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Timed runs per deal (default 20; 3 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Deals in the burst (default 1000; 40 with --quick; 0 for none).
    #[arg(long)]
    burst: Option<usize>,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Small numbers, for a smoke test.
    #[arg(long)]
    quick: bool,
    /// Where the release binaries are (default: this program's directory).
    #[arg(long)]
    functions_dir: Option<PathBuf>,
    /// Do not measure the function binaries.
    #[arg(long)]
    no_functions: bool,
    /// Timed starts per function (default 10; 3 with --quick).
    #[arg(long)]
    starts: Option<usize>,
    /// Invocations per function for its peak RSS (default 200; 20 with --quick; 0 for none).
    #[arg(long)]
    load: Option<usize>,
    /// AB events in the billing sync's backlog (default 10000; 1000 with --quick; 0 for none).
    #[arg(long)]
    backlog: Option<usize>,
    /// Only the one-site burst (not the one with half its deals on a second AB site).
    #[arg(long)]
    one_site: bool,
    /// Another build to compare with, as LABEL=DIR (DIR holds its binaries and its `bench`);
    /// repeatable.
    #[arg(long = "compare", value_name = "LABEL=DIR")]
    compare: Vec<String>,
    /// Print this run's summary as JSON on stdout instead of writing the report.
    #[arg(long)]
    summary_json: bool,
}

fn options(args: &Args) -> anyhow::Result<Options> {
    let latency = Duration::from_millis(args.latency_ms);
    let mut o = if args.quick {
        Options::quick(latency)
    } else {
        Options::full(latency)
    };
    if let Some(r) = args.runs {
        o.runs = r;
    }
    if let Some(b) = args.burst {
        o.burst = b;
    }
    if let Some(s) = args.starts {
        o.starts = s;
    }
    if let Some(b) = args.backlog {
        o.backlog = b;
    }
    if let Some(l) = args.load {
        o.load = l;
    }
    o.two_site_burst = !args.one_site;
    if !args.no_functions {
        let dir = match &args.functions_dir {
            Some(d) => d.clone(),
            None => std::env::current_exe()
                .context("locating this program")?
                .parent()
                .context("this program has no directory")?
                .to_path_buf(),
        };
        o.functions_dir = Some(dir);
    }
    Ok(o)
}

/// Runs the other build's benchmark with the same numbers and reads its summary.
fn compare(spec: &str, o: &Options) -> anyhow::Result<Comparison> {
    let Some((label, dir)) = spec.split_once('=') else {
        bail!("--compare takes LABEL=DIR, got {spec:?}");
    };
    let bench = PathBuf::from(dir).join("bench");
    eprintln!("bench: comparing with {label}: {}", bench.display());
    let output = std::process::Command::new(&bench)
        .args([
            "--summary-json",
            "--latency-ms",
            &o.latency.as_millis().to_string(),
            "--runs",
            &o.runs.to_string(),
            "--burst",
            &o.burst.to_string(),
            "--starts",
            &o.starts.to_string(),
            "--load",
            "0",
            "--one-site",
            "--functions-dir",
            dir,
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", bench.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", bench.display(), output.status);
    }
    let summary = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading the summary of {}", bench.display()))?;
    Ok(Comparison {
        label: label.to_string(),
        dir: dir.to_string(),
        summary,
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let o = options(&args)?;
    let results = run(&o).await?;
    if args.summary_json {
        println!("{}", summary(&results));
        return Ok(());
    }
    let comparisons = args
        .compare
        .iter()
        .map(|spec| compare(spec, &o))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = render(&results, &ReportContext::here(command), &comparisons);
    std::fs::write(&args.out, report).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("bench: wrote {}", args.out.display());
    Ok(())
}
