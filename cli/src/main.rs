//! `dealbridge`: the operator CLI. Parses the command line, loads `--env-file`, runs the command
//! on a Tokio runtime and prints its report (text, or one JSON document with `--json`).
//! Exit codes: 0 done, 1 the operation failed, 2 a usage or configuration error.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use dealbridge_cli::args::{Cli, Command};
use dealbridge_cli::billing_sync::BillingSyncOptions;
use dealbridge_cli::error::CliError;
use dealbridge_cli::output::Outcome;
use dealbridge_cli::reconcile::ReconcileOptions;
use dealbridge_cli::redrive::RedriveOptions;
#[cfg(feature = "sandbox")]
use dealbridge_cli::sandbox;
use dealbridge_cli::sync::SyncOptions;
use dealbridge_cli::{billing_sync, env_file, reconcile, redrive, status, sync};
#[cfg(feature = "sandbox")]
use dealbridge_sandbox::serve_all::SandboxOptions;

/// The variable that filters the CLI's logs (stderr); warnings by default.
const LOG_VARIABLE: &str = "DEALBRIDGE_LOG";

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = &cli.env_file {
        match env_file::read(path) {
            Ok(vars) => {
                for (key, value) in vars {
                    // SAFETY: no other thread exists yet: the runtime is built below, after the
                    // environment is complete.
                    unsafe { std::env::set_var(key, value) };
                }
            }
            Err(e) => return fail(&e, cli.json),
        }
    }
    init_logs();
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => return fail(&CliError::Failed(format!("{e:#}")), cli.json),
    };
    let json = cli.json;
    match runtime.block_on(run(cli.command, json)) {
        Ok(outcome) => {
            print(&outcome, json);
            ExitCode::from(outcome.exit)
        }
        Err(e) => fail(&e, json),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")
}

fn init_logs() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = dealbridge::logs::filter_from_env(
        LOG_VARIABLE,
        tracing_subscriber::filter::LevelFilter::WARN,
    );
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| dealbridge::logs::EscapedLines::new(std::io::stderr()))
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false)
                .with_filter(filter),
        )
        .try_init();
}

async fn run(command: Command, json: bool) -> Result<Outcome, CliError> {
    match command {
        Command::Sync(a) => {
            sync::sync(&SyncOptions {
                id: a.id,
                dry_run: a.dry_run,
                attempts: a.attempts,
            })
            .await
        }
        Command::Status(a) => status::status(&a.id).await,
        Command::Reconcile(a) => {
            reconcile::reconcile(ReconcileOptions {
                since: a.since,
                dry_run: a.dry_run,
            })
            .await
        }
        Command::BillingSync(a) => {
            billing_sync::billing_sync(&BillingSyncOptions {
                site: a.site,
                since: a.since,
                dry_run: a.dry_run,
            })
            .await
        }
        Command::Redrive(a) => {
            redrive::redrive(&RedriveOptions {
                queue: a.queue,
                max: a.max.map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
                dry_run: a.dry_run,
                dlq_url: a.dlq_url,
                progress: !json,
            })
            .await
        }
        #[cfg(not(feature = "sandbox"))]
        Command::Sandbox(_) => Err(CliError::Usage(
            "this dealbridge was built without the sandbox; build it with `cargo build -p dealbridge-cli --features sandbox`".into(),
        )),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(a) => {
            let options = SandboxOptions {
                salesforce_port: a.salesforce_port,
                schema: a.schema,
                data: a.data,
                maxio_ab_port: a.maxio_ab_port,
                maxio_ab_uk_port: a.maxio_ab_uk_port,
                maxio_core_port: a.maxio_core_port,
                whmcs_port: a.whmcs_port,
                aws: a.aws,
                dead_letter_queues: true,
                env_file: Some(a.write_env),
                broken_subscription: true,
                core_seed: a.core_seed,
                moto_port: a.moto_port,
                aws_endpoint: a.aws_endpoint,
            };
            sandbox::sandbox(&options, json).await
        }
    }
}

fn print(outcome: &Outcome, json: bool) {
    let mut stdout = std::io::stdout();
    let text = if json {
        if outcome.json.is_null() {
            return;
        }
        format!("{}\n", outcome.json)
    } else {
        outcome.text.clone()
    };
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Prints the error once: as JSON on stdout with `--json`, else as text on stderr.
fn fail(e: &CliError, json: bool) -> ExitCode {
    if json {
        println!("{}", e.to_json());
    } else {
        eprintln!("error: {e}");
    }
    ExitCode::from(e.exit_code())
}
