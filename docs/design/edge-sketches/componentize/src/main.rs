//! componentize IN.wasm OUT.wasm [WIT_DIR WORLD]
//! Turns a wasip1 core module into a wasi:cli/command component with the command adapter.
//! With WIT_DIR/WORLD, first embeds that world's `component-type` metadata into the module
//! (for modules built without wit-bindgen's `*_component_type.o`).
use anyhow::{Context, Result};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mut module = std::fs::read(&args[1]).context("read module")?;
    if let (Some(dir), Some(world)) = (args.get(3), args.get(4)) {
        let mut resolve = Resolve::default();
        let (pkg, _files) = resolve.push_path(dir)?;
        let world = resolve.select_world(&[pkg], Some(world))?;
        embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)?;
    }
    let t = std::time::Instant::now();
    let component = ComponentEncoder::default()
        .module(&module)?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER)?
        .validate(true)
        .encode()?;
    std::fs::write(&args[2], &component)?;
    eprintln!("componentized {} -> {} ({} bytes) in {:?}", args[1], args[2], component.len(), t.elapsed());
    Ok(())
}
