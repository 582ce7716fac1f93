//! Loading arbitrary bytes as an app (detect, validate, compile, link) must return an
//! error or an app, never panic; so must inspecting them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;
use wedge_runtime::{App, Engine, EngineOptions, Prepared};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(EngineOptions::default()).expect("engine"))
}

fuzz_target!(|data: &[u8]| {
    // Precompiled artifacts are trusted native code by design; fuzz the Wasm path.
    if data.starts_with(b"\x7fELF") {
        return;
    }
    let path = Path::new("fuzz.wasm");
    if let Ok(app) = App::from_bytes(engine(), path, data, None) {
        let _ = Prepared::new(&app);
    }
    let dir = std::env::temp_dir().join(format!("wedge-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("input.wasm");
    if std::fs::write(&file, data).is_ok() {
        let _ = wedge_runtime::inspect(&file);
    }
});
