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
    /// The world of the component `wasm`, decoded from its type information.
    pub fn of(wasm: &[u8]) -> Result<Component, ImageError> {
        let decoded = wit_component::decode(wasm)
            .map_err(|e| ImageError::invalid("component", format!("{e:#}")))?;
        let wit_component::DecodedWasm::Component(resolve, world) = decoded else {
            return Err(ImageError::invalid(
                "component",
                "a WIT package, not a component",
            ));
        };
        let world = &resolve.worlds[world];
        Ok(Component {
            exports: world
                .exports
                .keys()
                .map(|key| resolve.name_world_key(key))
                .collect(),
            imports: world
                .imports
                .keys()
                .map(|key| resolve.name_world_key(key))
                .collect(),
            target: None,
        })
    }
}
