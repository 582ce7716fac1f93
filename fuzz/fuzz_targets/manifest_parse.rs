//! Manifest parsing and the grant grammar must return errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wedge_manifest::{ByteSize, DurationSpec, EnvGrant, Manifest, NetRule, VolumeSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(manifest) = Manifest::parse(text, "fuzz.toml") {
        // A parsed manifest must print and re-parse its grants consistently.
        for v in &manifest.grants.volumes {
            let _ = v.to_string();
        }
    }
    let _ = text.parse::<ByteSize>();
    let _ = text.parse::<DurationSpec>();
    let _ = text.parse::<EnvGrant>();
    if let Ok(rule) = text.parse::<NetRule>() {
        assert_eq!(rule.to_string().parse::<NetRule>().ok(), Some(rule));
    }
    let _ = text.parse::<VolumeSpec>();
});
