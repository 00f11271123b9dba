//! The benchmark still runs: quick mode, small numbers, no function binaries. API call counts are
//! deterministic and are checked against the minimum each flow needs; times are never checked.

use std::time::Duration;

use dealbridge::queue::QueueName;
use dealbridge_bench::report::{Context, render};
use dealbridge_bench::{Options, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_quick_benchmark_runs_and_every_deal_makes_the_fewest_calls() {
    let mut options = Options::quick(Duration::from_millis(1));
    options.runs = 1;
    options.burst = 12;
    options.two_site_burst = false;
    let results = run(&options).await.unwrap();

    assert_eq!(results.calls.len(), 9);
    for c in &results.calls {
        let (m, w) = (&c.kind.minimum, &c.warm);
        let name = c.kind.name;
        assert_eq!(w.sf_token, 0, "{name}: a warm container logs in again");
        if c.kind.after.is_none() {
            assert_eq!(c.cold.sf_token, 1, "{name}: a cold process logs in once");
        }
        assert_eq!(w.sf_reads, m.sf_reads, "{name}: {w:?}");
        assert_eq!(w.sf_writes, m.sf_writes, "{name}: {w:?}");
        assert_eq!(w.ab, m.ab, "{name}: {w:?}");
        assert_eq!(w.ab_429, 0, "{name}: {w:?}");
        assert_eq!(w.core, m.core, "{name}: {w:?}");
        assert_eq!(w.whmcs, m.whmcs, "{name}: {w:?}");
    }
    let volume = &results.calls[0];
    assert_eq!(volume.kind.name, "volume");
    assert_eq!(volume.warm.sf_reads, 1);
    assert_eq!(volume.warm.sf_writes, 1);
    assert_eq!(
        volume.cold.ab,
        volume.warm.ab + 5,
        "a cold process reads both sites' currencies, the product and the two components once"
    );

    assert_eq!(results.latency.len(), 8);
    for l in &results.latency {
        assert_eq!(l.runs.len(), 1);
        assert_eq!(
            l.calls.sf_reads + l.calls.sf_writes + l.calls.ab + l.calls.core + l.calls.whmcs,
            l.kind.minimum.critical_path(),
            "{}: {:?}",
            l.kind.name,
            l.calls
        );
    }

    let [burst] = results.bursts.as_slice() else {
        panic!("one burst expected");
    };
    assert_eq!(burst.deals, 12);
    assert_eq!(burst.duplicates.total(), 0, "{:?}", burst.duplicates);
    assert!(burst.failures.is_empty(), "{:?}", burst.failures);
    assert_eq!(burst.dead_letters, 0);
    assert_eq!(burst.calls.ab_429, 0);
    // Each AB function instance is a container of its own: a cold one reads both sites'
    // currencies, the product and the two components once.
    let cold = burst.calls.ab - 12 * volume.warm.ab;
    let instances: usize = [
        QueueName::MaxioCustomer,
        QueueName::MaxioPricePoints,
        QueueName::MaxioSubscription,
    ]
    .iter()
    .map(|q| burst.concurrency.of(*q))
    .sum();
    assert!(cold <= 5 * instances, "{cold} cold reads");
    assert_eq!(
        burst.budget.permits as usize, burst.calls.ab,
        "every AB request was sent on a slot of the site's budget"
    );
    assert!(burst.budget.table_calls > 0);
    assert_eq!(burst.sites.len(), 1);
    assert_eq!(burst.calls.core, 12 * volume.warm.core);
    assert_eq!(burst.calls.sf_reads, 12);
    assert_eq!(burst.calls.sf_writes, 12);

    let amendment = results
        .calls
        .iter()
        .find(|c| c.kind.name == "amendment")
        .expect("the amendment deal");
    assert_eq!(
        amendment.warm.sf_reads, 2,
        "an amendment loads the deal and its Contract: two Salesforce calls"
    );
    assert_eq!(amendment.warm.core, 0, "the first sale made the Core link");

    let report = render(&results, &Context::here("cargo test".into()), &[]);
    for section in [
        "## Targets",
        "## 1. API calls per deal",
        "## 2. End-to-end latency per deal",
        "## 3. A burst of 12 deals",
        "## How it was measured",
    ] {
        assert!(report.contains(section), "{section} missing:\n{report}");
    }
}
