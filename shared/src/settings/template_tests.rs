//! `template.yaml` against the configuration: each function is given exactly what it reads
//! (every variable given is read, every required one is given), each worker's
//! `WORKER_MAX_RECEIVES` is its queue's `maxReceiveCount`, and each worker's `<QUEUE>_DLQ_URL` is
//! its queue's dead-letter queue, to which it may send (and only it among the dead-letter queues).
//! A function's binary is named by its `CodeUri`, `dist/lambda/<binary>/`, where `make build`
//! puts that binary's `bootstrap`; every function runs on the `FunctionArchitecture` parameter,
//! which `make deploy` sets to the architecture `make build` built.

use std::collections::{BTreeMap, BTreeSet};

use yaml_rust2::{Yaml, YamlLoader};

use super::{Function, Need, variables};

pub(super) const TEMPLATE: &str = include_str!("../../../template.yaml");

/// Where `make build` (scripts/build-functions.sh) puts each binary: `<LAMBDA_DIR><binary>/bootstrap`.
const LAMBDA_DIR: &str = "dist/lambda/";

/// Read by the runtime libraries, not by dealbridge's configuration.
const RUNTIME_VARIABLES: [&str; 1] = [
    // lambda_http: API Gateway's stage is not part of the routes.
    "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH",
];

pub(super) fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

pub(super) fn keys(y: &Yaml) -> BTreeMap<String, Yaml> {
    y.as_hash()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.clone())))
                .collect()
        })
        .unwrap_or_default()
}

/// The binary a function of the template runs: its `CodeUri` is `dist/lambda/<binary>/`.
fn binary(resource: &Yaml) -> Option<&str> {
    resource["Properties"]["CodeUri"]
        .as_str()?
        .strip_prefix(LAMBDA_DIR)?
        .strip_suffix('/')
        .filter(|b| !b.is_empty() && !b.contains('/'))
}

/// Everything wrong between `template` and the configuration, one line each.
fn check(template: &str) -> Vec<String> {
    let docs = match YamlLoader::load_from_str(template) {
        Ok(d) => d,
        Err(e) => return vec![format!("the template is not YAML: {e}")],
    };
    let doc = &docs[0];
    let globals = keys(&doc["Globals"]["Function"]["Environment"]["Variables"]);
    let resources = keys(&doc["Resources"]);
    let mut problems = Vec::new();
    // The build reads the binaries from the CodeUris, and the deploy sets every function's
    // architecture through the one parameter.
    let names: BTreeSet<&str> = Function::ALL.iter().map(|f| f.name()).collect();
    for (logical, resource) in &resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        match binary(resource) {
            Some(b) if names.contains(b) => {}
            _ => problems.push(format!(
                "{logical} has CodeUri {:?}; it should be {LAMBDA_DIR}<binary>/ with the binary of a Function",
                text(&resource["Properties"]["CodeUri"])
            )),
        }
        if !resource["Properties"]["Architectures"].is_badvalue() {
            problems.push(format!(
                "{logical} sets Architectures; every function takes Globals' (FunctionArchitecture)"
            ));
        }
    }
    let architectures: Vec<Option<String>> = doc["Globals"]["Function"]["Architectures"]
        .as_vec()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    if architectures != [Some("FunctionArchitecture".to_string())] {
        problems.push(format!(
            "Globals' Architectures is {architectures:?}; it should be [!Ref FunctionArchitecture]"
        ));
    }
    let allowed: Vec<Option<String>> = doc["Parameters"]["FunctionArchitecture"]["AllowedValues"]
        .as_vec()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    if allowed != [Some("arm64".to_string()), Some("x86_64".to_string())] {
        problems.push(format!(
            "FunctionArchitecture allows {allowed:?}; it should allow [arm64, x86_64], what make build builds"
        ));
    }
    for function in Function::ALL {
        let name = function.name();
        let Some((logical, resource)) = resources.iter().find(|(_, r)| binary(r) == Some(name))
        else {
            problems.push(format!(
                "no function in the template runs {name} (CodeUri {LAMBDA_DIR}{name}/)"
            ));
            continue;
        };
        let own = keys(&resource["Properties"]["Environment"]["Variables"]);
        let mut given: BTreeMap<String, Yaml> = globals.clone();
        given.extend(own);
        for runtime in RUNTIME_VARIABLES {
            given.remove(runtime);
        }
        let read = variables(function);
        for variable in given.keys() {
            if !read.contains_key(variable) {
                problems.push(format!(
                    "{logical} is given {variable}, which {name} never reads"
                ));
            }
        }
        for (variable, need) in &read {
            if *need == Need::Required && !given.contains_key(variable) {
                problems.push(format!(
                    "{logical} is not given {variable}, which {name} requires"
                ));
            }
        }
        let Some(queue) = function.queue() else {
            continue;
        };
        let events = keys(&resource["Properties"]["Events"]);
        let sources: BTreeSet<String> = events
            .values()
            .filter(|e| e["Type"].as_str() == Some("SQS"))
            .filter_map(|e| text(&e["Properties"]["Queue"]))
            .filter_map(|arn| arn.strip_suffix(".Arn").map(str::to_string))
            .collect();
        let [source] = sources.iter().collect::<Vec<_>>()[..] else {
            problems.push(format!(
                "{logical} should consume one queue ({queue}), not {sources:?}"
            ));
            continue;
        };
        let max_receive =
            text(&resources[source]["Properties"]["RedrivePolicy"]["maxReceiveCount"]);
        let told = given.get("WORKER_MAX_RECEIVES").and_then(text);
        if max_receive.is_none() || max_receive != told {
            problems.push(format!(
                "{logical} is told WORKER_MAX_RECEIVES {told:?}, but its queue {source} has maxReceiveCount {max_receive:?}"
            ));
        }
        let dlq = text(&resources[source]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
            .and_then(|arn| arn.strip_suffix(".Arn").map(str::to_string));
        let variable = queue.dead_letter_url_variable();
        let told = given.get(variable).and_then(text);
        if dlq.is_none() || dlq != told {
            problems.push(format!(
                "{logical} is told {variable} {told:?}, but its queue {source} dead-letters to {dlq:?}"
            ));
        }
        let sends_to: Vec<String> = resource["Properties"]["Policies"]
            .as_vec()
            .into_iter()
            .flatten()
            .filter_map(|policy| policy["Statement"].as_vec())
            .flatten()
            .filter(|st| {
                st["Effect"].as_str() == Some("Allow")
                    && st["Action"].as_str() == Some("sqs:SendMessage")
            })
            .filter_map(|st| text(&st["Resource"]))
            .filter_map(|arn| arn.strip_suffix(".Arn").map(str::to_string))
            .collect();
        if dlq.as_ref().is_none_or(|d| sends_to != [d.clone()]) {
            problems.push(format!(
                "{logical} may sqs:SendMessage to {sends_to:?} by statement; it should to {dlq:?}, its queue's dead-letter queue, only"
            ));
        }
    }
    problems
}

#[test]
fn each_function_is_given_exactly_the_variables_its_configuration_reads() {
    let problems = check(TEMPLATE);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check fails when either side changes: a required variable dropped from a function, a
/// variable no function reads, or a queue whose maxReceiveCount differs from what its worker is
/// told.
#[test]
fn the_template_check_catches_a_missing_an_unread_and_a_mismatched_variable() {
    let missing = TEMPLATE.replacen("          WHMCS_BASE_URL: !Ref WhmcsBaseUrl\n", "", 1);
    assert_eq!(
        check(&missing),
        ["WhmcsProvisionFunction is not given WHMCS_BASE_URL, which whmcs-provision requires"]
    );
    let unread = TEMPLATE.replacen(
        "          INTAKE_SECRET_NAME: !Ref IntakeSecretName\n",
        "          INTAKE_SECRET_NAME: !Ref IntakeSecretName\n          MAXIO_AB_BASE_URL: !Ref MaxioAbBaseUrl\n",
        1,
    );
    assert_eq!(
        check(&unread),
        ["IntakeFunction is given MAXIO_AB_BASE_URL, which intake never reads"]
    );
    let start = TEMPLATE.find("  DelayedQueue:").unwrap();
    let at = start + TEMPLATE[start..].find("maxReceiveCount: 10").unwrap();
    let mismatched = format!(
        "{}maxReceiveCount: 5{}",
        &TEMPLATE[..at],
        &TEMPLATE[at + "maxReceiveCount: 10".len()..]
    );
    let problems = check(&mismatched);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("DelayedFunction is told WORKER_MAX_RECEIVES"),
        "{problems:?}"
    );
    let other_dlq = TEMPLATE.replacen(
        "MAXIO_CUSTOMER_DLQ_URL: !Ref MaxioCustomerDLQ",
        "MAXIO_CUSTOMER_DLQ_URL: !Ref MaxioPricePointsDLQ",
        1,
    );
    assert_eq!(
        check(&other_dlq),
        [
            "MaxioCustomerFunction is told MAXIO_CUSTOMER_DLQ_URL Some(\"MaxioPricePointsDLQ\"), but its queue MaxioCustomerQueue dead-letters to Some(\"MaxioCustomerDLQ\")"
        ]
    );
    let no_grant = TEMPLATE.replacen(
        "              Resource: !GetAtt WhmcsProvisionDLQ.Arn\n",
        "              Resource: !GetAtt DelayedDLQ.Arn\n",
        1,
    );
    let problems = check(&no_grant);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("WhmcsProvisionFunction may sqs:SendMessage to [\"DelayedDLQ\"]"),
        "{problems:?}"
    );
}

/// The build reads the binaries from the CodeUris and the deploy sets one architecture for all:
/// a function whose code is not `dist/lambda/<binary>/` (such as the whole repository, `.`), a
/// function with an architecture of its own and a fixed architecture in Globals are each named.
#[test]
fn the_template_check_catches_code_the_build_does_not_make_and_a_fixed_architecture() {
    let whole_repository = TEMPLATE.replacen(
        "      CodeUri: dist/lambda/reconciler/\n",
        "      CodeUri: .\n",
        1,
    );
    assert_eq!(
        check(&whole_repository),
        [
            "ReconcilerFunction has CodeUri Some(\".\"); it should be dist/lambda/<binary>/ with the binary of a Function",
            "no function in the template runs reconciler (CodeUri dist/lambda/reconciler/)",
        ]
    );
    let unknown = TEMPLATE.replacen(
        "      CodeUri: dist/lambda/delayed/\n",
        "      CodeUri: dist/lambda/delay/\n",
        1,
    );
    assert_eq!(
        check(&unknown),
        [
            "DelayedFunction has CodeUri Some(\"dist/lambda/delay/\"); it should be dist/lambda/<binary>/ with the binary of a Function",
            "no function in the template runs delayed (CodeUri dist/lambda/delayed/)",
        ]
    );
    let own = TEMPLATE.replacen(
        "      CodeUri: dist/lambda/intake/\n",
        "      CodeUri: dist/lambda/intake/\n      Architectures: [x86_64]\n",
        1,
    );
    assert_eq!(
        check(&own),
        ["IntakeFunction sets Architectures; every function takes Globals' (FunctionArchitecture)"]
    );
    let fixed = TEMPLATE.replacen(
        "    Architectures: [!Ref FunctionArchitecture]\n",
        "    Architectures: [x86_64]\n",
        1,
    );
    assert_eq!(
        check(&fixed),
        ["Globals' Architectures is [Some(\"x86_64\")]; it should be [!Ref FunctionArchitecture]"]
    );
    let one = TEMPLATE.replacen(
        "    AllowedValues: [arm64, x86_64]\n",
        "    AllowedValues: [x86_64]\n",
        1,
    );
    assert_eq!(
        check(&one),
        [
            "FunctionArchitecture allows [Some(\"x86_64\")]; it should allow [arm64, x86_64], what make build builds"
        ]
    );
}
