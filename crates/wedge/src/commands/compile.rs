//! `wedge compile`: ahead-of-time compilation to a `.cwasm` file.

use crate::cli::CompileArgs;
use wedge_runtime::{Engine, EngineOptions};

/// Compiles the input for the chosen target and writes the `.cwasm` atomically.
pub fn execute(args: CompileArgs) -> anyhow::Result<i32> {
    let engine = Engine::new(EngineOptions {
        kind: args.engine,
        fuel: args.fuel,
        target: args.target.clone(),
        ..EngineOptions::default()
    })?;
    let code = engine.precompile_file(&args.input)?;
    let output = args
        .output
        .unwrap_or_else(|| args.input.with_extension("cwasm"));
    super::file::write_atomically(&output, &code)?;
    eprintln!(
        "wrote {} ({} bytes, {})",
        output.display(),
        code.len(),
        args.target.as_deref().unwrap_or("host")
    );
    Ok(0)
}
