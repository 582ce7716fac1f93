//! Golden tests: every `golden/*.toml` parses to the JSON in the `.json` file beside it,
//! or fails with the one-line message in the `.err` file beside it; the grants of each
//! valid one read back from their JSON form (the daemon API's).
//! Re-bless with `WEDGE_BLESS=1 cargo test -p wedge-manifest --test golden`.

use std::path::Path;
use wedge_manifest::{Grants, Manifest};

#[test]
fn golden_manifests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("WEDGE_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "golden cases missing");
    let mut failures = Vec::new();
    for case in cases {
        let text = std::fs::read_to_string(&case).expect("read case");
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let (actual, ext) = match Manifest::parse(&text, &name) {
            Ok(m) => {
                // The grants' JSON form (the daemon API's) reads back to the same grants.
                let json = serde_json::to_string(&m.grants).expect("json");
                let back: Grants = serde_json::from_str(&json).expect("grants read back");
                assert_eq!(back, m.grants, "{name}: grants do not round-trip: {json}");
                (
                    serde_json::to_string_pretty(&m).expect("json") + "\n",
                    "json",
                )
            }
            Err(e) => (e.to_string() + "\n", "err"),
        };
        let expected_path = case.with_extension(ext);
        let other = case.with_extension(if ext == "json" { "err" } else { "json" });
        if bless {
            std::fs::write(&expected_path, &actual).expect("bless");
            let _ = std::fs::remove_file(&other);
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!("{name}: expected\n{expected}got\n{actual}")),
            Err(_) => failures.push(format!("{name}: no {ext} file; got\n{actual}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
