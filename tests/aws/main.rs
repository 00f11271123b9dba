//! The AWS adapters (SQS, Secrets Manager, DynamoDB ledger, dead-letter redrive) against moto's
//! server, each test starting its own on a free loopback port.

mod budget_dynamodb;
mod ledger_dynamodb;
mod queues_aws;
mod redrive_aws;
mod secrets_aws;
