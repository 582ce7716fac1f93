//! `StreamingCompile`: a module compiled from its first bytes while the rest of it
//! arrives must give exactly the code of the whole module, and must not be used when
//! what arrives afterwards could change that code.

use sha2::{Digest, Sha256};
use std::path::Path;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wedge_manifest::Grants;
use wedge_runtime::{
    App, CodeCache, Engine, EngineOptions, Policy, Prepared, RuntimeError, Stdio, StreamingCompile,
    Tiering, compile_ignores,
};
use wedge_test_programs::{p1, p2};

/// A custom section named `name` holding `len` bytes.
fn custom_section(name: &str, len: usize) -> Vec<u8> {
    let mut content = leb128(name.len());
    content.extend_from_slice(name.as_bytes());
    content.extend((0..len).map(|i| (i * 7 + 3) as u8));
    let mut section = vec![0];
    section.extend(leb128(content.len()));
    section.extend(content);
    section
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            return out;
        }
    }
}

fn read(wasm: &str) -> Vec<u8> {
    std::fs::read(wasm).unwrap()
}

fn with_sections(wasm: &[u8], sections: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = wasm.to_vec();
    for section in sections {
        bytes.extend_from_slice(section);
    }
    bytes
}

/// Feeds `bytes` to `streaming` the way a transfer does, in 16 KiB chunks.
fn stream(streaming: &StreamingCompile, bytes: &[u8]) {
    for end in (0..bytes.len())
        .step_by(16 << 10)
        .skip(1)
        .chain([bytes.len()])
    {
        streaming.received(&bytes[..end]);
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Streams `bytes` through a fresh streaming compile and finishes it into a fresh
/// cache. Returns whether a speculative compile ran, the app, and the cached code.
fn streamed(engine: &Engine, bytes: &[u8]) -> (bool, App, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let cache = CodeCache::new(dir.path());
    let streaming = StreamingCompile::new(engine, Tiering::Off);
    stream(&streaming, bytes);
    let speculated = streaming.speculating();
    let sha = sha256(bytes);
    let app = streaming
        .finish(Path::new("layer"), bytes, &sha, Some(&cache))
        .unwrap();
    let entry = std::fs::read(cache.entry_path(&engine.compatibility_hash(), &sha)).unwrap();
    (speculated, app, entry)
}

/// The code a plain compile of the whole of `bytes` gives.
fn compiled_whole(engine: &Engine, bytes: &[u8]) -> Vec<u8> {
    engine.wasmtime().precompile_module(bytes).unwrap()
}

fn hello_output(app: &App) -> String {
    let prepared = Prepared::new(app).unwrap();
    let policy = Policy::resolve(&Grants::default(), vec!["hello".into()]).unwrap();
    let stdout = MemoryOutputPipe::new(1 << 16);
    let stdio = Stdio::Streams {
        stdin: Box::new(tokio::io::empty()),
        stdout: Box::new(stdout.clone()),
        stderr: Box::new(MemoryOutputPipe::new(1 << 16)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(prepared.run(&policy, stdio)).unwrap();
    assert_eq!(outcome.exit_code(), 0);
    String::from_utf8(stdout.contents().to_vec()).unwrap()
}

#[test]
fn a_big_module_pulled_for_a_baseline_first_run_is_left_to_winch() {
    let engine = Engine::new(EngineOptions::default()).unwrap();
    let producers = [custom_section("producers", 64)];
    let big = with_sections(&read(wedge_test_programs::wat::BIG), &producers);
    let small = with_sections(&read(p1::HELLO), &producers);
    let dir = tempfile::tempdir().unwrap();
    let cache = CodeCache::new(dir.path());
    for (bytes, big) in [(&big, true), (&small, false)] {
        let streaming = StreamingCompile::new(&engine, Tiering::BaselineFirst);
        stream(&streaming, bytes);
        // Cranelift would compile while the module arrives only for the small one.
        assert_eq!(streaming.speculating(), !big);
        let sha = sha256(bytes);
        let app = streaming
            .finish(Path::new("layer"), bytes, &sha, Some(&cache))
            .unwrap();
        assert_eq!(app.tier_up_pending(), big);
        let entry = cache.entry_path(&engine.compatibility_hash(), &sha);
        assert_eq!(entry.exists(), !big, "Winch's code is kept nowhere");
    }
}

#[test]
fn a_module_ending_in_ignored_custom_sections_is_compiled_while_they_arrive() {
    let engine = Engine::new(EngineOptions::default()).unwrap();
    let hello = read(p1::HELLO);
    let bytes = with_sections(&hello, &[custom_section("payload", 1 << 20)]);
    let (speculated, app, entry) = streamed(&engine, &bytes);
    assert!(
        speculated,
        "the compile starts before the payload has arrived"
    );
    let whole = compiled_whole(&engine, &bytes);
    assert_eq!(
        entry[..entry.len().min(whole.len())],
        whole[..],
        "the cached code is exactly the whole module's"
    );
    assert!(hello_output(&app).contains("hello"), "the app runs");
}

#[test]
fn sections_the_compile_reads_after_the_start_point_make_it_compile_the_whole() {
    let engine = Engine::new(EngineOptions::default()).unwrap();
    let hello = read(p1::HELLO);
    for late in [".debug_info", "name", "metadata.code.branch_hint"] {
        let bytes = with_sections(
            &hello,
            &[
                custom_section("payload", 64 << 10),
                custom_section(late, 100),
            ],
        );
        let (speculated, _, entry) = streamed(&engine, &bytes);
        assert!(speculated, "{late}: a compile starts at `payload`");
        let whole = compiled_whole(&engine, &bytes);
        assert_eq!(entry[..entry.len().min(whole.len())], whole[..], "{late}");
    }
    // DWARF changes the code wasmtime writes (it notes unparsed debug info), so a
    // speculative result that ignored it would differ: the test above can fail.
    let with_dwarf = with_sections(
        &hello,
        &[
            custom_section("payload", 100),
            custom_section(".debug_info", 100),
        ],
    );
    assert_ne!(
        compiled_whole(&engine, &with_dwarf),
        compiled_whole(
            &engine,
            &with_sections(&hello, &[custom_section("payload", 100)])
        )
    );
}

#[test]
fn a_retried_transfer_with_other_bytes_is_compiled_whole() {
    let engine = Engine::new(EngineOptions::default()).unwrap();
    let payload = custom_section("payload", 256 << 10);
    let hello = with_sections(&read(p1::HELLO), std::slice::from_ref(&payload));
    // The same module with one byte of its data changed: the same layout, so only the
    // comparison with the bytes compiled tells the two apart.
    let mut other = hello.clone();
    let data = wasmparser::Parser::new(0)
        .parse_all(&hello)
        .find_map(|payload| match payload.unwrap() {
            wasmparser::Payload::DataSection(reader) => Some(reader.range()),
            _ => None,
        })
        .unwrap();
    other[data.end - 1] ^= 0xff;
    let dir = tempfile::tempdir().unwrap();
    let cache = CodeCache::new(dir.path());
    let streaming = StreamingCompile::new(&engine, Tiering::Off);
    // The first attempt sends another module and breaks off in its payload.
    stream(&streaming, &other[..other.len() - 1000]);
    assert!(streaming.speculating());
    stream(&streaming, &hello);
    let sha = sha256(&hello);
    let app = streaming
        .finish(Path::new("layer"), &hello, &sha, Some(&cache))
        .unwrap();
    let entry = std::fs::read(cache.entry_path(&engine.compatibility_hash(), &sha)).unwrap();
    let whole = compiled_whole(&engine, &hello);
    assert_eq!(entry[..entry.len().min(whole.len())], whole[..]);
    assert_ne!(whole, compiled_whole(&engine, &other));
    assert!(hello_output(&app).contains("hello"));
}

#[test]
fn components_and_modules_without_a_trailing_section_compile_as_usual() {
    let engine = Engine::new(EngineOptions::default()).unwrap();
    let payload = custom_section("payload", 64 << 10);
    let component = with_sections(&read(p2::HELLO), std::slice::from_ref(&payload));
    let (speculated, app, _) = streamed(&engine, &component);
    assert!(
        !speculated,
        "only core modules are compiled while streaming"
    );
    assert!(hello_output(&app).contains("hello"));

    // The code section itself is the last one: nothing to start early on.
    let module = wat::parse_str("(module (func (export \"_start\")))").unwrap();
    let (speculated, _, _) = streamed(&engine, &module);
    assert!(!speculated);
}

#[test]
fn an_invalid_module_fails_as_a_plain_compile_does() {
    let engine = Engine::new(EngineOptions::default()).unwrap();
    let valid = wat::parse_str("(module (func (export \"_start\") nop))").unwrap();
    // The body's `nop` (0x01) becomes 0xff, which is no opcode.
    let at = valid.windows(2).rposition(|w| w == [0x01, 0x0b]).unwrap();
    let mut broken = valid.clone();
    broken[at] = 0xff;
    let bytes = with_sections(&broken, &[custom_section("payload", 64 << 10)]);
    let streaming = StreamingCompile::new(&engine, Tiering::Off);
    stream(&streaming, &bytes);
    assert!(streaming.speculating());
    let sha = sha256(&bytes);
    let streamed = streaming
        .finish(Path::new("layer"), &bytes, &sha, None)
        .err()
        .unwrap();
    let plain = App::compile_verified(&engine, Path::new("layer"), &bytes, &sha, None)
        .err()
        .unwrap();
    assert!(
        matches!(streamed, RuntimeError::InvalidWasm { .. }),
        "{streamed}"
    );
    assert_eq!(streamed.to_string(), plain.to_string());
}

#[test]
fn the_sections_wasmtime_reads_are_not_ignored() {
    for read in [
        "name",
        ".debug_info",
        ".debug_line.dwo",
        "metadata.code.branch_hint",
        "webidl-bindings",
        "wasm-interface-types",
    ] {
        assert!(!compile_ignores(read), "{read}");
    }
    for ignored in [
        "producers",
        "target_features",
        "component-type:hello",
        "payload",
    ] {
        assert!(compile_ignores(ignored), "{ignored}");
    }
}
