//! An ordered `application/x-www-form-urlencoded` body with PHP bracket-array keys (`pid[0]`,
//! `pid[1]`, ...), encoded as PHP's `http_build_query` does (`pid%5B0%5D=185`, spaces as `+`).
//!
//! Credentials never go into a [`Form`]: the client adds them while encoding the request body, so a
//! form can be logged or compared in tests.

/// `1`/`0`, the booleans `http_build_query` sends.
pub fn php_bool(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

/// Form fields in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn new() -> Self {
        Form::default()
    }

    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.pairs.push((key.into(), value.into()));
        self
    }

    /// Adds the field only when there is a value.
    pub fn push_opt(&mut self, key: &str, value: Option<impl Into<String>>) -> &mut Self {
        if let Some(v) = value {
            self.push(key, v);
        }
        self
    }

    /// Adds `key=1` when `on`, nothing otherwise (WHMCS's flags default to off).
    pub fn push_flag(&mut self, key: &str, on: bool) -> &mut Self {
        if on {
            self.push(key, php_bool(true));
        }
        self
    }

    /// Adds `key[index]=value`.
    pub fn push_indexed(&mut self, key: &str, index: usize, value: impl Into<String>) -> &mut Self {
        self.push(format!("{key}[{index}]"), value)
    }

    /// Adds `key[0]=..`, `key[1]=..`, ... for every value.
    pub fn push_array<V: Into<String>>(
        &mut self,
        key: &str,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Self {
        for (i, v) in values.into_iter().enumerate() {
            self.push_indexed(key, i, v);
        }
        self
    }

    /// Appends another form's fields.
    pub fn extend(&mut self, other: Form) -> &mut Self {
        self.pairs.extend(other.pairs);
        self
    }

    /// The fields, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The value of the first field named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Appends the fields to an encoder (the client's, which already holds the credentials).
    pub fn append_to<T: url::form_urlencoded::Target>(
        &self,
        serializer: &mut url::form_urlencoded::Serializer<'_, T>,
    ) {
        for (k, v) in &self.pairs {
            serializer.append_pair(k, v);
        }
    }

    /// The URL-encoded body.
    pub fn encode(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        self.append_to(&mut s);
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_arrays_are_indexed_and_encoded_as_http_build_query_does() {
        let mut f = Form::new();
        f.push_array("pid", ["1", "7"])
            .push_array("billingcycle", ["monthly", "annually"]);
        assert_eq!(
            f.encode(),
            "pid%5B0%5D=1&pid%5B1%5D=7&billingcycle%5B0%5D=monthly&billingcycle%5B1%5D=annually"
        );
    }

    #[test]
    fn values_are_escaped_and_order_is_kept() {
        let mut f = Form::new();
        f.push("b", "a b&c=d")
            .push("a", "YToxOntpOjE7czo2OiJHb29nbGUiO30=")
            .push("c", "ü/+");
        assert_eq!(
            f.encode(),
            "b=a+b%26c%3Dd&a=YToxOntpOjE7czo2OiJHb29nbGUiO30%3D&c=%C3%BC%2F%2B"
        );
        assert_eq!(f.get("a"), Some("YToxOntpOjE7czo2OiJHb29nbGUiO30="));
        assert_eq!(f.get("z"), None);
    }

    #[test]
    fn flags_and_optional_fields_are_sent_only_when_set() {
        let mut f = Form::new();
        f.push_flag("noinvoice", true)
            .push_flag("noemail", false)
            .push_opt("promocode", None::<String>)
            .push_opt("clientip", Some("10.0.0.1"))
            .push_indexed("priceoverride", 2, "9.50");
        let keys: Vec<_> = f.pairs().iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            keys,
            ["noinvoice=1", "clientip=10.0.0.1", "priceoverride[2]=9.50"]
        );
        assert_eq!(php_bool(false), "0");
    }
}
