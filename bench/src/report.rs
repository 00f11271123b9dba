//! `BENCHMARKS.md`: the machine, the command, the tables, each target met or missed, and how it
//! was measured. Also a JSON summary, for comparing builds.

use std::fmt::Write as _;
use std::time::Duration;

use dealbridge::maxio::ab::MAX_CONCURRENT_REQUESTS;
use dealbridge_sandbox::maxio_ab::AbSettings;
use serde_json::{Value, json};

use crate::Results;
use crate::burst::BUDGET_TABLE_LATENCY;
use crate::deals::DealKind;
use crate::per_deal::percentile;

/// Targets.
pub const SF_READS_PER_DEAL: usize = 1;
/// A deal on a CPQ Contract (an amendment or renewal) also reads the Contract's history.
pub const SF_READS_PER_CONTRACT_DEAL: usize = 2;

/// The Salesforce reads a deal of `kind` may make.
fn reads_allowed(kind: &DealKind) -> usize {
    if kind.after.is_some() {
        SF_READS_PER_CONTRACT_DEAL
    } else {
        SF_READS_PER_DEAL
    }
}
pub const SF_WRITES_PER_DEAL: usize = 1;
pub const LATENCY_RATIO: f64 = 1.3;
pub const BURST_RATIO: f64 = 1.1;
pub const INIT_MS: f64 = 20.0;
pub const RSS_MB: f64 = 32.0;
pub const SIZE_MB: f64 = 8.0;

/// Where and how the report was produced.
#[derive(Debug, Clone)]
pub struct Context {
    pub date: String,
    pub command: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
}

/// Another build of the same workspace (e.g. another `opt-level`), measured for comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub label: String,
    pub dir: String,
    /// The summary its `bench --summary-json` printed.
    pub summary: Value,
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_string()
}

impl Context {
    /// This machine, now, and `command`.
    pub fn here(command: String) -> Context {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map(|kb| format!("{:.1} GiB", kb / 1_048_576.0))
            .unwrap_or_else(|| "unknown".into());
        let kernel =
            first_line(&std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default());
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .map(|o| first_line(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_else(|| "unknown".into());
        Context {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            command,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory,
            kernel,
            rustc,
        }
    }
}

/// A path as given, relative to the working directory when it is inside it.
fn shown(path: &std::path::Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|here| {
            path.strip_prefix(here)
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| path.display().to_string())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn with_min(got: usize, min: usize) -> String {
    if got == min {
        format!("{got} ({min})")
    } else {
        format!("**{got}** ({min})")
    }
}

/// Calls per deal that exceed the targets, by deal, with what they were.
fn salesforce_excess(results: &Results) -> Vec<(String, String)> {
    results
        .calls
        .iter()
        .filter(|c| {
            c.warm.sf_reads > reads_allowed(&c.kind) || c.warm.sf_writes > SF_WRITES_PER_DEAL
        })
        .map(|c| {
            (
                c.kind.name.to_string(),
                format!(
                    "{} read(s), {} write(s): {}",
                    c.warm.sf_reads,
                    c.warm.sf_writes,
                    c.warm.describe("salesforce")
                ),
            )
        })
        .collect()
}

fn calls_section(out: &mut String, results: &Results) {
    let _ = writeln!(
        out,
        "## 1. API calls per deal\n\nEach seeded deal is sent once through the intake (a signed Apex callout; the internet Order by its Order Id, as its approval sends it) on a fresh sandbox, and every worker runs until the queues are empty. Counts come from the fakes' request logs. **Warm** is a warm container: the Salesforce session exists and the AB component catalog is cached (as after a function's first deal); **cold** is a fresh process. The fewest calls the flow needs are in parentheses; a count above it is in bold.\n"
    );
    let _ = writeln!(
        out,
        "| deal | what it is | SF reads | SF writes | SF token (warm / cold) | Maxio AB | Maxio Core | WHMCS |\n|---|---|---|---|---|---|---|---|"
    );
    for c in &results.calls {
        let m = &c.kind.minimum;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} / {} | {} | {} | {} |",
            c.kind.name,
            c.kind.description,
            with_min(c.warm.sf_reads, m.sf_reads),
            with_min(c.warm.sf_writes, m.sf_writes),
            c.warm.sf_token,
            c.cold.sf_token,
            with_min(c.warm.ab, m.ab),
            with_min(c.warm.core, m.core),
            with_min(c.warm.whmcs, m.whmcs),
        );
    }
    let _ = writeln!(
        out,
        "\nWhat the calls were (warm):\n\n| deal | Salesforce | Maxio AB | Maxio Core | WHMCS |\n|---|---|---|---|---|"
    );
    for c in &results.calls {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            c.kind.name,
            c.warm.describe("salesforce"),
            c.warm.describe("ab"),
            c.warm.describe("core"),
            c.warm.describe("whmcs"),
        );
    }
    let cold_extra: Vec<String> = results
        .calls
        .iter()
        .filter(|c| c.cold != c.warm)
        .map(|c| {
            format!(
                "{} +{} token, +{} AB",
                c.kind.name,
                c.cold.sf_token.saturating_sub(c.warm.sf_token),
                c.cold.ab.saturating_sub(c.warm.ab)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "\nA cold process adds the OAuth token call and one AB component read per component the deal uses (the client caches the catalog): {}. In the sandbox every function shares one process and one Salesforce client, so a cold deal logs in once; deployed, each function container that calls Salesforce logs in once when it starts (the intake, and the function that writes back), then reuses the session.\n",
        if cold_extra.is_empty() {
            "none".to_string()
        } else {
            cold_extra.join("; ")
        }
    );
    let _ = writeln!(
        out,
        "### The minimum per system\n\n- **Salesforce read: 1.** The intake loads the whole deal (Opportunity, Account, contacts, quote, Order, items, schedules) in one Composite request; every later step carries what it needs in its message.\n- **Salesforce write: 1.** The outcome (status, ids, error) of the Opportunity, its Account and, for WHMCS, the Order and its items fits in one sObject Collections request.\n- **Maxio AB: 2 + 2 per scheduled product + 3.** Customer lookup by reference + create; per scheduled product a price point lookup by its deterministic handle + create; subscription lookup by reference + create + one components read (AB silently falls back to the default price point, so it must be checked). The lookups are what make every step idempotent (a redelivered message must not create twice), so they are part of the minimum.\n- **Maxio Core: 3.** The customer by the Account Id, its contracts, one PATCH of the chosen contract (its answer is the read-back).\n- **WHMCS: 3.** GetOrders (the client's newest order: the ledger guard's baseline, written to the ledger before AddOrder so a lost AddOrder answer can be reconciled; AddOrder has no idempotency key) + AddOrder + AcceptOrder.\n"
    );
    for c in &results.calls {
        let _ = writeln!(out, "- {}: {}.", c.kind.name, c.kind.why);
    }
    let _ = writeln!(out);
}

fn latency_section(out: &mut String, results: &Results) {
    if results.latency.is_empty() {
        return;
    }
    let latency = ms(results.options.latency);
    let _ = writeln!(
        out,
        "## 2. End-to-end latency per deal\n\n{} runs per deal, {latency:.0} ms added to every answer of every fake, warm process. Timed from handing the Apex callout to the intake until the last worker finished (the last write-back). The bound is the critical path: the calls that must happen one after the other (every call of the minimum above: each needs the previous answer or is the next step's input) × {latency:.0} ms.\n",
        results.options.runs
    );
    let _ = writeln!(
        out,
        "| deal | sequential calls (minimum) | calls made | bound | median | p95 | median / bound | target ≤ {LATENCY_RATIO}× |\n|---|---|---|---|---|---|---|---|"
    );
    for l in &results.latency {
        let path = l.kind.minimum.critical_path();
        let made = l.calls.sf_reads + l.calls.sf_writes + l.calls.ab + l.calls.core + l.calls.whmcs;
        let bound = path as f64 * latency;
        let ratio = ms(l.median()) / bound.max(f64::MIN_POSITIVE);
        let _ = writeln!(
            out,
            "| {} | {path} | {made} | {bound:.0} ms | {:.0} ms | {:.0} ms | {ratio:.2}× | {} |",
            l.kind.name,
            ms(l.median()),
            ms(l.p95()),
            met(ratio <= LATENCY_RATIO)
        );
    }
    if let Some(p) = &results.processing {
        let _ = writeln!(
            out,
            "\nWithout injected latency the volume deal takes {:.1} ms (median of {}; p95 {:.1} ms) from the intake to its write-back: the code of every function and every fake, in one process. The rest of each figure above is waiting on the external calls.",
            ms(p.median()),
            p.runs.len(),
            ms(p.p95())
        );
    }
    let _ = writeln!(out);
}

fn burst_section(out: &mut String, results: &Results) {
    if results.bursts.is_empty() {
        return;
    }
    let latency = ms(results.options.latency);
    let site = AbSettings::default().max_concurrent_requests;
    let table = ms(BUDGET_TABLE_LATENCY);
    let first = &results.bursts[0];
    let _ = writeln!(
        out,
        "## 3. A burst of {} deals\n\n{} copies of the volume deal (each its own Account, Opportunity, quote, Order with a volume-priced usage line and a platform fee; a Core customer and contract each) are sent through the intake (16 at a time) while the workers run concurrently, as Lambda runs them: one task per function instance, each taking batches of up to 10 messages from the in-memory queue (SQS FIFO semantics) and handing them to the same handlers the local stack uses, on a multi-thread runtime. The instances per function are the template's (read from template.yaml: {}). {latency:.0} ms on every external call. The fake AB site answers 429 beyond {site} requests in flight. Each AB function instance is a container of its own (its own AB clients and caches, its own name), and every AB request first takes a slot of its site's request budget ({MAX_CONCURRENT_REQUESTS} slots) in one slot table shared by all instances, as the deployed containers share DynamoDB's; each table call answers after {table:.0} ms. The second burst sends every other deal as a copy of the sterling deal (GBP), billed on the `uk` site with its own budget.\n\nThe bound is what AB's {site} concurrent requests per site allow: the busiest site's AB calls × {latency:.0} ms / {site}. *AB phase* ends when the last subscription step finishes; *all done* when every queue is empty (Core links and write-backs included).\n",
        first.deals, first.deals, first.concurrency.name,
    );
    let _ = writeln!(
        out,
        "| AB sites | AB calls (per site) | 429s | bound | AB phase | AB phase / bound | all done | all done / bound | target ≤ {BURST_RATIO}× | duplicates | failures | dead letters | retried deliveries |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for b in &results.bursts {
        let bound = ms(b.bound());
        let ab_ratio = ms(b.ab_phase) / bound.max(f64::MIN_POSITIVE);
        let ratio = ms(b.wall) / bound.max(f64::MIN_POSITIVE);
        let per_site: Vec<String> = b
            .sites
            .iter()
            .map(|s| format!("{} {}", s.site, s.answered))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} s | {:.1} s | {ab_ratio:.2}× | {:.1} s | {ratio:.2}× | {} | {} | {} | {} | {} |",
            b.sites.len(),
            per_site.join(", "),
            b.sites.iter().map(|s| s.rate_limited).sum::<usize>(),
            bound / 1000.0,
            b.ab_phase.as_secs_f64(),
            b.wall.as_secs_f64(),
            met(ratio <= BURST_RATIO),
            b.duplicates.total(),
            b.failures.len(),
            b.dead_letters,
            b.retried,
        );
    }
    let _ = writeln!(
        out,
        "\nWhat the budget costs: a request takes a slot with one read of the site's slots and one conditional write, and an instance keeps its slots for the rest of its batch (while a slot's lease still covers a whole request), giving them back (one delete each) before it answers, and its idle slots of another site before a request on this one. So most requests need no table call at all.\n\n| AB sites | AB requests | on a slot already held | table calls | table calls per AB request | mean wait for a slot |\n|---|---|---|---|---|---|"
    );
    for b in &results.bursts {
        let c = &b.budget;
        let per = c.table_calls as f64 / c.permits.max(1) as f64;
        let wait = c.waited.as_secs_f64() * 1000.0 / c.permits.max(1) as f64;
        let _ = writeln!(
            out,
            "| {} | {} | {} ({:.0}%) | {} | {per:.2} | {wait:.1} ms |",
            b.sites.len(),
            c.permits,
            c.reused,
            c.reused as f64 * 100.0 / c.permits.max(1) as f64,
            c.table_calls,
        );
    }
    let _ = writeln!(
        out,
        "\nHow busy each site's budget was during the AB phase (sampled every millisecond, each sample weighted by the time until the next): the slots held in the table and the requests the fake site was answering, against its {site} slots; and the time the fake took per answer, measured in the fake: the injected {latency:.0} ms, within which the fake does its own work, plus whatever this process's scheduling adds (every fake, function and worker shares one process on this machine's cores). *Bound at that time* is the bound with the measured answer time instead of {latency:.0} ms: what the slots allow for answers that slow.\n\n| AB sites | site | slots held | requests in flight | answer time | bound at that time | AB phase / it |\n|---|---|---|---|---|---|---|"
    );
    for b in &results.bursts {
        for (o, s) in b.occupancy.iter().zip(&b.sites) {
            let at = o.answer_time * u32::try_from(s.answered).unwrap_or(u32::MAX)
                / s.slots.max(1) as u32;
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {:.2} | {:.1} ms | {:.1} s | {:.2}× |",
                b.sites.len(),
                s.site,
                o.held,
                o.in_flight,
                ms(o.answer_time),
                at.as_secs_f64(),
                b.ab_phase.as_secs_f64() / at.as_secs_f64().max(f64::MIN_POSITIVE),
            );
        }
    }
    for b in &results.bursts {
        if !b.failures.is_empty() {
            let _ = writeln!(
                out,
                "\nFailures with {} site(s): {}",
                b.sites.len(),
                b.failures
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    let _ = writeln!(out);
}

fn functions_section(out: &mut String, results: &Results) {
    let Some(f) = &results.functions else {
        return;
    };
    let _ = writeln!(
        out,
        "## 4. Functions\n\nThe release binaries in `{}`, built for this host ({}, `cargo build --release`), not the Lambda artifacts `make build` builds into `dist/lambda` with cargo-lambda (arm64 unless the aarch64 standard library is missing); the release profile strips them. Each is started {} times under a fake Lambda Runtime API with the template's environment (Globals and its own variables, 256 MB, JSON logs; dummy AWS credentials; every endpoint a local listener that counts connections): init is the time from spawning the process until its first `GET /2018-06-01/runtime/invocation/next`; the RSS after init is its `VmHWM` at that moment. Connections made during all those starts: **{}** (init calls nothing: no Secrets Manager, SQS, DynamoDB or Salesforce).\n",
        shown(&f.dir),
        std::env::consts::ARCH,
        results.options.starts,
        f.init_connections
    );
    let _ = writeln!(
        out,
        "| function | binary | target < {SIZE_MB} MB | init (median) | init (max) | target < {INIT_MS} ms | RSS after init | peak RSS under load | target < {RSS_MB} MB |\n|---|---|---|---|---|---|---|---|---|"
    );
    for fig in &f.figures {
        let init = ms(percentile(&fig.init, 50.0));
        let init_max = fig.init.iter().copied().max().map_or(0.0, ms);
        let mut rss = fig.init_rss_kb.clone();
        rss.sort_unstable();
        let init_rss = rss.get(rss.len() / 2).copied().unwrap_or(0) as f64 * 1024.0 / 1e6;
        let (peak, rss_ok) = match &fig.load {
            Some(l) => {
                let peak = l.peak_rss_kb as f64 * 1024.0 / 1e6;
                (format!("{peak:.1} MB"), met(peak < RSS_MB))
            }
            None => ("not measured".to_string(), met(init_rss < RSS_MB)),
        };
        let _ = writeln!(
            out,
            "| {} | {:.2} MB ({:.2} MiB) | {} | {init:.1} ms | {init_max:.1} ms | {} | {init_rss:.1} MB | {peak} | {rss_ok} |",
            fig.name,
            mb(fig.size),
            fig.size as f64 / 1_048_576.0,
            met(mb(fig.size) < SIZE_MB),
            met(init < INIT_MS),
        );
    }
    match &f.load_skipped {
        Some(why) => {
            let _ = writeln!(out, "\nPeak RSS under load was not measured: {why}.");
        }
        None => {
            let _ = writeln!(
                out,
                "\nThe load behind each peak RSS figure: one process per function, fed through the fake Runtime API against the sandbox fakes (no added latency) and moto (SQS, Secrets Manager, DynamoDB); the workers were fed the very messages the function before them sent to moto's queues. `VmHWM` is read after the last invocation answered, then the process is stopped.\n"
            );
            for fig in &f.figures {
                if let Some(l) = &fig.load {
                    let _ = writeln!(
                        out,
                        "- **{}**: {}. {} invocations, {} reported a failure{}{}.",
                        fig.name,
                        l.what,
                        l.invocations,
                        l.failed,
                        if l.outcome.is_empty() {
                            String::new()
                        } else {
                            format!("; {}", l.outcome)
                        },
                        l.first_failure
                            .as_ref()
                            .map(|f| format!(" (first: `{}`)", f.replace('`', "'")))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    let _ = writeln!(out);
}

fn comparison_section(out: &mut String, results: &Results, comparisons: &[Comparison]) {
    if comparisons.is_empty() {
        return;
    }
    let this = summary(results);
    let _ = writeln!(
        out,
        "## 5. Release profile: opt-level compared\n\nThe same source built with each `opt-level` (the other builds with `CARGO_PROFILE_RELEASE_OPT_LEVEL=<level> cargo build --release --workspace --bins --locked --target-dir target/opt-<level>`), each build's own benchmark run with the same latency, runs and burst (template workers; functions: sizes and init only). *Volume without latency* is the volume deal with no injected latency: the CPU cost of the code (functions and fakes), which the end-to-end figures hardly show.\n"
    );
    let here = results
        .functions
        .as_ref()
        .map(|f| format!("this build (`{}`)", shown(&f.dir)))
        .unwrap_or_else(|| "this build".into());
    let mut builds = vec![(here, this)];
    builds.extend(
        comparisons
            .iter()
            .map(|c| (format!("{} (`{}`)", c.label, c.dir), c.summary.clone())),
    );
    let deals: Vec<String> = builds[0].1["latency"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["deal"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut header =
        "| build | opt-level | largest binary | all binaries | init (median of medians)"
            .to_string();
    for d in &deals {
        let _ = write!(header, " | {d} median");
    }
    header.push_str(
        " | volume without latency | burst all done | burst AB phase |\n|---|---|---|---|---",
    );
    for _ in &deals {
        header.push_str("|---");
    }
    header.push_str("|---|---|---|");
    let _ = writeln!(out, "{header}");
    for (label, s) in &builds {
        let mut row = format!(
            "| {label} | {} | {:.2} MB | {:.1} MB | {:.1} ms",
            s["opt_level"].as_str().unwrap_or("?"),
            s["largest_binary_mb"].as_f64().unwrap_or(0.0),
            s["all_binaries_mb"].as_f64().unwrap_or(0.0),
            s["init_ms"].as_f64().unwrap_or(0.0)
        );
        for d in &deals {
            let median = s["latency"]
                .as_array()
                .and_then(|a| a.iter().find(|l| l["deal"].as_str() == Some(d.as_str())))
                .and_then(|l| l["median_ms"].as_f64())
                .unwrap_or(0.0);
            let _ = write!(row, " | {median:.0} ms");
        }
        let first = &s["bursts"][0];
        let _ = write!(
            row,
            " | {:.2} ms | {:.1} s | {:.1} s |",
            s["processing_ms"].as_f64().unwrap_or(0.0),
            first["wall_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            first["ab_phase_ms"].as_f64().unwrap_or(0.0) / 1000.0
        );
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
}

/// The figures of this run that builds are compared on.
pub fn summary(results: &Results) -> Value {
    let (largest, total, init) = match &results.functions {
        Some(f) => {
            let largest = f.figures.iter().map(|x| x.size).max().unwrap_or(0);
            let total: u64 = f.figures.iter().map(|x| x.size).sum();
            let medians: Vec<Duration> = f
                .figures
                .iter()
                .map(|x| percentile(&x.init, 50.0))
                .collect();
            (mb(largest), mb(total), ms(percentile(&medians, 50.0)))
        }
        None => (0.0, 0.0, 0.0),
    };
    json!({
        "opt_level": crate::OPT_LEVEL,
        "largest_binary_mb": largest,
        "all_binaries_mb": total,
        "init_ms": init,
        "processing_ms": results.processing.as_ref().map(|p| ms(p.median())),
        "latency": results.latency.iter().map(|l| json!({
            "deal": l.kind.name,
            "median_ms": ms(l.median()),
            "p95_ms": ms(l.p95()),
        })).collect::<Vec<_>>(),
        "bursts": results.bursts.iter().map(|b| json!({
            "workers": b.concurrency.name,
            "ab_sites": b.sites.len(),
            "wall_ms": ms(b.wall),
            "ab_phase_ms": ms(b.ab_phase),
        })).collect::<Vec<_>>(),
    })
}

fn targets_section(out: &mut String, results: &Results) {
    let _ = writeln!(out, "## Targets\n\n| target | result | |\n|---|---|---|");
    let reads_over: Vec<(&DealKind, usize)> = results
        .calls
        .iter()
        .filter(|c| c.warm.sf_reads > reads_allowed(&c.kind))
        .map(|c| (&c.kind, c.warm.sf_reads))
        .collect();
    let _ = writeln!(
        out,
        "| Salesforce: {SF_READS_PER_DEAL} read call per deal ({SF_READS_PER_CONTRACT_DEAL} for an amendment or renewal), warm token | {} | {} |",
        if reads_over.is_empty() {
            "1 read (one Composite) for every deal, 2 for the amendment".to_string()
        } else {
            format!(
                "1 read (one Composite) for every deal, 2 for the amendment, except {}",
                reads_over
                    .iter()
                    .map(|(k, n)| format!("{}: {n} reads, {}", k.name, k.why))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
        if reads_over.is_empty() {
            "met".to_string()
        } else {
            format!(
                "**missed** for {}",
                reads_over
                    .iter()
                    .map(|(k, _)| k.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let excess = salesforce_excess(results);
    let writes_over: Vec<String> = results
        .calls
        .iter()
        .filter(|c| c.warm.sf_writes > SF_WRITES_PER_DEAL)
        .map(|c| format!("{} ({} writes)", c.kind.name, c.warm.sf_writes))
        .collect();
    let _ = writeln!(
        out,
        "| Salesforce: at most {SF_WRITES_PER_DEAL} write call per deal | {} | {} |",
        if writes_over.is_empty() {
            "1 write for every deal".to_string()
        } else {
            format!("more for: {}", writes_over.join(", "))
        },
        met(writes_over.is_empty())
    );
    if !results.latency.is_empty() {
        let latency = ms(results.options.latency);
        let worst = results
            .latency
            .iter()
            .map(|l| {
                let bound = l.kind.minimum.critical_path() as f64 * latency;
                (l.kind.name, ms(l.median()) / bound.max(f64::MIN_POSITIVE))
            })
            .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
        let _ = writeln!(
            out,
            "| Latency: median within {LATENCY_RATIO}× of the critical path | worst {:.2}× ({}) | {} |",
            worst.1,
            worst.0,
            met(worst.1 <= LATENCY_RATIO)
        );
    }
    for b in &results.bursts {
        let bound = ms(b.bound());
        let ratio = ms(b.wall) / bound.max(f64::MIN_POSITIVE);
        let limited: usize = b.sites.iter().map(|s| s.rate_limited).sum();
        let _ = writeln!(
            out,
            "| Burst ({} AB site(s), {}): within {BURST_RATIO}× of AB's bound | {ratio:.2}× ({:.1} s for {:.1} s) | {} |",
            b.sites.len(),
            b.concurrency.name,
            b.wall.as_secs_f64(),
            bound / 1000.0,
            met(ratio <= BURST_RATIO)
        );
        let _ = writeln!(
            out,
            "| Burst ({} AB site(s)): no duplicate, no failure, no 429 | {} duplicates, {} failures, {} dead letters, {limited} 429s | {} |",
            b.sites.len(),
            b.duplicates.total(),
            b.failures.len(),
            b.dead_letters,
            met(b.duplicates.total() == 0
                && b.failures.is_empty()
                && b.dead_letters == 0
                && limited == 0)
        );
    }
    if let Some(f) = &results.functions {
        let slowest = f
            .figures
            .iter()
            .map(|x| (x.name, ms(percentile(&x.init, 50.0))))
            .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
        let _ = writeln!(
            out,
            "| Init under {INIT_MS} ms | slowest median {:.1} ms ({}) | {} |",
            slowest.1,
            slowest.0,
            met(slowest.1 < INIT_MS)
        );
        let rss = f
            .figures
            .iter()
            .map(|x| {
                let kb = x
                    .load
                    .as_ref()
                    .map(|l| l.peak_rss_kb)
                    .unwrap_or_else(|| x.init_rss_kb.iter().copied().max().unwrap_or(0));
                (x.name, kb as f64 * 1024.0 / 1e6)
            })
            .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
        let _ = writeln!(
            out,
            "| Peak RSS under {RSS_MB} MB | largest {:.1} MB ({}) | {} |",
            rss.1,
            rss.0,
            met(rss.1 < RSS_MB)
        );
        let size = f
            .figures
            .iter()
            .map(|x| (x.name, mb(x.size)))
            .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
        let _ = writeln!(
            out,
            "| Binaries under {SIZE_MB} MB | largest {:.2} MB ({}) | {} |",
            size.1,
            size.0,
            met(size.1 < SIZE_MB)
        );
    }
    if !excess.is_empty() {
        let _ = writeln!(out, "\nSalesforce calls above the targets:\n");
        for (deal, what) in excess {
            let _ = writeln!(out, "- {deal}: {what}");
        }
    }
    let _ = writeln!(out);
}

fn how_section(out: &mut String, results: &Results) {
    let _ = writeln!(
        out,
        "## How it was measured\n\n- Everything runs against the bundled sandbox (`sandbox/`): the fake Salesforce org, the Maxio AB site, the Maxio Core tenant and WHMCS, on loopback, each adding {:.0} ms to every answer (`Observer::set_default_latency`; 0 for the call counts and the memory loads). The functions' handlers run in this process on the in-memory queue (`LocalStack`), except in section 4, where the release binaries run as processes.\n- Counts are read from each fake's request log (`Observer::requests()`); a Salesforce Composite request counts as a read when all its subrequests are GETs.\n- Times are wall-clock (`std::time::Instant`) in a release build of the benchmark (`{}` profile, opt-level {}); the in-memory queue's virtual time only moves when every worker is idle and only delayed or retried messages are left.\n- Each per-deal run starts a fresh sandbox, so every deal creates its AB customer, price points and subscription, as a new deal does.\n- MB are 10^6 bytes; RSS is `VmHWM` from `/proc/<pid>/status` (kB = 1024 bytes).\n",
        ms(results.options.latency),
        crate::PROFILE,
        crate::OPT_LEVEL
    );
}

/// The whole report.
/// The billing sync over a backlog of AB events.
fn backlog_section(out: &mut String, results: &Results) {
    let Some(b) = &results.backlog else {
        return;
    };
    let _ = writeln!(
        out,
        "## Billing sync: a backlog of {} AB events\n\nOne run of the billing sync of one AB site whose event log holds {} events ({} subscriptions' signups and state changes), against the sandbox without injected latency: every event read, each named subscription read from AB once, its Opportunity written by Id, 200 a call.\n\n| events read | subscriptions | Opportunities written | Salesforce calls | target (1 per 200 written) | AB requests | time | met |\n|---|---|---|---|---|---|---|---|\n| {} | {} | {} | {} | ≤ {} | {} | {:.1} s | {} |\n",
        b.events,
        b.events,
        b.subscriptions,
        b.read,
        b.subscriptions,
        b.written,
        b.salesforce_calls,
        b.target_calls,
        b.ab_requests,
        b.wall.as_secs_f64(),
        if b.met() { "yes" } else { "**no**" }
    );
}

pub fn render(results: &Results, context: &Context, comparisons: &[Comparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# dealbridge benchmarks\n\nGenerated by the benchmark in `bench/` (`make bench`). Do not edit by hand; run it again.\n\n- Date: {}\n- Machine: {} CPUs (`nproc`), {}, {} RAM, Linux {}\n- Toolchain: {}; benchmark built with the `{}` profile, opt-level {}\n- Command: `{}`\n- Latency injected per external call: {:.0} ms; {} timed runs per deal; burst of {} deals\n",
        context.date,
        context.cpus,
        context.cpu_model,
        context.memory,
        context.kernel,
        context.rustc,
        crate::PROFILE,
        crate::OPT_LEVEL,
        context.command,
        ms(results.options.latency),
        results.options.runs,
        results.options.burst
    );
    targets_section(&mut out, results);
    calls_section(&mut out, results);
    latency_section(&mut out, results);
    burst_section(&mut out, results);
    backlog_section(&mut out, results);
    functions_section(&mut out, results);
    comparison_section(&mut out, results, comparisons);
    how_section(&mut out, results);
    out
}
