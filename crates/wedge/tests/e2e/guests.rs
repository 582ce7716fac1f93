//! Every guest program `wedge-test-programs` builds is used by some test: a guest no
//! test runs is dead weight in every build, or a test that was lost.

use std::path::{Path, PathBuf};

/// The Rust sources of every crate's tests (`tests/`, and unit tests under `src/`).
fn test_sources() -> Vec<(PathBuf, String)> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut pending: Vec<PathBuf> = std::fs::read_dir(&crates)
        .expect("crates folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.ends_with("test-programs"))
        .flat_map(|p| [p.join("tests"), p.join("src")])
        .collect();
    let mut sources = Vec::new();
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(
                std::fs::read_dir(&path)
                    .expect("folder")
                    .map(|e| e.expect("entry").path()),
            );
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with(file!()) {
            let text = std::fs::read_to_string(&path).expect("source");
            sources.push((path, text));
        }
    }
    sources
}

/// Whether `source` names `module::NAME`, directly or through a `use` of the module's
/// constant (`use wedge_test_programs::edge::{HANDLER, MSG}`).
fn uses(source: &str, qualified: &str) -> bool {
    let (module, name) = qualified.split_once("::").expect("module::NAME");
    let is_word = |at: usize, len: usize| {
        let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        boundary(source[..at].chars().next_back()) && boundary(source[at + len..].chars().next())
    };
    source
        .match_indices(qualified)
        .any(|(at, s)| is_word(at, s.len()))
        || (source.contains(&format!("wedge_test_programs::{module}::"))
            && source
                .match_indices(name)
                .any(|(at, s)| is_word(at, s.len())))
}

#[test]
fn every_guest_program_is_used_by_a_test() {
    let sources = test_sources();
    assert!(sources.len() > 20, "test sources not found");
    let unused: Vec<&str> = wedge_test_programs::ALL
        .iter()
        .copied()
        .filter(|guest| !sources.iter().any(|(_, text)| uses(text, guest)))
        .collect();
    assert!(
        unused.is_empty(),
        "guest programs no test uses: {}",
        unused.join(", ")
    );
}
