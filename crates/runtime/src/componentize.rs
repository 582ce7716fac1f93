//! Turning a `wasm32-wasip1` core module that imports wedge's host interfaces (e.g. a C
//! app using `wit-bindgen c` bindings for `wedge:edge/messaging`) into a component:
//! wit-component with the WASI preview 1 adapter of this wasmtime release, the command
//! adapter for a module with `_start`, the reactor one otherwise (a push handler).
//!
//! A module built with wit-bindgen carries its world in a `component-type` custom
//! section; one without it gets wedge's own world embedded (`wedge:edge/imports`, or
//! `wedge:edge/push-handler` when it exports the handler), from the WIT compiled into
//! this binary.

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::{Resolve, SourceMap};

/// wedge's WIT packages, dependencies first: (file name, contents) per file.
const WIT_PACKAGES: &[&[(&str, &str)]] = &[
    &[
        (
            "keyvalue/atomic.wit",
            include_str!("../../../wit/deps/keyvalue/atomic.wit"),
        ),
        (
            "keyvalue/batch.wit",
            include_str!("../../../wit/deps/keyvalue/batch.wit"),
        ),
        (
            "keyvalue/store.wit",
            include_str!("../../../wit/deps/keyvalue/store.wit"),
        ),
        (
            "keyvalue/watch.wit",
            include_str!("../../../wit/deps/keyvalue/watch.wit"),
        ),
        (
            "keyvalue/world.wit",
            include_str!("../../../wit/deps/keyvalue/world.wit"),
        ),
    ],
    &[
        (
            "config/store.wit",
            include_str!("../../../wit/deps/config/store.wit"),
        ),
        (
            "config/world.wit",
            include_str!("../../../wit/deps/config/world.wit"),
        ),
    ],
    &[
        ("messaging.wit", include_str!("../../../wit/messaging.wit")),
        ("wedge.wit", include_str!("../../../wit/wedge.wit")),
    ],
];

/// The export a push handler's core module has.
const HANDLER_FUNC: &str = "wedge:edge/handler@0.1.0#handle";

/// What a core module's imports and exports say about it.
struct Shape {
    /// It imports a component-model interface (`namespace:package/interface`).
    interface_imports: bool,
    /// It exports `_start`.
    command: bool,
    /// It exports the push handler's `handle`.
    handler: bool,
    /// It carries a `component-type` section (built with wit-bindgen).
    has_world: bool,
}

fn shape(module: &[u8]) -> Result<Shape, String> {
    let mut shape = Shape {
        interface_imports: false,
        command: false,
        handler: false,
        has_world: false,
    };
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        match payload.map_err(|e| e.to_string())? {
            wasmparser::Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    shape.interface_imports |= is_interface(import.module);
                }
            }
            wasmparser::Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export.map_err(|e| e.to_string())?;
                    shape.command |= export.name == "_start";
                    shape.handler |= export.name == HANDLER_FUNC;
                }
            }
            wasmparser::Payload::CustomSection(section) => {
                shape.has_world |= section.name().starts_with("component-type");
            }
            _ => {}
        }
    }
    Ok(shape)
}

/// Whether an import's module name is a component-model interface, such as
/// `wedge:edge/messaging@0.1.0` or `[export]wedge:edge/handler@0.1.0`.
fn is_interface(module: &str) -> bool {
    let name = module.rsplit(']').next().unwrap_or(module);
    name.contains(':') && name.contains('/')
}

/// Whether `wasm` is a core module that must become a component to run: it imports
/// wedge's host interfaces, or exports the push handler. A plain WASI preview 1 module
/// does not, nor does a component.
pub fn needs_componentizing(wasm: &[u8]) -> bool {
    wasmparser::Parser::is_core_wasm(wasm)
        && shape(wasm).is_ok_and(|s| s.interface_imports || s.handler)
}

/// Turns a core module into a component (see the module docs); the error is one line.
pub fn componentize(module: &[u8]) -> Result<Vec<u8>, String> {
    let shape = shape(module)?;
    let mut module = module.to_vec();
    if !shape.has_world {
        let world = if shape.handler && !shape.command {
            "push-handler"
        } else {
            "imports"
        };
        let (resolve, world) = wedge_world(world)?;
        embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
            .map_err(|e| format!("{e:#}"))?;
    }
    let adapter = if shape.command {
        WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER
    } else {
        WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
    };
    ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter))
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("{e:#}").replace('\n', " "))
}

/// wedge's WIT resolved, and `world` of `wedge:edge` (the last package) in it.
fn wedge_world(world: &str) -> Result<(Resolve, wit_parser::WorldId), String> {
    let mut resolve = Resolve::default();
    let mut packages = Vec::new();
    for files in WIT_PACKAGES {
        let mut map = SourceMap::default();
        for (name, contents) in *files {
            map.push(std::path::Path::new(name), *contents);
        }
        let group = map.parse().map_err(|(_, e)| e.to_string())?;
        packages.push(resolve.push_group(group).map_err(|e| e.to_string())?);
    }
    let wedge = packages.split_off(packages.len().saturating_sub(1));
    let world = resolve
        .select_world(&wedge, Some(world))
        .map_err(|e| format!("{e:#}"))?;
    Ok((resolve, world))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_wit_resolves_to_both_worlds() {
        for world in ["imports", "push-handler"] {
            let (resolve, id) = wedge_world(world).unwrap();
            assert_eq!(resolve.worlds[id].name, world);
        }
    }

    #[test]
    fn interface_imports_are_told_from_wasi_preview_1() {
        assert!(is_interface("wedge:edge/messaging@0.1.0"));
        assert!(is_interface("[export]wedge:edge/handler@0.1.0"));
        assert!(!is_interface("wasi_snapshot_preview1"));
        assert!(!is_interface("env"));
    }

    #[test]
    fn a_c_module_with_wit_bindgen_imports_becomes_a_command_component() {
        let module = std::fs::read(wedge_test_programs::c::PUBLISHER).unwrap();
        assert!(needs_componentizing(&module));
        let component = componentize(&module).unwrap();
        assert!(wasmparser::Parser::is_component(&component));
        assert!(!needs_componentizing(&component));
    }

    #[test]
    fn garbage_is_a_one_line_error() {
        let mut module = std::fs::read(wedge_test_programs::c::PUBLISHER).unwrap();
        module.truncate(module.len() / 2);
        let err = componentize(&module).unwrap_err();
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_plain_wasip1_module_is_left_alone() {
        let module = std::fs::read(wedge_test_programs::p1::HELLO).unwrap();
        assert!(!needs_componentizing(&module));
    }
}
