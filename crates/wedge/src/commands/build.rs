//! `wedge build`: an image from an app folder, on a build machine (the `compiler`
//! feature: the Wasm is validated, and componentized when it must be).

use super::image::store;
use crate::cli::{BuildArgs, Runner};
use anyhow::Context;
use std::path::Path;
use wedge_image::app_source::AppSource;
use wedge_image::{Requested, parse_reference};
use wedge_image::{artifact, container_image};

/// `wedge build -t REF DIR`: validates the app's Wasm file (componentizing a core module
/// that imports wedge's interfaces) and packs it with its requested grants.
pub fn execute(root: &Path, args: BuildArgs) -> anyhow::Result<i32> {
    let source = AppSource::open(&args.app)?;
    let manifest = source
        .manifest
        .with_context(|| format!("`{}` has no `wedge.toml` to build from", args.app.display()))?;
    let references = args
        .tags
        .iter()
        .map(|t| parse_reference(t))
        .collect::<Result<Vec<_>, _>>()?;
    let path = &manifest.app.wasm;
    let mut wasm =
        std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    wedge_runtime::validate(path, &wasm)?;
    if wedge_runtime::needs_componentizing(&wasm) {
        wasm = wedge_runtime::componentize(&wasm).map_err(|message| {
            anyhow::anyhow!("cannot make a component of `{}`: {message}", path.display())
        })?;
        eprintln!(
            "componentized {} (a wasip1 module importing wedge's host interfaces)",
            path.display()
        );
    }
    let store = store(root)?;
    // Until the image is tagged, no prune may delete its blobs.
    let _writing = store.writing()?;
    let requested = Requested::from_manifest(&manifest);
    let (digest, size) = match args.runner {
        Runner::Wedge => artifact::build(&store, &wasm, &requested)?,
        Runner::Containerd => container_image::build(&store, &wasm, &requested)?,
    };
    for reference in &references {
        store.tag(&reference.whole(), &digest, size)?;
        eprintln!("tagged {}", reference.whole());
    }
    println!("{digest}");
    Ok(0)
}
