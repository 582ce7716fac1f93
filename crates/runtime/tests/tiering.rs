//! Tiered compilation: a big app's first load on the baseline compiler (Winch), its
//! Cranelift code made for the cache afterwards and found by every later load.

use std::path::{Path, PathBuf};
use wedge_runtime::{
    App, BASELINE_FIRST_MIN, CodeCache, EngineKind, EngineOptions, Tiering, baseline_takes,
};
use wedge_test_programs::{p1, wat};

/// The entries of the cache at `dir`: one per engine that compiled the app.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for engine in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for entry in std::fs::read_dir(engine.path()).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "cwasm") {
                found.push(entry.path());
            }
        }
    }
    found
}

#[test]
fn a_big_app_loads_on_winch_until_cranelift_code_is_in_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CodeCache::new(dir.path());
    let big = Path::new(wat::BIG);
    assert!(std::fs::metadata(big).unwrap().len() as usize >= BASELINE_FIRST_MIN);
    let open = |tiering| App::open(EngineOptions::default(), big, Some(&cache), tiering).unwrap();

    let first = open(Tiering::BaselineFirst);
    assert_eq!(first.engine().options().kind, EngineKind::Winch);
    assert!(first.tier_up_pending());
    // Winch's code is for the runs before the tier-up only: not kept.
    assert!(entries(dir.path()).is_empty());
    let again = open(Tiering::BaselineFirst);
    assert_eq!(again.engine().options().kind, EngineKind::Winch);
    assert!(again.tier_up_pending());

    // The tier-up, then every load finds Cranelift's code.
    let tiered = open(Tiering::Off);
    assert_eq!(tiered.engine().options().kind, EngineKind::Cranelift);
    assert!(!tiered.tier_up_pending());
    assert_eq!(entries(dir.path()).len(), 1);
    let later = open(Tiering::BaselineFirst);
    assert_eq!(later.engine().options().kind, EngineKind::Cranelift);
    assert!(!later.tier_up_pending());
}

#[test]
fn only_big_apps_on_cranelift_with_a_cache_start_on_winch() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CodeCache::new(dir.path());
    let hello = App::open(
        EngineOptions::default(),
        Path::new(p1::HELLO),
        Some(&cache),
        Tiering::BaselineFirst,
    )
    .unwrap();
    assert_eq!(hello.engine().options().kind, EngineKind::Cranelift);
    assert!(!hello.tier_up_pending());
    // Without a cache there is nowhere to keep Cranelift's code for later.
    let uncached = App::open(
        EngineOptions::default(),
        Path::new(wat::BIG),
        None,
        Tiering::BaselineFirst,
    )
    .unwrap();
    assert_eq!(uncached.engine().options().kind, EngineKind::Cranelift);
    // Pulley asked for: Pulley, not Winch.
    let pulley = App::open(
        EngineOptions {
            kind: EngineKind::Pulley,
            ..EngineOptions::default()
        },
        Path::new(wat::BIG),
        Some(&cache),
        Tiering::BaselineFirst,
    )
    .unwrap();
    assert_eq!(pulley.engine().options().kind, EngineKind::Pulley);
    assert!(!pulley.tier_up_pending());
}

#[test]
fn a_big_app_winch_refuses_loads_on_cranelift_at_once() {
    let read = |path: &str| std::fs::read(path).unwrap();
    let options = EngineOptions::default();
    assert!(baseline_takes(&options, &read(wat::BIG)));
    assert!(!baseline_takes(&options, &read(wat::BIG_THROWS)));
    assert!(!baseline_takes(&options, &read(p1::HELLO)));
    let on_pulley = EngineOptions {
        kind: EngineKind::Pulley,
        ..EngineOptions::default()
    };
    assert!(!baseline_takes(&on_pulley, &read(wat::BIG)));

    let dir = tempfile::tempdir().unwrap();
    let cache = CodeCache::new(dir.path());
    let big_throws = Path::new(wat::BIG_THROWS);
    assert!(std::fs::metadata(big_throws).unwrap().len() as usize >= BASELINE_FIRST_MIN);
    let app = App::open(options, big_throws, Some(&cache), Tiering::BaselineFirst).unwrap();
    assert_eq!(app.engine().options().kind, EngineKind::Cranelift);
    assert!(!app.tier_up_pending());
    assert_eq!(entries(dir.path()).len(), 1);
}
