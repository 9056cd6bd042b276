//! Tests on a text value and on a host name, shared by HTTP routes and TCP
//! rules (compiled once with the snapshot; matching allocates nothing).

use regex::Regex;

/// A test on one value: present, equal, or matched by an anchored regex.
#[derive(Debug)]
pub enum ValueTest {
    Present,
    Equals(String),
    Regex(Regex),
}

impl ValueTest {
    /// Compile from the config's `equals` / `regex` (neither: present).
    pub fn build(equals: &Option<String>, regex: &Option<String>) -> Result<ValueTest, String> {
        Ok(match (equals, regex) {
            (Some(e), _) => ValueTest::Equals(e.clone()),
            (None, Some(r)) => ValueTest::Regex(anchored(r)?),
            (None, None) => ValueTest::Present,
        })
    }

    /// Does `value` pass?
    pub fn holds(&self, value: &str) -> bool {
        match self {
            ValueTest::Present => true,
            ValueTest::Equals(v) => v == value,
            ValueTest::Regex(r) => r.is_match(value),
        }
    }
}

/// Compile `re` so it must match the whole value.
pub fn anchored(re: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{re})$")).map_err(|e| format!("invalid regular expression {re:?}: {e}"))
}

/// A host or server name: exact, or `*.example.com` for any name below it.
/// Compared case-insensitively.
#[derive(Debug)]
pub enum NamePattern {
    Exact(String),
    /// `*.example.com` kept as `.example.com`: any name ending with it.
    Suffix(String),
}

impl NamePattern {
    pub fn build(pattern: &str) -> NamePattern {
        let p = pattern.to_ascii_lowercase();
        match p.strip_prefix('*') {
            Some(suffix) => NamePattern::Suffix(suffix.to_owned()),
            None => NamePattern::Exact(p),
        }
    }

    /// Compared as bytes: a server name from a ClientHello may hold any UTF-8,
    /// and slicing a `str` mid-character would panic.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.as_bytes();
        match self {
            NamePattern::Exact(e) => name.eq_ignore_ascii_case(e.as_bytes()),
            NamePattern::Suffix(s) => name.len() > s.len() && name[name.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert!(NamePattern::build("*.Example.com").matches("a.b.example.COM"));
        assert!(!NamePattern::build("*.example.com").matches("example.com"));
        assert!(NamePattern::build("API.example.com").matches("api.example.com"));
        // A non-ASCII name (a ClientHello may send one) is compared, not sliced mid-character.
        assert!(!NamePattern::build("*.example.com").matches("éexample.com"));
        assert!(NamePattern::build("*.example.com").matches("é.example.com"));
        let r = ValueTest::build(&None, &Some("t-[0-9]+".into())).unwrap();
        assert!(r.holds("t-12") && !r.holds("t-12x"));
        assert!(anchored("(").unwrap_err().contains("invalid regular expression"));
    }
}
