//! `dealbridge redrive <queue> [--max N] [--dry-run] [--dlq-url URL]`: moves a queue's
//! dead-lettered messages back to it with `dealbridge::queue::redrive` (same body and group, a
//! fresh deterministic deduplication id, deleted from the dead-letter queue only after the send),
//! with a progress bar.
//!
//! The queue's URL is its `*_QUEUE_URL` variable; its dead-letter queue is read from the queue's
//! `RedrivePolicy` (`deadLetterTargetArn`, then `GetQueueUrl` by name and owner), unless
//! `--dlq-url` names it.

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;
use dealbridge::envelope::Envelope;
use dealbridge::queue::{
    QueueName, RedriveOptions as LibOptions, RedriveProgress, RedriveReport, RedrivenMessage,
    redrive as run_redrive,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::error::CliError;
use crate::output::{Outcome, table};
use crate::wiring::{self, var};

/// What `redrive` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedriveOptions {
    pub queue: QueueName,
    /// Stop after this many messages.
    pub max: Option<usize>,
    pub dry_run: bool,
    /// The dead-letter queue, instead of the queue's `RedrivePolicy`.
    pub dlq_url: Option<String>,
    /// Draw a progress bar on stderr (off with `--json`).
    pub progress: bool,
}

/// Reads a queue name: `maxio-customer`, `maxio-price-points`, `maxio-subscription`,
/// `maxio-core-link`, `whmcs-provision` or `delayed`.
pub fn parse_queue(raw: &str) -> Result<QueueName, String> {
    QueueName::ALL
        .into_iter()
        .find(|q| q.as_str() == raw.trim())
        .ok_or_else(|| {
            format!(
                "{raw:?} is not a dealbridge queue; use one of {}",
                QueueName::ALL.map(QueueName::as_str).join(", ")
            )
        })
}

/// The queue and account of an SQS queue ARN (`arn:aws:sqs:<region>:<account>:<name>`).
pub fn queue_of_arn(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, account, name] if !name.is_empty() => {
            Some((name.to_string(), account.to_string()))
        }
        _ => None,
    }
}

/// The dead-letter queue of `queue_url`, from its `RedrivePolicy`.
async fn dead_letter_queue(
    sqs: &aws_sdk_sqs::Client,
    queue: QueueName,
    queue_url: &str,
) -> Result<String, CliError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| {
            CliError::Failed(format!(
                "reading the RedrivePolicy of the {queue} queue ({queue_url}) failed: {}",
                DisplayErrorContext(&e)
            ))
        })?;
    let policy = out
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy).cloned())
        .ok_or_else(|| {
            CliError::config(format!(
                "the {queue} queue ({queue_url}) has no RedrivePolicy, so its dead-letter queue is unknown; pass --dlq-url"
            ))
        })?;
    let arn = serde_json::from_str::<Value>(&policy)
        .ok()
        .and_then(|p| p.get("deadLetterTargetArn")?.as_str().map(str::to_string))
        .ok_or_else(|| {
            CliError::config(format!(
                "the RedrivePolicy of the {queue} queue has no deadLetterTargetArn: {policy}; pass --dlq-url"
            ))
        })?;
    let (name, account) = queue_of_arn(&arn).ok_or_else(|| {
        CliError::config(format!(
            "the dead-letter target {arn:?} of the {queue} queue is not an SQS queue ARN; pass --dlq-url"
        ))
    })?;
    let out = sqs
        .get_queue_url()
        .queue_name(&name)
        .queue_owner_aws_account_id(&account)
        .send()
        .await
        .map_err(|e| {
            CliError::Failed(format!(
                "finding the dead-letter queue {name} of the {queue} queue failed: {}",
                DisplayErrorContext(&e)
            ))
        })?;
    out.queue_url()
        .map(str::to_string)
        .ok_or_else(|| CliError::Failed(format!("SQS returned no URL for {name}")))
}

async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Option<u64> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .ok()?
        .attributes()?
        .get(&QueueAttributeName::ApproximateNumberOfMessages)?
        .parse()
        .ok()
}

/// What a message is, read from its envelope: `whmcs-provision of Order 801…`.
fn what(body: &str) -> String {
    match Envelope::parse(body) {
        Ok(e) => format!("{} of {} {}", e.step.name(), e.deal.sobject(), e.deal.id()),
        Err(_) => "(not a dealbridge envelope)".to_string(),
    }
}

fn message_json(m: &RedrivenMessage) -> Value {
    json!({
        "dlqMessageId": m.dlq_message_id,
        "what": what(&m.body),
        "groupId": m.group_id,
        "originalDedupId": m.original_dedup_id,
        "dedupId": m.dedup_id,
        "receiveCount": m.receive_count,
        "queueMessageId": m.queue_message_id,
    })
}

fn report_json(r: &RedriveReport) -> Value {
    json!({
        "dryRun": r.dry_run,
        "approximateDepth": r.approximate_depth,
        "received": r.received,
        "moved": r.moved,
        "messages": r.messages.iter().map(message_json).collect::<Vec<_>>(),
    })
}

fn report_text(queue: QueueName, dlq: &str, r: &RedriveReport) -> String {
    let mut text = if r.dry_run {
        format!(
            "Dry run: {} message(s) in the dead-letter queue of {queue} would be moved back ({dlq}); nothing was moved\n",
            r.received
        )
    } else {
        format!(
            "Moved {} of {} message(s) from the dead-letter queue ({dlq}) back to {queue}\n",
            r.moved, r.received
        )
    };
    if let Some(d) = r.approximate_depth {
        text.push_str(&format!(
            "The dead-letter queue held about {d} message(s) before the run.\n"
        ));
    }
    if !r.messages.is_empty() {
        let rows: Vec<Vec<String>> = r
            .messages
            .iter()
            .map(|m| {
                vec![
                    m.dlq_message_id.clone(),
                    m.receive_count.map(|c| c.to_string()).unwrap_or_default(),
                    m.queue_message_id.clone().unwrap_or_else(|| "-".into()),
                    what(&m.body),
                ]
            })
            .collect();
        text.push_str(&table(
            &["dead-letter message", "receives", "new message", "what"],
            &rows,
        ));
    }
    text
}

fn bar(length: Option<u64>, dry_run: bool) -> ProgressBar {
    let bar = match length {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(if dry_run { "listing" } else { "redriving" });
    bar
}

/// Runs `redrive`.
pub async fn redrive(options: &RedriveOptions) -> Result<Outcome, CliError> {
    let queue = options.queue;
    let variable = queue.url_variable();
    let queue_url = var(variable).ok_or_else(|| {
        CliError::config(format!(
            "{variable} is not set (the URL of the {queue} queue)"
        ))
    })?;
    if options.max == Some(0) {
        return Err(CliError::Usage("--max must be at least 1".into()));
    }
    let aws = wiring::aws().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let dlq_url = match &options.dlq_url {
        Some(url) => url.clone(),
        None => dead_letter_queue(&sqs, queue, &queue_url).await?,
    };
    let progress = if options.progress {
        let length = depth(&sqs, &dlq_url)
            .await
            .map(|d| options.max.map_or(d, |m| d.min(m as u64)));
        bar(length, options.dry_run)
    } else {
        ProgressBar::hidden()
    };
    let lib_options = LibOptions {
        max_messages: options.max,
        dry_run: options.dry_run,
    };
    let result = run_redrive(&sqs, &dlq_url, &queue_url, lib_options, |p| match p {
        RedriveProgress::Moved(_) | RedriveProgress::Listed(_) => progress.inc(1),
    })
    .await;
    progress.finish_and_clear();
    match result {
        Ok(report) => {
            let text = report_text(queue, &dlq_url, &report);
            let json = json!({
                "queue": queue,
                "queueUrl": queue_url,
                "deadLetterQueueUrl": dlq_url,
                "report": report_json(&report),
            });
            Ok(Outcome::new(json, text, false))
        }
        Err(e) => {
            let mut text = report_text(queue, &dlq_url, &e.report);
            text.push_str(&format!(
                "The redrive stopped: {} failed: {}\n",
                e.stage, e.message
            ));
            if let Some(id) = &e.dlq_message_id {
                text.push_str(&format!("at dead-letter message {id}\n"));
            }
            let json = json!({
                "queue": queue,
                "queueUrl": queue_url,
                "deadLetterQueueUrl": dlq_url,
                "report": report_json(&e.report),
                "error": {"stage": e.stage.to_string(), "message": e.message, "dlqMessageId": e.dlq_message_id},
            });
            Ok(Outcome::new(json, text, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_the_kebab_case_names() {
        assert_eq!(
            parse_queue("whmcs-provision"),
            Ok(QueueName::WhmcsProvision)
        );
        assert_eq!(parse_queue("delayed"), Ok(QueueName::Delayed));
        let e = parse_queue("whmcs").unwrap_err();
        assert!(
            e.contains("\"whmcs\"") && e.contains("maxio-core-link"),
            "{e}"
        );
    }

    #[test]
    fn a_dead_letter_target_arn_names_the_queue_and_its_owner() {
        assert_eq!(
            queue_of_arn("arn:aws:sqs:us-east-1:123456789012:dealbridge-whmcs-provision-dlq.fifo"),
            Some((
                "dealbridge-whmcs-provision-dlq.fifo".to_string(),
                "123456789012".to_string()
            ))
        );
        assert_eq!(queue_of_arn("arn:aws:sns:us-east-1:1:topic"), None);
        assert_eq!(queue_of_arn("nonsense"), None);
    }
}
