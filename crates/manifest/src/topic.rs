//! Messaging grants: MQTT topic filters (`sensors/+/temp`, `commands/#`) naming what an
//! app may publish to or subscribe to.

use crate::{ManifestError, serde_via_str};
use std::fmt;
use std::str::FromStr;

/// Longest topic or filter accepted (MQTT's limit).
const MAX_LEN: usize = 65_535;

/// An MQTT topic filter: levels separated by `/`, where a level `+` matches any one level
/// and a last level `#` matches any number of levels (none included). Topics starting
/// with `$` (`$SYS/...`, broker internals) are matched only by filters that start with
/// the same literal level, as MQTT says: a wildcard at the first level never reaches
/// them, in a grant as in a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicFilter(String);

impl TopicFilter {
    /// The filter as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the concrete topic `topic` matches this filter.
    pub fn matches(&self, topic: &str) -> bool {
        if topic.starts_with('$') && self.starts_with_wildcard() {
            return false;
        }
        let mut filter = self.0.split('/');
        let mut levels = topic.split('/');
        loop {
            match (filter.next(), levels.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(f), Some(t)) if f == t => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    /// Whether every topic `other` matches is matched by this filter too (a grant
    /// covering a requested subscription). A grant starting with a wildcard does not
    /// cover a filter starting with `$`: `#` does not grant `$SYS/#`.
    pub fn covers(&self, other: &TopicFilter) -> bool {
        if other.0.starts_with('$') && self.starts_with_wildcard() {
            return false;
        }
        let mut grant = self.0.split('/');
        let mut wanted = other.0.split('/');
        loop {
            match (grant.next(), wanted.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(w)) if w != "#" => {}
                (Some(g), Some(w)) if g == w && g != "+" => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    /// Whether the first level is `+` or `#`.
    fn starts_with_wildcard(&self) -> bool {
        matches!(self.0.split('/').next(), Some("+" | "#"))
    }

    /// Checks a concrete topic to publish to: a valid name without wildcards.
    pub fn validate_topic(topic: &str) -> Result<(), ManifestError> {
        check(topic, false)
    }
}

/// Checks a topic (`wildcards` false) or a filter.
fn check(s: &str, wildcards: bool) -> Result<(), ManifestError> {
    let what = if wildcards { "topic filter" } else { "topic" };
    let bad = |reason: &str| Err(ManifestError::invalid(what, s, reason));
    if s.is_empty() || s.len() > MAX_LEN || s.contains('\0') {
        return bad("must be 1 to 65535 bytes, without NUL");
    }
    let levels: Vec<&str> = s.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let wild = level.contains(['+', '#']);
        if wild && !wildcards {
            return bad("a topic to publish to has no wildcards `+` or `#`");
        }
        if wild && *level != "+" && *level != "#" {
            return bad("`+` and `#` must fill a whole level");
        }
        if *level == "#" && i + 1 != levels.len() {
            return bad("`#` must be the last level");
        }
    }
    Ok(())
}

impl FromStr for TopicFilter {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check(s, true)?;
        Ok(TopicFilter(s.to_string()))
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

serde_via_str!(TopicFilter, "a topic filter such as `sensors/+/temp`");

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(s: &str) -> TopicFilter {
        s.parse().unwrap()
    }

    #[test]
    fn filters_match_topics_as_mqtt_does() {
        let f = filter("sensors/+/temp");
        assert!(f.matches("sensors/kitchen/temp"));
        assert!(!f.matches("sensors/kitchen/hum"));
        assert!(!f.matches("sensors/a/b/temp"));
        assert!(!f.matches("sensors/temp"));
        let all = filter("commands/#");
        assert!(all.matches("commands"));
        assert!(all.matches("commands/a/b"));
        assert!(!all.matches("command"));
        assert!(filter("#").matches("a/b"));
        assert!(!filter("#").matches("$SYS/broker"));
        assert!(!filter("+/broker").matches("$SYS/broker"));
        assert!(filter("$SYS/#").matches("$SYS/broker"));
        assert!(filter("a//b").matches("a//b"));
    }

    #[test]
    fn grants_cover_narrower_filters_only() {
        assert!(filter("sensors/#").covers(&filter("sensors/+/temp")));
        assert!(filter("sensors/+/temp").covers(&filter("sensors/kitchen/temp")));
        assert!(filter("sensors/+/temp").covers(&filter("sensors/+/temp")));
        assert!(!filter("sensors/+/temp").covers(&filter("sensors/#")));
        assert!(!filter("sensors/kitchen/temp").covers(&filter("sensors/+/temp")));
        assert!(!filter("sensors/+").covers(&filter("sensors/+/temp")));
        assert!(filter("#").covers(&filter("a/#")));
    }

    #[test]
    fn first_level_wildcards_never_reach_dollar_topics() {
        for grant in ["#", "+/#", "+/broker/#", "+/+"] {
            let g = filter(grant);
            assert!(!g.covers(&filter("$SYS/#")), "{grant}");
            assert!(!g.covers(&filter("$SYS/broker/load")), "{grant}");
            assert!(!g.matches("$SYS/broker"), "{grant}");
        }
        assert!(filter("#").covers(&filter("#")));
        assert!(filter("$SYS/#").covers(&filter("$SYS/broker/+")));
        assert!(filter("$SYS/+").matches("$SYS/x"));
        assert!(filter("a/#").matches("a/$x"));
        assert!(filter("a/+").covers(&filter("a/$x")));
    }

    #[test]
    fn malformed_topics_and_filters_are_refused() {
        for bad in ["", "a/#/b", "a+/b", "a/b#", "x\0y"] {
            assert!(bad.parse::<TopicFilter>().is_err(), "{bad:?}");
        }
        assert!(TopicFilter::validate_topic("a/+/b").is_err());
        assert!(TopicFilter::validate_topic("a/#").is_err());
        assert!(TopicFilter::validate_topic("sensors/kitchen/temp").is_ok());
    }
}
