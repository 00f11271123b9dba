//! The one reader of configuration variables: trims values (an empty value counts as unset),
//! collects every problem instead of stopping at the first, and remembers which variables were
//! asked for and whether they are required, so the template can be checked against the code.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

/// Whether a variable must be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Has a default; set it to change that.
    Optional,
    /// Reading fails, naming the variable, when it is not set.
    Required,
}

/// Where variables come from: the process environment, or a map.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Variables read through a lookup (the process environment, or a map in tests and the local
/// stack), with the problems found so far.
pub struct Env<'a> {
    get: Lookup<'a>,
    problems: Vec<String>,
    asked: RefCell<BTreeMap<String, Need>>,
}

impl<'a> Env<'a> {
    pub fn new(get: impl Fn(&str) -> Option<String> + 'a) -> Env<'a> {
        Env {
            get: Box::new(get),
            problems: Vec::new(),
            asked: RefCell::new(BTreeMap::new()),
        }
    }

    /// The process environment.
    pub fn process() -> Env<'static> {
        Env::new(|k| std::env::var(k).ok())
    }

    fn ask(&self, name: &str, need: Need) -> Option<String> {
        let mut asked = self.asked.borrow_mut();
        let entry = asked.entry(name.to_string()).or_insert(need);
        *entry = (*entry).max(need);
        (self.get)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// An optional variable's value.
    pub fn var(&self, name: &str) -> Option<String> {
        self.ask(name, Need::Optional)
    }

    /// An optional variable, or `default`.
    pub fn or(&self, name: &str, default: &str) -> String {
        self.var(name).unwrap_or_else(|| default.to_string())
    }

    /// A required variable; when unset, a problem naming it and saying what it holds (`hint`).
    pub fn required(&mut self, name: &str, hint: &str) -> Option<String> {
        let value = self.ask(name, Need::Required);
        if value.is_none() {
            self.problems.push(format!("{name} is not set ({hint})"));
        }
        value
    }

    pub fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// A URL read with `parse` (which explains what is wrong with it).
    pub fn url(
        &mut self,
        name: &str,
        hint: &str,
        parse: fn(&str) -> Result<Url, String>,
    ) -> Option<Url> {
        let raw = self.required(name, hint)?;
        match parse(&raw) {
            Ok(url) => Some(url),
            Err(why) => {
                self.problems
                    .push(format!("{name} {raw:?} is malformed: {why}"));
                None
            }
        }
    }

    /// An HTTP API's `<PREFIX>_BASE_URL` (read with `parse`), `<PREFIX>_TIMEOUT_SECONDS` and
    /// `<PREFIX>_SECRET_NAME`, with their defaults.
    pub fn endpoint(
        &mut self,
        prefix: &str,
        hint: &str,
        parse: fn(&str) -> Result<Url, String>,
        timeout_secs: u64,
        secret_name: &str,
    ) -> (Option<Url>, Duration, String) {
        let url = self.url(&format!("{prefix}_BASE_URL"), hint, parse);
        let timeout = self.seconds(&format!("{prefix}_TIMEOUT_SECONDS"), timeout_secs);
        let secret = self.or(&format!("{prefix}_SECRET_NAME"), secret_name);
        (url, timeout, secret)
    }

    /// A whole number from `min` to `max`, or `default` when unset.
    pub fn whole<T>(&mut self, name: &str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + Copy + std::fmt::Display,
    {
        let Some(raw) = self.var(name) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(n) if n >= min && n <= max => n,
            _ => {
                self.problems.push(format!(
                    "{name} {raw:?} is not a whole number from {min} to {max}"
                ));
                default
            }
        }
    }

    /// A number of seconds, or `default` seconds when unset.
    pub fn seconds(&mut self, name: &str, default: u64) -> Duration {
        let Some(raw) = self.var(name) else {
            return Duration::from_secs(default);
        };
        match raw.parse::<u64>() {
            Ok(n) => Duration::from_secs(n),
            Err(_) => {
                self.problems
                    .push(format!("{name} {raw:?} is not a whole number of seconds"));
                Duration::from_secs(default)
            }
        }
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`), or `default` when unset.
    pub fn flag(&mut self, name: &str, default: bool) -> bool {
        let Some(raw) = self.var(name) else {
            return default;
        };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                self.problems
                    .push(format!("{name} {raw:?} is not true or false"));
                default
            }
        }
    }

    /// Every variable asked for so far, and whether it is required.
    pub fn asked(&self) -> BTreeMap<String, Need> {
        self.asked.borrow().clone()
    }

    /// `value` when nothing was wrong, else every problem.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<String>> {
        match value {
            Some(v) if self.problems.is_empty() => Ok(v),
            _ => Err(self.problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn values_are_trimmed_and_empty_counts_as_unset() {
        let env = Env::new(lookup(&[("A", "  x "), ("B", "   ")]));
        assert_eq!(env.var("A").as_deref(), Some("x"));
        assert_eq!(env.var("B"), None);
    }

    #[test]
    fn every_problem_is_named_and_the_asked_variables_remembered() {
        let mut env = Env::new(lookup(&[("N", "many"), ("F", "maybe"), ("S", "soon")]));
        assert_eq!(env.required("R", "a thing"), None);
        assert_eq!(env.whole("N", 10u32, 1, 100), 10);
        assert!(!env.flag("F", false));
        assert_eq!(env.seconds("S", 5), Duration::from_secs(5));
        let asked = env.asked();
        assert_eq!(asked["R"], Need::Required);
        assert_eq!(asked["N"], Need::Optional);
        let problems = env.finish(Some(())).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("R is not set (a thing)"));
        assert!(problems[1].contains("N \"many\" is not a whole number from 1 to 100"));
    }
}
