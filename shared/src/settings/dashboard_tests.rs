//! The on-call dashboard of `template.yaml` against the metrics and the rest of the template:
//! every `dealbridge` metric it graphs is one [`crate::metrics`] defines, and every one defined
//! is graphed; every dimension it searches is one the functions write, and every extra dimension
//! is searched; every queue it shows is an SQS queue of the template, and every work queue (a
//! queue with a redrive policy) is on the work-queue widget and every other queue (dead-letter
//! and failure queues) on the dead-letter widget; every alarm of the template is on its alarm
//! widget; the Salesforce API usage line is drawn at `SalesforceApiUsageAlarm`'s threshold; a
//! resource that exists only with a condition is referenced only under that condition; the body
//! is valid JSON with the conditions holding or not; and the `DashboardUrl` output opens it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

use super::template_tests::{TEMPLATE, keys, text};
use crate::metrics::{
    DEFINED, DIMENSIONS, FUNCTION, NAMESPACE, SALESFORCE_API_USAGE_PERCENT, SERVICE,
};

/// What `${AWS::Region}` stands for here.
const REGION: &str = "eu-west-1";
/// The start of the titles of the widget of the work queues and of the dead-letter queues.
const WORK_QUEUES: &str = "Work queues";
const DEAD_LETTERS: &str = "Dead-letter and failure queues";

const DASHBOARD_URL: &str = "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}#dashboards:name=${Dashboard}";

/// A `${Resource}` or `${Resource.Attribute}` in the body, and the condition it is under.
struct Reference {
    name: String,
    condition: Option<String>,
}

/// Renders an `Fn::Sub` string as CloudFormation would: `${!x}` is `${x}`, `${AWS::Region}` is
/// [`REGION`], a variable is its value (an `Fn::If` taking its first branch when `conditions`
/// hold, else its second), and a resource reference is `<Name.Attribute>`, recorded.
struct Render<'a> {
    variables: &'a BTreeMap<String, Yaml>,
    conditions: bool,
    references: Vec<Reference>,
    problems: Vec<String>,
}

impl Render<'_> {
    fn render(&mut self, template: &str, condition: Option<&str>) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let Some(end) = rest[at..].find('}') else {
                self.problems.push(format!("an unclosed ${{ in {rest:?}"));
                return out;
            };
            let name = &rest[at + 2..at + end];
            rest = &rest[at + end + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else if name == "AWS::Region" {
                out.push_str(REGION);
            } else if let Some(value) = self.variables.get(name) {
                let value = value.clone();
                out.push_str(&self.variable(name, &value, condition));
            } else {
                self.references.push(Reference {
                    name: name.to_string(),
                    condition: condition.map(str::to_string),
                });
                out.push_str(&format!("<{name}>"));
            }
        }
        out.push_str(rest);
        out
    }

    fn variable(&mut self, name: &str, value: &Yaml, condition: Option<&str>) -> String {
        match value {
            Yaml::String(s) => self.render(s, condition),
            Yaml::Array(branches) if branches.len() == 3 => {
                let Some(on) = text(&branches[0]) else {
                    self.problems
                        .push(format!("variable {name}: an Fn::If without a condition"));
                    return String::new();
                };
                let branch = if self.conditions {
                    &branches[1]
                } else {
                    &branches[2]
                };
                match text(branch) {
                    Some(s) => self.render(&s, Some(&on)),
                    None => {
                        self.problems
                            .push(format!("variable {name}: a branch that is not a string"));
                        String::new()
                    }
                }
            }
            _ => {
                self.problems
                    .push(format!("variable {name} is neither a string nor an Fn::If"));
                String::new()
            }
        }
    }
}

/// What the dashboard shows.
#[derive(Default)]
struct Shown {
    /// `dealbridge` metric names.
    metrics: BTreeSet<String>,
    /// Dimensions of `dealbridge` metrics, graphed or searched.
    dimensions: BTreeSet<String>,
    /// Queues (resource names), by widget title.
    queues: BTreeMap<String, BTreeSet<String>>,
    /// Alarms (resource names).
    alarms: BTreeSet<String>,
    /// Horizontal annotation values of the widgets graphing each `dealbridge` metric.
    lines: BTreeMap<String, Vec<f64>>,
}

/// A `SEARCH('{namespace,dim,...} MetricName="name"', ...)`: namespace, dimensions, name.
fn search(expression: &str) -> Option<(String, Vec<String>, String)> {
    let term = expression.split("SEARCH('").nth(1)?.split('\'').next()?;
    let (schema, rest) = term.trim().strip_prefix('{')?.split_once('}')?;
    let mut parts = schema.split(',').map(|p| p.trim().to_string());
    let namespace = parts.next()?;
    let name = rest.split("MetricName=\"").nth(1)?.split('"').next()?;
    Some((namespace, parts.collect(), name.to_string()))
}

/// The resource name of a `<Name.Attribute>` placeholder with `attribute`.
fn placeholder(value: &str, attribute: &str) -> Option<String> {
    let inner = value.strip_prefix('<')?.strip_suffix('>')?;
    let (name, attr) = inner.split_once('.')?;
    (attr == attribute).then(|| name.to_string())
}

impl Shown {
    fn metric_row(&mut self, title: &str, row: &Value, problems: &mut Vec<String>) {
        let items = row.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut shown = Vec::new();
        match items.first() {
            Some(Value::Object(o)) => {
                let Some(expression) = o.get("expression").and_then(Value::as_str) else {
                    problems.push(format!("{title}: a row neither a metric nor an expression"));
                    return;
                };
                if !expression.contains("SEARCH(") {
                    return;
                }
                match search(expression) {
                    Some((namespace, dimensions, name)) if namespace == NAMESPACE => {
                        self.dimensions.extend(dimensions);
                        shown.push(name);
                    }
                    _ => problems.push(format!(
                        "{title}: a search not of the form {{{NAMESPACE},Dimension}} MetricName=\"Name\": {expression}"
                    )),
                }
            }
            Some(Value::String(namespace)) => {
                let name = items.get(1).and_then(Value::as_str).unwrap_or_default();
                let dimensions: Vec<&str> = items[2..].iter().map_while(Value::as_str).collect();
                let pairs: Vec<(&str, &str)> = dimensions
                    .chunks(2)
                    .filter_map(|p| Some((*p.first()?, *p.get(1)?)))
                    .collect();
                match namespace.as_str() {
                    NAMESPACE => {
                        self.dimensions
                            .extend(pairs.iter().map(|(d, _)| d.to_string()));
                        shown.push(name.to_string());
                    }
                    "AWS/SQS" => {
                        for (dimension, value) in pairs {
                            match placeholder(value, "QueueName") {
                                Some(queue) if dimension == "QueueName" => {
                                    self.queues
                                        .entry(title.to_string())
                                        .or_default()
                                        .insert(queue);
                                }
                                _ => problems.push(format!(
                                    "{title}: {dimension} {value} is not a queue's QueueName attribute"
                                )),
                            }
                        }
                    }
                    other => problems.push(format!("{title}: a metric of namespace {other}")),
                }
            }
            _ => problems.push(format!("{title}: a metric row that is not a list: {row}")),
        }
        self.metrics.extend(shown);
    }

    fn widget(&mut self, widget: &Value, problems: &mut Vec<String>) {
        let properties = &widget["properties"];
        let title = properties["title"].as_str().unwrap_or_default().to_string();
        match widget["type"].as_str() {
            Some("metric") => {
                if properties["region"] != REGION {
                    problems.push(format!("{title}: region is not ${{AWS::Region}}"));
                }
                let mut here = Shown::default();
                for row in properties["metrics"].as_array().into_iter().flatten() {
                    here.metric_row(&title, row, problems);
                }
                let values: Vec<f64> = properties["annotations"]["horizontal"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a["value"].as_f64())
                    .collect();
                for name in &here.metrics {
                    self.lines
                        .entry(name.clone())
                        .or_default()
                        .extend(values.iter().copied());
                }
                self.metrics.append(&mut here.metrics);
                self.dimensions.append(&mut here.dimensions);
                for (title, mut queues) in here.queues {
                    self.queues.entry(title).or_default().append(&mut queues);
                }
            }
            Some("alarm") => {
                for arn in properties["alarms"].as_array().into_iter().flatten() {
                    match arn.as_str().and_then(|a| placeholder(a, "Arn")) {
                        Some(alarm) => {
                            self.alarms.insert(alarm);
                        }
                        None => problems.push(format!("{title}: {arn} is not an alarm's Arn")),
                    }
                }
            }
            Some("text") => {}
            other => problems.push(format!("{title}: a widget of type {other:?}")),
        }
    }
}

/// The widgets' cells on the 24-column grid overlap or overflow.
fn layout(widgets: &[Value], problems: &mut Vec<String>) {
    let mut taken: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for widget in widgets {
        let title = widget["properties"]["title"]
            .as_str()
            .unwrap_or("(untitled)");
        let [x, y, w, h] = ["x", "y", "width", "height"].map(|k| widget[k].as_u64().unwrap_or(0));
        if w == 0 || h == 0 || x + w > 24 {
            problems.push(format!(
                "{title}: x {x}, width {w}, height {h} do not fit the 24 columns"
            ));
        }
        for cell in (x..x + w).flat_map(|c| (y..y + h).map(move |r| (c, r))) {
            if let Some(other) = taken.insert(cell, title.to_string()) {
                problems.push(format!("{title} overlaps {other}"));
                break;
            }
        }
    }
}

/// The dashboard's body and variables, rendered with the conditions holding and not.
fn bodies(dashboard: &Yaml, problems: &mut Vec<String>) -> Option<(Vec<Reference>, Value, Value)> {
    let body = &dashboard["Properties"]["DashboardBody"];
    let (template, variables) = match body {
        Yaml::String(s) => (s.clone(), BTreeMap::new()),
        Yaml::Array(parts) => (text(&parts[0])?, keys(&parts[1])),
        _ => {
            problems.push("DashboardBody is not an Fn::Sub".into());
            return None;
        }
    };
    let mut rendered = Vec::new();
    let mut references = Vec::new();
    for conditions in [true, false] {
        let mut render = Render {
            variables: &variables,
            conditions,
            references: Vec::new(),
            problems: Vec::new(),
        };
        let json = render.render(&template, None);
        problems.append(&mut render.problems);
        match serde_json::from_str::<Value>(&json) {
            Ok(v) => rendered.push(v),
            Err(e) => {
                problems.push(format!(
                    "the body is not JSON with the conditions {}: {e}",
                    if conditions { "holding" } else { "not holding" }
                ));
                return None;
            }
        }
        if conditions {
            references = render.references;
        }
    }
    let off = rendered.pop()?;
    let on = rendered.pop()?;
    Some((references, on, off))
}

/// Everything wrong between the template's dashboard and the metrics and the template, one line
/// each.
fn check(template: &str) -> Vec<String> {
    let docs = match YamlLoader::load_from_str(template) {
        Ok(d) => d,
        Err(e) => return vec![format!("the template is not YAML: {e}")],
    };
    let doc = &docs[0];
    let resources = keys(&doc["Resources"]);
    let of_type = |t: &str| -> BTreeSet<String> {
        resources
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some(t))
            .map(|(name, _)| name.clone())
            .collect()
    };
    let mut problems = Vec::new();
    let dashboards = of_type("AWS::CloudWatch::Dashboard");
    let [dashboard] = dashboards.iter().collect::<Vec<_>>()[..] else {
        return vec![format!(
            "the template should have one dashboard, not {dashboards:?}"
        )];
    };
    let url = text(&doc["Outputs"]["DashboardUrl"]["Value"]);
    if url.as_deref()
        != Some(
            DASHBOARD_URL
                .replace("${Dashboard}", &format!("${{{dashboard}}}"))
                .as_str(),
        )
    {
        problems.push(format!("the DashboardUrl output is {url:?}"));
    }
    let Some((references, on, off)) = bodies(&resources[dashboard], &mut problems) else {
        return problems;
    };

    for reference in &references {
        let resource = reference.name.split('.').next().unwrap_or_default();
        let Some(r) = resources.get(resource) else {
            problems.push(format!(
                "the dashboard refers to {}, which is no resource",
                reference.name
            ));
            continue;
        };
        let needs = text(&r["Condition"]);
        if needs.is_some() && needs != reference.condition {
            problems.push(format!(
                "the dashboard refers to {} (only with {needs:?}) under {:?}",
                reference.name, reference.condition
            ));
        }
    }

    let widgets = on["widgets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if widgets.is_empty() || off["widgets"].as_array().is_none_or(Vec::is_empty) {
        problems.push("the dashboard has no widgets".into());
    }
    layout(widgets, &mut problems);
    let mut shown = Shown::default();
    for widget in widgets {
        shown.widget(widget, &mut problems);
    }

    let defined: BTreeSet<String> = DEFINED.iter().map(|d| d.name.to_string()).collect();
    for name in shown.metrics.difference(&defined) {
        problems.push(format!(
            "the dashboard graphs {name}, which crate::metrics does not define"
        ));
    }
    for name in defined.difference(&shown.metrics) {
        problems.push(format!("the dashboard does not graph {name}"));
    }
    let written: BTreeSet<String> = DIMENSIONS
        .iter()
        .chain([&FUNCTION, &SERVICE])
        .map(|d| d.to_string())
        .collect();
    for dimension in shown.dimensions.difference(&written) {
        problems.push(format!(
            "the dashboard uses the dimension {dimension}, which no metric is written with"
        ));
    }
    for dimension in DIMENSIONS {
        if !shown.dimensions.contains(*dimension) {
            problems.push(format!("the dashboard graphs nothing by {dimension}"));
        }
    }

    let queues = of_type("AWS::SQS::Queue");
    let (work, dead): (BTreeSet<String>, BTreeSet<String>) = queues
        .iter()
        .cloned()
        .partition(|q| !resources[q]["Properties"]["RedrivePolicy"].is_badvalue());
    let mut widgets_seen = BTreeSet::new();
    for (title, shows) in &shown.queues {
        let want = if title.starts_with(WORK_QUEUES) {
            &work
        } else if title.starts_with(DEAD_LETTERS) {
            &dead
        } else {
            problems.push(format!(
                "{title}: queues outside the work and dead-letter widgets"
            ));
            continue;
        };
        widgets_seen.insert(title.starts_with(WORK_QUEUES));
        for q in shows.difference(want) {
            problems.push(format!(
                "{title} shows {q}, which is not one of its queues: {want:?}"
            ));
        }
        for q in want.difference(shows) {
            problems.push(format!("{title} does not show {q}"));
        }
    }
    if widgets_seen.len() != 2 {
        problems.push(format!(
            "the dashboard should have a \"{WORK_QUEUES}...\" and a \"{DEAD_LETTERS}...\" widget"
        ));
    }

    let alarms = of_type("AWS::CloudWatch::Alarm");
    for a in alarms.difference(&shown.alarms) {
        problems.push(format!("the alarm widget does not show {a}"));
    }
    for a in shown.alarms.difference(&alarms) {
        problems.push(format!("the alarm widget shows {a}, which is no alarm"));
    }

    let usage_alarm = resources.iter().find(|(_, r)| {
        r["Properties"]["Namespace"].as_str() == Some(NAMESPACE)
            && r["Properties"]["MetricName"].as_str() == Some(SALESFORCE_API_USAGE_PERCENT)
    });
    let threshold = usage_alarm
        .and_then(|(_, r)| text(&r["Properties"]["Threshold"]))
        .and_then(|t| t.parse::<f64>().ok());
    let lines = shown
        .lines
        .get(SALESFORCE_API_USAGE_PERCENT)
        .cloned()
        .unwrap_or_default();
    match threshold {
        Some(t) if lines.contains(&t) => {}
        _ => problems.push(format!(
            "the {SALESFORCE_API_USAGE_PERCENT} widget's lines {lines:?} do not include its alarm's threshold {threshold:?}"
        )),
    }
    problems
}

#[test]
fn the_dashboard_graphs_the_metrics_written_and_every_queue_and_alarm_of_the_template() {
    let problems = check(TEMPLATE);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check fails when either side changes: a metric renamed on the dashboard, a queue left
/// off it or added to the template only, the alarm's threshold moved, a conditional queue
/// referenced under another condition.
#[test]
fn the_dashboard_check_catches_what_drifts() {
    let renamed = TEMPLATE.replacen(
        r#"MetricName=\"AbRateLimited\""#,
        r#"MetricName=\"AbThrottled\""#,
        1,
    );
    assert_eq!(
        check(&renamed),
        [
            "the dashboard graphs AbThrottled, which crate::metrics does not define",
            "the dashboard does not graph AbRateLimited",
        ]
    );

    let row = r#"                    ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${DelayedDLQ.QueueName}", {"label": "delayed DLQ"}],
"#;
    assert!(TEMPLATE.contains(row));
    let problems = check(&TEMPLATE.replacen(row, "", 1));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].ends_with("does not show DelayedDLQ"),
        "{problems:?}"
    );

    let added = TEMPLATE.replacen(
        "  DelayedDLQ:\n",
        "  AuditQueue:\n    Type: AWS::SQS::Queue\n\n  DelayedDLQ:\n",
        1,
    );
    let problems = check(&added);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].ends_with("does not show AuditQueue"),
        "{problems:?}"
    );

    let start = TEMPLATE.find("  SalesforceApiUsageAlarm:").unwrap();
    let at = start + TEMPLATE[start..].find("Threshold: 80").unwrap();
    let moved = format!(
        "{}Threshold: 90{}",
        &TEMPLATE[..at],
        &TEMPLATE[at + "Threshold: 80".len()..]
    );
    assert_eq!(
        check(&moved),
        [
            "the SalesforceApiUsagePercent widget's lines [80.0] do not include its alarm's threshold Some(90.0)"
        ]
    );

    let guard = "          PlatformEventsFailedQueueDepth: !If\n            - HasEventRelay\n";
    assert!(TEMPLATE.contains(guard));
    let misguarded = TEMPLATE.replacen(
        guard,
        "          PlatformEventsFailedQueueDepth: !If\n            - HasAlarmEmail\n",
        1,
    );
    assert_eq!(
        check(&misguarded),
        [
            "the dashboard refers to PlatformEventsFailedQueue.QueueName (only with Some(\"HasEventRelay\")) under Some(\"HasAlarmEmail\")"
        ]
    );
}

#[test]
fn a_search_names_its_namespace_dimensions_and_metric() {
    assert_eq!(
        search(r#"SEARCH('{dealbridge,Site} MetricName="AbBudgetSlots"', 'Maximum', 60)"#),
        Some((
            "dealbridge".into(),
            vec!["Site".into()],
            "AbBudgetSlots".into()
        ))
    );
    assert_eq!(search("SEARCH('MetricName=\"X\"', 'Sum', 60)"), None);
    assert_eq!(search("METRICS()"), None);
}
