//! `wedge inspect`: what a Wasm app is and which capabilities it reaches for; or, for
//! a name that is not a path, a container of the daemon or an image in the local store.

use super::daemon_client::Daemon;
use crate::cli::{Format, InspectArgs};
use std::path::Path;
use wedge_client::ClientError;
use wedge_image::app_source::AppSource;

/// Describes an app file (as a table or JSON), or prints a container's or an image's
/// description as a one-element JSON array, as `docker inspect` does.
pub fn execute(root: &Path, host: Option<&str>, args: InspectArgs) -> anyhow::Result<i32> {
    if AppSource::looks_like_path(&args.target) {
        return describe_app(Path::new(&args.target), args.format);
    }
    let target = &args.target;
    // A container first, then an image, as docker does.
    let daemon = Daemon::new(host)?;
    let unreachable = match daemon.block_on(daemon.client.inspect(target)) {
        Ok(info) => {
            println!("{}", serde_json::to_string_pretty(&[info])?);
            return Ok(0);
        }
        Err(e @ ClientError::Connect { .. }) => Some(e),
        Err(ClientError::Api { status: 404, .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(image) = super::image::find_and_describe(root, target)? {
        println!("{}", serde_json::to_string_pretty(&[image])?);
        return Ok(0);
    }
    match unreachable {
        Some(e) => anyhow::bail!("no such file, image or container `{target}`; {e}"),
        None => anyhow::bail!("no such file, image or container `{target}`"),
    }
}

/// Prints the app's description as a table or JSON.
fn describe_app(path: &Path, format: Format) -> anyhow::Result<i32> {
    let source = AppSource::open(path)?;
    let info = wedge_runtime::inspect(&source.wasm)?;
    match format {
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
