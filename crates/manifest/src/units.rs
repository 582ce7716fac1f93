//! Sizes (`32MiB`) and durations (`500ms`) as operators write them.

use crate::{ManifestError, serde_via_str};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A size in bytes, written as a number with an optional unit: `KiB`/`MiB`/`GiB`
/// (binary), `KB`/`MB`/`GB` (decimal), Docker's `k`/`m`/`g` (binary), or `B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (value, unit) = split_number(
            s,
            "size",
            "expected a number with an optional unit, e.g. `32MiB`",
        )?;
        let multiplier: u64 = match unit {
            "" | "b" | "B" => 1,
            "k" | "K" | "KiB" | "kib" => 1 << 10,
            "m" | "M" | "MiB" | "mib" => 1 << 20,
            "g" | "G" | "GiB" | "gib" => 1 << 30,
            "KB" | "kB" | "kb" => 1_000,
            "MB" | "mb" => 1_000_000,
            "GB" | "gb" => 1_000_000_000,
            other => {
                return Err(ManifestError::invalid(
                    "size",
                    s,
                    format!("unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB or GB)"),
                ));
            }
        };
        let bytes = value * multiplier as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(ManifestError::invalid("size", s, "out of range"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (size, unit) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

serde_via_str!(ByteSize, "a size such as `32MiB`");

/// A duration, written as a number and a unit: `ns`, `us`, `ms`, `s`, `m` or `h`
/// (`1.5s`, `500ms`, `2m`). A bare number is seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationSpec(pub Duration);

impl FromStr for DurationSpec {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (value, unit) =
            split_number(s, "duration", "expected a number with a unit, e.g. `2s`")?;
        let seconds_per_unit = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "" | "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(ManifestError::invalid(
                    "duration",
                    s,
                    format!("unknown unit `{other}` (use ms, s, m or h)"),
                ));
            }
        };
        Duration::try_from_secs_f64(value * seconds_per_unit)
            .map(DurationSpec)
            .map_err(|_| ManifestError::invalid("duration", s, "out of range"))
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", nanos / 1_000_000_000)
        } else if nanos.is_multiple_of(1_000_000) {
            write!(f, "{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            write!(f, "{}us", nanos / 1_000)
        } else {
            write!(f, "{nanos}ns")
        }
    }
}

serde_via_str!(DurationSpec, "a duration such as `2s`");

/// Splits `12.5MiB` into the number and the unit that follows it (trimmed).
fn split_number<'a>(
    s: &'a str,
    what: &'static str,
    hint: &str,
) -> Result<(f64, &'a str), ManifestError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value = num
        .parse()
        .map_err(|_| ManifestError::invalid(what, s, hint))?;
    Ok((value, unit.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_decimal_and_docker_units() {
        assert_eq!("32MiB".parse::<ByteSize>().unwrap().0, 32 << 20);
        assert_eq!("32m".parse::<ByteSize>().unwrap().0, 32 << 20);
        assert_eq!("1GB".parse::<ByteSize>().unwrap().0, 1_000_000_000);
        assert_eq!("1.5KiB".parse::<ByteSize>().unwrap().0, 1536);
        assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
        assert_eq!(ByteSize(32 << 20).to_string(), "32MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }

    #[test]
    fn bad_sizes_name_the_value() {
        let err = "12 parsecs".parse::<ByteSize>().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid size `12 parsecs`: unknown unit `parsecs` (use B, KiB, MiB, GiB, KB, MB or GB)"
        );
        assert!("MiB".parse::<ByteSize>().is_err());
        assert!("-1MiB".parse::<ByteSize>().is_err());
        assert!("1e400".parse::<ByteSize>().is_err());
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(
            "2s".parse::<DurationSpec>().unwrap().0,
            Duration::from_secs(2)
        );
        assert_eq!(
            "500ms".parse::<DurationSpec>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            "1.5s".parse::<DurationSpec>().unwrap().0,
            Duration::from_millis(1500)
        );
        assert_eq!(
            "2m".parse::<DurationSpec>().unwrap().0,
            Duration::from_secs(120)
        );
        assert_eq!(
            DurationSpec(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert!("2 fortnights".parse::<DurationSpec>().is_err());
        assert!("-1s".parse::<DurationSpec>().is_err());
    }
}
