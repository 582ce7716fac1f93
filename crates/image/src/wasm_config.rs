//! The config blob of a Wasm OCI artifact (CNCF TAG-Runtime layout): media types and the
//! `application/vnd.wasm.config.v0+json` document, with the component's world for a
//! component.

use crate::ImageError;
use serde::{Deserialize, Serialize};

/// Config media type of a Wasm image.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Layer media type of the Wasm module or component.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The `architecture` of every Wasm image.
pub const ARCHITECTURE: &str = "wasm";
/// The `os` of a core module.
pub const MODULE_OS: &str = "wasip1";
/// The `os` of a component.
pub const COMPONENT_OS: &str = "wasip2";

/// The config document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// When the image was built.
    pub created: chrono::DateTime<chrono::Utc>,
    /// Who built it.
    pub author: Option<String>,
    /// Always [`ARCHITECTURE`].
    pub architecture: String,
    /// [`MODULE_OS`] or [`COMPONENT_OS`].
    pub os: String,
    /// The layers' digests, in the manifest's order (so each config is unique).
    pub layer_digests: Vec<String>,
    /// For a component: its world.
    pub component: Option<Component>,
}

/// A component's world, as the config lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// Its exports (`wasi:cli/run@0.2.0` …).
    pub exports: Vec<String>,
    /// Its imports.
    pub imports: Vec<String>,
    /// The world it targets, when known.
    pub target: Option<String>,
}

impl Component {
    /// The world of the component `wasm`: the imports and exports of its outermost
    /// component (`wasi:cli/run@0.2.0`, or a plain name for a function). Read with
    /// wasmparser's parser alone (`wedge build` validates the Wasm before).
    pub fn of(wasm: &[u8]) -> Result<Component, ImageError> {
        let invalid = |e: wasmparser::BinaryReaderError| ImageError::invalid("component", e);
        let mut component = Component {
            exports: Vec::new(),
            imports: Vec::new(),
            target: None,
        };
        let mut depth = 0usize;
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            match payload.map_err(invalid)? {
                wasmparser::Payload::Version { .. } => depth += 1,
                wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
                wasmparser::Payload::ComponentImportSection(reader) if depth == 1 => {
                    for import in reader {
                        component
                            .imports
                            .push(import.map_err(invalid)?.name.name.to_string());
                    }
                }
                wasmparser::Payload::ComponentExportSection(reader) if depth == 1 => {
                    for export in reader {
                        component
                            .exports
                            .push(export.map_err(invalid)?.name.name.to_string());
                    }
                }
                _ => {}
            }
        }
        Ok(component)
    }
}
