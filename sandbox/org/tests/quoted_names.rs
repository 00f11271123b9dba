//! Whatever a name contains, the client's quoting finds exactly the records with that name
//! (ignoring case, as SOQL compares text) and no other.

use dealbridge::salesforce::soql::quote;
use dealbridge_org::{Org, QueryOptions, Schema};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn empty_org() -> Org {
    let schema = json!({"sobjects": {"Account": {"keyPrefix": "001", "fields": {
        "Name": {"type": "string"}
    }}}});
    Org::new(Schema::from_json(&schema).unwrap())
}

fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Names that differ from `s` in small ways: case, one character, a trailing space.
fn near(s: &str) -> Vec<String> {
    let mut out = vec![
        s.to_uppercase(),
        s.to_lowercase(),
        format!("{s} "),
        format!("{s}\\"),
        format!("'{s}"),
    ];
    if let Some(c) = s.chars().last() {
        let mut shorter = s.to_string();
        shorter.pop();
        out.push(shorter.clone());
        out.push(format!("{shorter}{}", if c == 'x' { 'y' } else { 'x' }));
    }
    out
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC*",
        "[\\x00-\\x1f'\"\\\\%_ a-zA-Z]*",
        "[a-zA-Z]{0,3}\\\\[nrtbfu'\"]{1,3}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_quoted_name_finds_exactly_the_records_with_that_name(
        s in name_strategy(),
        others in proptest::collection::vec(name_strategy(), 0..4),
    ) {
        let mut org = empty_org();
        let mut names: Vec<String> = vec![s.clone()];
        names.extend(near(&s));
        names.extend(others);
        let mut ids = Vec::new();
        for name in &names {
            let mut fields = Map::new();
            fields.insert("Name".into(), Value::String(name.clone()));
            ids.push(org.insert("Account", &fields).unwrap());
        }
        let soql = format!("SELECT Id, Name FROM Account WHERE Name = {}", quote(&s));
        let rows = org.query(&soql, &QueryOptions::default());
        prop_assert!(rows.is_ok(), "{soql}: {:?}", rows.err());
        let found: Vec<&str> = rows
            .as_ref()
            .unwrap()
            .iter()
            .filter_map(|r| r["Id"].as_str())
            .collect();
        prop_assert!(found.contains(&ids[0].as_str()), "{soql} missed {s:?}");
        for (name, id) in names.iter().zip(&ids) {
            let expected = fold(name) == fold(&s);
            prop_assert_eq!(found.contains(&id.as_str()), expected, "{} for {:?}", soql, name);
        }
    }
}
