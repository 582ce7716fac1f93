//! Messaging grants: MQTT topic filters (`sensors/+/temp`, `commands/#`) naming what an
//! app may publish to or subscribe to. The rules are `wedge-topic`'s, shared with the
//! microcontroller runtime.

use crate::{ManifestError, serde_via_str};
use std::fmt;
use std::str::FromStr;

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
        wedge_topic::matches(&self.0, topic)
    }

    /// Whether every topic `other` matches is matched by this filter too (a grant
    /// covering a requested subscription). A grant starting with a wildcard does not
    /// cover a filter starting with `$`: `#` does not grant `$SYS/#`.
    pub fn covers(&self, other: &TopicFilter) -> bool {
        wedge_topic::covers(&self.0, &other.0)
    }

    /// Checks a concrete topic to publish to: a valid name without wildcards.
    pub fn validate_topic(topic: &str) -> Result<(), ManifestError> {
        wedge_topic::check(topic, false).map_err(|why| ManifestError::invalid("topic", topic, why))
    }
}

impl FromStr for TopicFilter {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        wedge_topic::check(s, true)
            .map_err(|why| ManifestError::invalid("topic filter", s, why))?;
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

    #[test]
    fn filters_parse_and_apply_the_shared_rules() {
        let f: TopicFilter = "sensors/+/temp".parse().unwrap();
        assert!(f.matches("sensors/kitchen/temp"));
        assert!(f.covers(&"sensors/kitchen/temp".parse().unwrap()));
        assert!(!f.covers(&"sensors/#".parse().unwrap()));
        for bad in ["", "a/#/b", "a+/b"] {
            let err = bad.parse::<TopicFilter>().unwrap_err().to_string();
            assert!(err.contains("topic filter"), "{err}");
        }
        assert!(TopicFilter::validate_topic("a/+/b").is_err());
        assert!(TopicFilter::validate_topic("sensors/kitchen/temp").is_ok());
    }
}
