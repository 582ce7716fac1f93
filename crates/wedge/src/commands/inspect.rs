//! `wedge inspect`: what a Wasm app is and which capabilities it reaches for.

use crate::cli::{Format, InspectArgs};
use wedge_image::app_source::AppSource;

/// Prints the app's description as a table or JSON.
pub fn execute(args: InspectArgs) -> anyhow::Result<i32> {
    let source = AppSource::open(&args.app)?;
    let info = wedge_runtime::inspect(&source.wasm)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&info)?),
        Format::Table => {
            let kind = serde_json::to_value(info.kind)?;
            let caps: Vec<String> = info
                .capabilities
                .iter()
                .map(|c| {
                    serde_json::to_value(c).map(|v| v.as_str().unwrap_or_default().to_string())
                })
                .collect::<Result<_, _>>()?;
            println!("path:          {}", info.path);
            println!(
                "kind:          {} (WASI {})",
                kind.as_str().unwrap_or_default(),
                info.wasi
            );
            println!("sha256:        {}", info.sha256);
            println!("size:          {} bytes", info.size);
            println!(
                "capabilities:  {}",
                if caps.is_empty() {
                    "none".into()
                } else {
                    caps.join(", ")
                }
            );
            println!("imports ({}):", info.imports.len());
            for i in &info.imports {
                println!("  {i}");
            }
            println!("exports ({}):", info.exports.len());
            for e in &info.exports {
                println!("  {e}");
            }
        }
    }
    Ok(0)
}
