//! Image commands: `images`, `image inspect|prune|fsck`, `tag`, `rmi`, `save`, `load`
//! (`build` is in its own module, a build machine's command).

use crate::cli::{
    Format, FsckArgs, ImageCommand, ImageRefArgs, ImagesArgs, LoadArgs, RmiArgs, SaveArgs, TagArgs,
};
use crate::root::image_store_dir;
use anyhow::Context;
use std::path::Path;
use wedge_image::{ImageError, ImageStore, StoredImage, parse_reference};
use wedge_image::{artifact, container_image};

/// The image store under `root`.
pub(super) fn store(root: &Path) -> anyhow::Result<ImageStore> {
    Ok(ImageStore::open(image_store_dir(root))?)
}

/// `wedge images`.
pub fn list(root: &Path, args: ImagesArgs) -> anyhow::Result<i32> {
    let store = store(root)?;
    let mut rows = Vec::new();
    for image in store.list()? {
        let manifest = match store.read_manifest(&image.digest) {
            Ok(m) if container_image::is_one(&m) => Some((m, " (containerd)")),
            Ok(m) if artifact::check(&image.reference, &m).is_ok() => Some((m, "")),
            _ => None,
        };
        let (kind, size, created) = match manifest {
            Some((manifest, form)) => {
                let created = manifest
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("org.opencontainers.image.created"))
                    .cloned()
                    .unwrap_or_default();
                (
                    kind_of(&store, &manifest.config.digest) + form,
                    manifest.layers[0].size,
                    created,
                )
            }
            None => ("invalid".to_string(), 0, String::new()),
        };
        rows.push((image, kind, size, created));
    }
    match args.format {
        Format::Json => {
            let json: Vec<_> = rows
                .iter()
                .map(|(i, kind, size, created)| {
                    serde_json::json!({"reference": i.reference, "digest": i.digest.to_string(), "os": kind, "size": size, "created": created})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Table => {
            println!(
                "{:<50} {:<14} {:<19} {:>10}  CREATED",
                "REFERENCE", "DIGEST", "OS", "SIZE"
            );
            for (i, kind, size, created) in &rows {
                println!(
                    "{:<50} {:<14} {:<19} {:>10}  {created}",
                    i.reference,
                    i.digest.short(),
                    kind,
                    human(*size)
                );
            }
        }
    }
    Ok(0)
}

/// `wedge image …`.
pub fn image(root: &Path, command: ImageCommand) -> anyhow::Result<i32> {
    match command {
        ImageCommand::Inspect(args) => inspect(root, args),
        ImageCommand::Ls(args) => list(root, args),
        ImageCommand::Rm(args) => rmi(root, args),
        ImageCommand::Prune => {
            let (files, bytes) = store(root)?.prune()?;
            println!("removed {files} blobs, {} freed", human(bytes as i64));
            Ok(0)
        }
        ImageCommand::Fsck(args) => fsck(root, args),
    }
}

fn inspect(root: &Path, args: ImageRefArgs) -> anyhow::Result<i32> {
    let store = store(root)?;
    let image = store.resolve(&parse_reference(&args.image)?)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&describe(&store, image)?)?
    );
    Ok(0)
}

/// The description `wedge image inspect` prints of the image `name`, or `None` when
/// the local store has no image by that name (or there is no store yet).
pub fn find_and_describe(root: &Path, name: &str) -> anyhow::Result<Option<serde_json::Value>> {
    let Ok(reference) = parse_reference(name) else {
        return Ok(None);
    };
    if !image_store_dir(root).is_dir() {
        return Ok(None);
    }
    let store = store(root)?;
    match store.resolve(&reference) {
        Ok(image) => describe(&store, image).map(Some),
        Err(ImageError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// An image's reference, digests, requested grants, manifest and config.
fn describe(store: &ImageStore, image: StoredImage) -> anyhow::Result<serde_json::Value> {
    let wasm = artifact::open(store, image)?;
    let config: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&wasm.manifest.config.digest.parse()?)?)?;
    Ok(serde_json::json!({
        "reference": wasm.image.reference,
        "digest": wasm.image.digest.to_string(),
        "layer": wasm.layer.to_string(),
        "requested": wasm.requested,
        "manifest": wasm.manifest,
        "config": config,
    }))
}

fn fsck(root: &Path, args: FsckArgs) -> anyhow::Result<i32> {
    let report = store(root)?.fsck()?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => {
            println!("checked {} blobs", report.blobs_checked);
            for q in &report.quarantined {
                println!("quarantined corrupt blob {q}");
            }
            for u in &report.untagged {
                println!("untagged broken image {u}");
            }
            if report.temp_files_removed > 0 {
                println!("removed {} leftover temp files", report.temp_files_removed);
            }
        }
    }
    Ok(
        if report.quarantined.is_empty() && report.untagged.is_empty() {
            0
        } else {
            1
        },
    )
}

/// `wedge tag SRC DST`.
pub fn tag(root: &Path, args: TagArgs) -> anyhow::Result<i32> {
    let store = store(root)?;
    let source = store.resolve(&parse_reference(&args.source)?)?;
    let target = parse_reference(&args.target)?;
    store.tag(&target.whole(), &source.digest, source.size)?;
    Ok(0)
}

/// `wedge rmi REF…`: untags (a reference by digest removes every tag of that
/// manifest), then deletes blobs no remaining image uses.
pub fn rmi(root: &Path, args: RmiArgs) -> anyhow::Result<i32> {
    let store = store(root)?;
    for name in &args.images {
        let reference = parse_reference(name)?;
        let image = store.resolve(&reference)?;
        let tags: Vec<String> = match reference.digest() {
            Some(_) => store
                .list()?
                .into_iter()
                .filter(|i| i.digest == image.digest)
                .map(|i| i.reference)
                .collect(),
            None => vec![image.reference],
        };
        for tag in tags {
            store.untag(&tag)?;
            println!("untagged {tag}");
        }
        println!("deleted {}", image.digest);
    }
    store.prune()?;
    Ok(0)
}

/// `wedge save REF… -o FILE`.
pub fn save(root: &Path, args: SaveArgs) -> anyhow::Result<i32> {
    let store = store(root)?;
    let images = args
        .images
        .iter()
        .map(|name| Ok(store.resolve(&parse_reference(name)?)?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    match &args.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            wedge_image::archive::save(
                &store,
                &images,
                std::io::BufWriter::new(tmp.as_file_mut()),
            )?;
            tmp.as_file().sync_all()?;
            tmp.persist(path)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
        }
        None => wedge_image::archive::save(&store, &images, std::io::stdout().lock())?,
    }
    Ok(0)
}

/// `wedge load -i FILE`.
pub fn load(root: &Path, args: LoadArgs) -> anyhow::Result<i32> {
    let store = store(root)?;
    let loaded = match &args.input {
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            wedge_image::archive::load(&store, std::io::BufReader::new(file))?
        }
        None => wedge_image::archive::load(&store, std::io::stdin().lock())?,
    };
    for image in loaded {
        println!("Loaded image: {}", image.reference);
        if let Some(old) = image.moved_from {
            eprintln!(
                "moved tag {} from {old} to {}",
                image.reference, image.digest
            );
        }
    }
    Ok(0)
}

fn kind_of(store: &ImageStore, config_digest: &str) -> String {
    config_digest
        .parse()
        .ok()
        .and_then(|d| store.read_blob(&d).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("os").and_then(|o| o.as_str()).map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `82.3 KiB`-style sizes for tables.
fn human(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    let (value, unit) = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        .into_iter()
        .find(|(size, _)| bytes >= *size as f64)
        .map_or((bytes, "B"), |(size, unit)| (bytes / size as f64, unit));
    if unit == "B" {
        format!("{value} B")
    } else {
        format!("{value:.1} {unit}")
    }
}
