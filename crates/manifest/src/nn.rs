//! The WASI-NN grant: the models an app may load by name, and how it may run them.

use crate::{ManifestError, serde_via_str};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// One model an app may load with `load-by-name`: `NAME=PATH` (an ONNX file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NnModelSpec {
    /// The name the app loads it by.
    pub name: String,
    /// The model file on the host.
    pub path: PathBuf,
}

impl NnModelSpec {
    /// Checks a model name: 1 to 128 letters, digits, `-`, `_` and `.`.
    pub fn validate_name(name: &str, whole: &str) -> Result<(), ManifestError> {
        let ok = !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if ok {
            Ok(())
        } else {
            Err(ManifestError::invalid(
                "model",
                whole,
                "expected NAME=PATH, the name of 1 to 128 letters, digits, `-`, `_` and `.`",
            ))
        }
    }
}

impl FromStr for NnModelSpec {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((name, path)) = s.split_once('=') else {
            return Err(ManifestError::invalid("model", s, "expected NAME=PATH"));
        };
        NnModelSpec::validate_name(name, s)?;
        if path.is_empty() {
            return Err(ManifestError::invalid("model", s, "the path is empty"));
        }
        Ok(NnModelSpec {
            name: name.to_string(),
            path: PathBuf::from(path),
        })
    }
}

impl fmt::Display for NnModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.path.display())
    }
}

serde_via_str!(NnModelSpec, "a model as NAME=PATH");

/// The engine that runs an app's models.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NnBackend {
    /// tract: pure Rust, built into wedge (the default).
    #[default]
    Tract,
    /// onnxruntime, loaded at run time from its shared library (wedge built with the
    /// `onnxruntime` cargo feature).
    Onnxruntime,
}

impl FromStr for NnBackend {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tract" => Ok(NnBackend::Tract),
            "onnxruntime" => Ok(NnBackend::Onnxruntime),
            _ => Err(ManifestError::invalid(
                "WASI-NN backend",
                s,
                "expected `tract` or `onnxruntime`",
            )),
        }
    }
}

impl fmt::Display for NnBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NnBackend::Tract => "tract",
            NnBackend::Onnxruntime => "onnxruntime",
        })
    }
}

serde_via_str!(NnBackend, "`tract` or `onnxruntime`");

/// Access to WASI-NN. The default grants nothing: no model, no loading of model bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NnGrant {
    /// Models the app may load by name; a later entry for a name wins.
    pub models: Vec<NnModelSpec>,
    /// Whether the app may load models from bytes it passes (`load`).
    pub allow_bytes: bool,
    /// Threads each inference may use [default: 1].
    pub threads: Option<u32>,
    /// Execution contexts the app may hold at once [default: 4].
    pub max_contexts: Option<u32>,
    /// The engine that runs its models [default: tract].
    pub backend: Option<NnBackend>,
}

/// Execution contexts an app may hold at once when not told otherwise.
pub const DEFAULT_NN_CONTEXTS: u32 = 4;

/// Threads an inference may use, at most, whatever a grant asks.
pub const MAX_NN_THREADS: u32 = 256;

impl NnGrant {
    /// Whether anything is granted.
    pub fn is_granted(&self) -> bool {
        !self.models.is_empty() || self.allow_bytes
    }

    /// `over`'s models added (replacing those of the same name) and its settings where
    /// it sets them.
    pub fn overlay(mut self, over: NnGrant) -> NnGrant {
        for m in over.models {
            self.models.retain(|old| old.name != m.name);
            self.models.push(m);
        }
        NnGrant {
            models: self.models,
            allow_bytes: self.allow_bytes || over.allow_bytes,
            threads: over.threads.or(self.threads),
            max_contexts: over.max_contexts.or(self.max_contexts),
            backend: over.backend.or(self.backend),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_parse_and_bad_names_are_refused() {
        let m: NnModelSpec = "mnist=./models/mnist.onnx".parse().unwrap();
        assert_eq!(m.name, "mnist");
        assert_eq!(m.path, PathBuf::from("./models/mnist.onnx"));
        assert_eq!(m.to_string(), "mnist=./models/mnist.onnx");
        for bad in ["mnist", "=x.onnx", "a b=x.onnx", "m="] {
            assert!(bad.parse::<NnModelSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlay_replaces_models_by_name() {
        let base = NnGrant {
            models: vec!["a=1.onnx".parse().unwrap(), "b=2.onnx".parse().unwrap()],
            threads: Some(2),
            ..NnGrant::default()
        };
        let over = NnGrant {
            models: vec!["a=3.onnx".parse().unwrap()],
            allow_bytes: true,
            ..NnGrant::default()
        };
        let merged = base.overlay(over);
        let names: Vec<String> = merged.models.iter().map(|m| m.to_string()).collect();
        assert_eq!(names, ["b=2.onnx", "a=3.onnx"]);
        assert!(merged.allow_bytes);
        assert_eq!(merged.threads, Some(2));
        assert_eq!(merged.backend, None);
    }

    #[test]
    fn backends_parse_print_and_overlay() {
        for b in [NnBackend::Tract, NnBackend::Onnxruntime] {
            assert_eq!(b.to_string().parse::<NnBackend>().unwrap(), b);
        }
        let err = "ort".parse::<NnBackend>().unwrap_err().to_string();
        assert!(err.contains("`tract` or `onnxruntime`"), "{err}");
        let base = NnGrant {
            backend: Some(NnBackend::Onnxruntime),
            ..NnGrant::default()
        };
        assert_eq!(
            base.clone().overlay(NnGrant::default()).backend,
            Some(NnBackend::Onnxruntime)
        );
        let over = NnGrant {
            backend: Some(NnBackend::Tract),
            ..NnGrant::default()
        };
        assert_eq!(base.overlay(over).backend, Some(NnBackend::Tract));
    }
}
