//! Per deal: the external calls it makes (cold and warm container) and its end-to-end latency
//! from the intake to the last write-back, each run on a fresh sandbox.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dealbridge_sandbox::local::LocalStack;

use crate::calls::{Calls, count};
use crate::deals::{DealKind, check_outcome, clear_logs, sample_event, send, set_latency, warm_up};

/// Drain rounds allowed for one deal (the deal without an Order needs virtual hours).
const DRAIN_ROUNDS: usize = 2000;

/// The calls one deal made.
#[derive(Debug, Clone)]
pub struct DealCalls {
    pub kind: DealKind,
    /// In a fresh process: no Salesforce session, no cached AB components.
    pub cold: Calls,
    /// In a warm process (session and component catalog already there).
    pub warm: Calls,
}

/// End-to-end times of one deal.
#[derive(Debug, Clone)]
pub struct DealLatency {
    pub kind: DealKind,
    pub runs: Vec<Duration>,
    /// The calls of the last timed run (the same every run: checked).
    pub calls: Calls,
}

impl DealLatency {
    pub fn median(&self) -> Duration {
        percentile(&self.runs, 50.0)
    }

    pub fn p95(&self) -> Duration {
        percentile(&self.runs, 95.0)
    }
}

/// The `p`th percentile of `samples` (nearest rank).
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sends one deal on `stack` and runs every worker until the queues are empty; errors unless it
/// ended as expected.
async fn run_deal(stack: &LocalStack, kind: &DealKind) -> anyhow::Result<()> {
    let template = sample_event("intake-http-api-deal.json")?;

    let id = stack
        .salesforce
        .id_of(kind.record)
        .and_then(|id| id.parse().ok())
        .with_context(|| format!("no seeded record {}", kind.record))?;
    send(
        stack,
        &template,
        kind.trigger,
        &id,
        &format!("bench-{}", kind.name),
    )
    .await?;
    stack.drain(DRAIN_ROUNDS).await;
    check_outcome(stack, kind, &id).map_err(anyhow::Error::msg)
}

/// Bills the deal `kind` comes after (an amendment's first sale), then forgets its calls.
async fn first_sale(stack: &LocalStack, kind: &DealKind) -> anyhow::Result<()> {
    let Some(first) = kind.after else {
        return Ok(());
    };
    let template = sample_event("intake-http-api-deal.json")?;
    let id = stack
        .salesforce
        .id_of(first)
        .and_then(|id| id.parse().ok())
        .with_context(|| format!("no seeded record {first}"))?;
    send(
        stack,
        &template,
        kind.trigger,
        &id,
        &format!("bench-{first}"),
    )
    .await?;
    stack.drain(DRAIN_ROUNDS).await;
    clear_logs(stack);
    Ok(())
}

/// The calls of `kind` in a cold and in a warm process (no injected latency: counts do not
/// depend on it).
pub async fn measure_calls(kind: &DealKind) -> anyhow::Result<DealCalls> {
    let cold_stack = LocalStack::start().await?;
    first_sale(&cold_stack, kind).await?;
    clear_logs(&cold_stack);
    run_deal(&cold_stack, kind).await?;
    let cold = count(&cold_stack);
    drop(cold_stack);

    let warm_stack = LocalStack::start().await?;
    warm_up(&warm_stack).await?;
    first_sale(&warm_stack, kind).await?;
    run_deal(&warm_stack, kind).await?;
    let warm = count(&warm_stack);
    Ok(DealCalls {
        kind: kind.clone(),
        cold,
        warm,
    })
}

/// Times `runs` runs of `kind` with `latency` on every external call, each in a fresh, warmed-up
/// sandbox.
pub async fn measure_latency(
    kind: &DealKind,
    latency: Duration,
    runs: usize,
) -> anyhow::Result<DealLatency> {
    let mut times = Vec::with_capacity(runs);
    let mut last: Option<Calls> = None;
    for _ in 0..runs {
        let stack = LocalStack::start().await?;
        warm_up(&stack).await?;
        first_sale(&stack, kind).await?;
        set_latency(&stack, latency);
        let started = Instant::now();
        run_deal(&stack, kind).await?;
        times.push(started.elapsed());
        let calls = count(&stack);
        if let Some(previous) = &last
            && *previous != calls
        {
            bail!(
                "{}: the calls differ between runs ({previous:?} then {calls:?})",
                kind.name
            );
        }
        last = Some(calls);
    }
    Ok(DealLatency {
        kind: kind.clone(),
        runs: times,
        calls: last.unwrap_or_default(),
    })
}
