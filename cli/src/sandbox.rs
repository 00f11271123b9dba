//! `dealbridge sandbox`: serves the fakes as `make sandbox` does (the fake Salesforce org, Maxio
//! AB, Maxio Core and WHMCS, and moto with the queues, their dead-letter queues, the secrets and
//! the ledger table), writes the environment file, and waits for Ctrl-C (or SIGTERM), then stops everything, moto included.

use std::io::Write;

use dealbridge_sandbox::serve_all::{SandboxOptions, ServedSandbox, serve_sandbox};
use serde_json::{Map, Value, json};

use crate::error::CliError;
use crate::output::Outcome;

fn announce(served: &ServedSandbox, options: &SandboxOptions, as_json: bool) -> String {
    let env_file = options.env_file.as_ref().map(|p| p.display().to_string());
    if as_json {
        let env: Map<String, Value> = served
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let doc = json!({
            "salesforce": served.salesforce.url(),
            "maxioAb": served.maxio_ab.url(),
            "maxioAbUk": served.maxio_ab_uk.url(),
            "maxioCore": served.maxio_core.base_url(),
            "whmcs": served.whmcs.api_url(),
            "moto": served.moto.as_ref().map(|m| m.endpoint()),
            "envFile": env_file,
            "env": env,
            "maxioCoreSeed": served.core_source,
            "deals": served
                .deals()
                .into_iter()
                .map(|d| json!({
                    "id": d.id,
                    "sobject": d.sobject,
                    "referenceId": d.reference,
                    "name": d.name,
                }))
                .collect::<Vec<Value>>(),
        });
        return format!("{doc}\n");
    }
    let mut text = format!(
        "Salesforce sandbox org:       {}\nMaxio AB site (USD, EUR):     {}\nMaxio AB site uk (GBP):       {}\nMaxio Core tenant:            {}\nWHMCS installation:           {}\n",
        served.salesforce.url(),
        served.maxio_ab.url(),
        served.maxio_ab_uk.url(),
        served.maxio_core.base_url(),
        served.whmcs.api_url()
    );
    match &served.moto {
        Some(m) => text.push_str(&format!(
            "moto (SQS with dead-letter queues, Secrets Manager, DynamoDB): {}\n",
            m.endpoint()
        )),
        None => text.push_str(
            "moto: not started (--aws false); the CLI's commands need it for the secrets\n",
        ),
    }
    text.push_str(&format!(
        "Maxio Core customers:         {}\n",
        served.core_source
    ));
    let deals = served.deals();
    if !deals.is_empty() {
        text.push_str("\nLoaded deals:\n");
        for d in deals {
            let reference = d.reference.unwrap_or_default();
            text.push_str(&format!(
                "  {}  {:<11} {:<32} {}\n",
                d.id, d.sobject, reference, d.name
            ));
        }
    }
    if let Some(file) = env_file {
        text.push_str(&format!(
            "\nThe environment is in {file}. Try:\n  dealbridge --env-file {file} sync <Opportunity Id> --dry-run\n  cargo lambda watch -A 127.0.0.1 -P 9000 --env-file {file}\n"
        ));
    }
    text.push_str("Sandbox credentials protect nothing. Press Ctrl-C to stop.\n");
    text
}

/// Until Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn stopped() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Runs `sandbox` until Ctrl-C or SIGTERM.
pub async fn sandbox(options: &SandboxOptions, as_json: bool) -> Result<Outcome, CliError> {
    let served = serve_sandbox(options)
        .await
        .map_err(|e| CliError::Failed(format!("the sandbox could not start: {e:#}")))?;
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(announce(&served, options, as_json).as_bytes());
    let _ = stdout.flush();
    stopped()
        .await
        .map_err(|e| CliError::Failed(format!("waiting for Ctrl-C failed: {e}")))?;
    // Stops the servers and moto (a process killed outright would leave moto running).
    drop(served);
    let text = if as_json {
        String::new()
    } else {
        "Sandbox stopped.\n".to_string()
    };
    Ok(Outcome::new(Value::Null, text, false))
}
