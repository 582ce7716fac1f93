//! MQTT topic names and filters, as wedge's messaging grants and subscriptions use
//! them, in one place for every runtime: `wedge-manifest` (servers and Linux devices)
//! and `wedge-micro` (microcontrollers, hence `no_std` and no allocation).
//!
//! A filter's levels are separated by `/`; a level `+` matches any one level and a last
//! level `#` any number of levels (none included). Topics starting with `$` (`$SYS/...`,
//! broker internals) are matched only by filters that start with the same literal
//! level, as MQTT says: a wildcard at the first level never reaches them, in a grant as
//! in a subscription.

#![no_std]

/// Longest topic or filter accepted (MQTT's limit).
pub const MAX_LEN: usize = 65_535;

/// Whether the concrete topic `topic` matches `filter`.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && starts_with_wildcard(filter) {
        return false;
    }
    let mut filter = filter.split('/');
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

/// Whether every topic the filter `wanted` matches is matched by `grant` too (a grant
/// covering a requested subscription). A grant starting with a wildcard does not cover
/// a filter starting with `$`: `#` does not grant `$SYS/#`.
pub fn covers(grant: &str, wanted: &str) -> bool {
    if wanted.starts_with('$') && starts_with_wildcard(grant) {
        return false;
    }
    let mut grant = grant.split('/');
    let mut wanted = wanted.split('/');
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

/// Checks a topic to publish to (`wildcards` false) or a filter; the error says what
/// is wrong with it.
pub fn check(s: &str, wildcards: bool) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > MAX_LEN || s.contains('\0') {
        return Err("must be 1 to 65535 bytes, without NUL");
    }
    let mut levels = s.split('/').peekable();
    while let Some(level) = levels.next() {
        let wild = level.contains(['+', '#']);
        if wild && !wildcards {
            return Err("a topic to publish to has no wildcards `+` or `#`");
        }
        if wild && level != "+" && level != "#" {
            return Err("`+` and `#` must fill a whole level");
        }
        if level == "#" && levels.peek().is_some() {
            return Err("`#` must be the last level");
        }
    }
    Ok(())
}

/// Whether the first level of `filter` is `+` or `#`.
fn starts_with_wildcard(filter: &str) -> bool {
    matches!(filter.split('/').next(), Some("+" | "#"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_topics_as_mqtt_does() {
        let f = "sensors/+/temp";
        assert!(matches(f, "sensors/kitchen/temp"));
        assert!(!matches(f, "sensors/kitchen/hum"));
        assert!(!matches(f, "sensors/a/b/temp"));
        assert!(!matches(f, "sensors/temp"));
        assert!(matches("commands/#", "commands"));
        assert!(matches("commands/#", "commands/a/b"));
        assert!(!matches("commands/#", "command"));
        assert!(matches("#", "a/b"));
        assert!(!matches("#", "$SYS/broker"));
        assert!(!matches("+/broker", "$SYS/broker"));
        assert!(matches("$SYS/#", "$SYS/broker"));
        assert!(matches("a//b", "a//b"));
    }

    #[test]
    fn grants_cover_narrower_filters_only() {
        assert!(covers("sensors/#", "sensors/+/temp"));
        assert!(covers("sensors/+/temp", "sensors/kitchen/temp"));
        assert!(covers("sensors/+/temp", "sensors/+/temp"));
        assert!(!covers("sensors/+/temp", "sensors/#"));
        assert!(!covers("sensors/kitchen/temp", "sensors/+/temp"));
        assert!(!covers("sensors/+", "sensors/+/temp"));
        assert!(covers("#", "a/#"));
    }

    #[test]
    fn first_level_wildcards_never_reach_dollar_topics() {
        for grant in ["#", "+/#", "+/broker/#", "+/+"] {
            assert!(!covers(grant, "$SYS/#"), "{grant}");
            assert!(!covers(grant, "$SYS/broker/load"), "{grant}");
            assert!(!matches(grant, "$SYS/broker"), "{grant}");
        }
        assert!(covers("#", "#"));
        assert!(covers("$SYS/#", "$SYS/broker/+"));
        assert!(matches("$SYS/+", "$SYS/x"));
        assert!(matches("a/#", "a/$x"));
        assert!(covers("a/+", "a/$x"));
    }

    #[test]
    fn malformed_topics_and_filters_are_refused() {
        for bad in ["", "a/#/b", "a+/b", "a/b#", "x\0y"] {
            assert!(check(bad, true).is_err(), "{bad:?}");
        }
        assert!(check("a/+/b", false).is_err());
        assert!(check("a/#", false).is_err());
        assert!(check("sensors/kitchen/temp", false).is_ok());
        assert!(check("sensors/+/temp", true).is_ok());
        assert!(check("#", true).is_ok());
    }
}
