//! dealbridge's AWS resources on moto's server: the queues and the secrets a deployment has, for
//! tests and for running the real function binaries locally (`make sandbox` + `cargo lambda`).

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use dealbridge::queue::{QueueName, QueueUrls};

/// Creates every queue (FIFO where the template makes it FIFO) and returns their URLs.
pub async fn create_queues(sqs: &aws_sdk_sqs::Client) -> anyhow::Result<QueueUrls> {
    let mut urls = HashMap::new();
    for q in QueueName::ALL {
        let mut req = sqs.create_queue();
        if q.is_fifo() {
            req = req
                .queue_name(format!("dealbridge-{q}.fifo"))
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(QueueAttributeName::ContentBasedDeduplication, "false");
        } else {
            req = req.queue_name(format!("dealbridge-{q}"));
        }
        let out = req.send().await?;
        let url = out
            .queue_url()
            .ok_or_else(|| anyhow::anyhow!("moto returned no URL for {q}"))?;
        urls.insert(q, url.to_string());
    }
    Ok(QueueUrls::new(urls))
}

/// Creates the dead-letter queue of every queue in `queues` as the template does (FIFO for a FIFO
/// queue, standard for a standard one), points each queue's `RedrivePolicy` at it after
/// `max_receives` receives, and returns the dead-letter queues' URLs.
pub async fn create_dead_letter_queues(
    sqs: &aws_sdk_sqs::Client,
    queues: &QueueUrls,
    max_receives: u32,
) -> anyhow::Result<QueueUrls> {
    let mut urls = HashMap::new();
    for q in QueueName::ALL {
        let Some(queue_url) = queues.get(q) else {
            continue;
        };
        let mut req = sqs.create_queue();
        if q.is_fifo() {
            req = req
                .queue_name(format!("dealbridge-{q}-dlq.fifo"))
                .attributes(QueueAttributeName::FifoQueue, "true");
        } else {
            req = req.queue_name(format!("dealbridge-{q}-dlq"));
        }
        let out = req
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
            .send()
            .await?;
        let dlq_url = out
            .queue_url()
            .ok_or_else(|| anyhow::anyhow!("moto returned no URL for the DLQ of {q}"))?
            .to_string();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| anyhow::anyhow!("moto returned no ARN for the DLQ of {q}"))?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": max_receives,
        });
        sqs.set_queue_attributes()
            .queue_url(queue_url)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .send()
            .await?;
        urls.insert(q, dlq_url);
    }
    Ok(QueueUrls::new(urls))
}

/// Creates (or overwrites) a secret.
pub async fn put_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
) -> anyhow::Result<()> {
    let created = secrets
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await;
    if created.is_err() {
        secrets
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await?;
    }
    Ok(())
}

/// Creates the idempotency ledger's table as the template does: `deal` (S) and `step` (S) as
/// partition and sort key, on demand, with TTL on `expires_at`.
pub async fn create_ledger_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    use dealbridge::ledger::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};

    let key = |attribute: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attribute)
            .key_type(key_type)
            .build()
    };
    let string = |attribute: &str| {
        AttributeDefinition::builder()
            .attribute_name(attribute)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key(SORT_KEY, KeyType::Range)?)
        .attribute_definitions(string(PARTITION_KEY)?)
        .attribute_definitions(string(SORT_KEY)?)
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// Creates the AB request budgets' table as the template does: `site` (S) and `slot` (N) as
/// partition and sort key, on demand, with TTL on `expires_at`.
pub async fn create_budget_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    use dealbridge::budget::dynamodb::{EXPIRES_AT, SITE, SLOT};

    let key = |attribute: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attribute)
            .key_type(key_type)
            .build()
    };
    let attribute = |attribute: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(attribute)
            .attribute_type(kind)
            .build()
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(SITE, KeyType::Hash)?)
        .key_schema(key(SLOT, KeyType::Range)?)
        .attribute_definitions(attribute(SITE, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(SLOT, ScalarAttributeType::N)?)
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(EXPIRES_AT)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}
