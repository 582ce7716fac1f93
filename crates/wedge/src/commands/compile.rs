//! `wedge compile`: ahead-of-time compilation to a `.cwasm` file.

use crate::cli::CompileArgs;
use anyhow::Context;
use std::io::Write;
use wedge_runtime::{Engine, EngineOptions};

/// Compiles the input for the chosen target and writes the `.cwasm` atomically.
pub fn execute(args: CompileArgs) -> anyhow::Result<i32> {
    let engine = Engine::new(EngineOptions {
        kind: args.engine,
        fuel: args.fuel,
        target: args.target.clone(),
        pooling: None,
    })?;
    let code = engine.precompile_file(&args.input)?;
    let output = args
        .output
        .unwrap_or_else(|| args.input.with_extension("cwasm"));
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let write = || -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&code)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&output).map_err(|e| e.error)?;
        Ok(())
    };
    write().with_context(|| format!("cannot write `{}`", output.display()))?;
    eprintln!(
        "wrote {} ({} bytes, {})",
        output.display(),
        code.len(),
        args.target.as_deref().unwrap_or("host")
    );
    Ok(0)
}
