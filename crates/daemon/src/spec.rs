//! A create request checked and parsed: the operator's grants (parsed with the request,
//! in the flags' grammar) checked for what only the daemon needs, the restart policy,
//! the engine tier.

use crate::DaemonError;
use crate::lifecycle::RestartPolicy;
use crate::types::CreateRequest;
use std::net::SocketAddr;
use std::str::FromStr;
use wedge_manifest::{DurationSpec, EnvGrant, Grants, VolumeSpec};
use wedge_runtime::EngineKind;

/// What a container runs with, from its [`CreateRequest`].
#[derive(Debug, Clone)]
pub struct Spec {
    /// The operator's grants (laid over what the app asks for at each start).
    pub flags: Grants,
    /// Whether the image's requested env and network are granted too.
    pub grant_requested: bool,
    /// Arguments after the app's own.
    pub args: Vec<String>,
    /// When to restart.
    pub restart: RestartPolicy,
    /// Compiler tier.
    pub engine: EngineKind,
    /// For an HTTP app: the address its server listens on.
    pub port: Option<SocketAddr>,
    /// For an HTTP app: how long it may wait for the next piece of a request body.
    pub body_timeout: Option<std::time::Duration>,
}

impl Spec {
    /// Checks every field; the first bad one is a [`DaemonError::BadRequest`] naming it.
    pub fn parse(r: &CreateRequest) -> Result<Spec, DaemonError> {
        if r.image.is_empty() {
            return Err(DaemonError::BadRequest("`image` is required".into()));
        }
        if let Some(name) = &r.name {
            check_name(name)?;
        }
        let grants = &r.grants;
        if let Some(v) = grants.volumes.iter().find(|v| !v.host.is_absolute()) {
            return Err(DaemonError::BadRequest(format!(
                "invalid volume: host path `{}` must be absolute",
                v.host.display()
            )));
        }
        if let Some(m) = grants.nn.models.iter().find(|m| !m.path.is_absolute()) {
            return Err(DaemonError::BadRequest(format!(
                "invalid model `{m}`: the path must be absolute"
            )));
        }
        if let Some(EnvGrant::Inherit(key)) = grants
            .env
            .iter()
            .find(|e| matches!(e, EnvGrant::Inherit(_)))
        {
            return Err(DaemonError::BadRequest(format!(
                "invalid env `{key}`: the daemon needs `KEY=VALUE`"
            )));
        }
        Ok(Spec {
            flags: grants.clone(),
            grant_requested: r.grant_requested,
            args: r.args.clone(),
            restart: r.restart.as_deref().unwrap_or("no").parse()?,
            engine: parse_opt::<EngineKind>(&r.engine, "engine")?.unwrap_or_default(),
            port: r.port.as_deref().map(parse_port).transpose()?,
            body_timeout: parse_opt::<DurationSpec>(&r.body_timeout, "body timeout")?.map(|t| t.0),
        })
    }
}

/// Pins the request's volumes at create: each host path is resolved now (symbolic
/// links followed) and kept in its canonical form, so a link swapped before a start is
/// not followed (see [`check_pinned`]).
pub fn pin_volumes(r: &mut CreateRequest) -> Result<(), DaemonError> {
    for volume in &mut r.grants.volumes {
        if !volume.host.is_absolute() {
            // Refused with its own message by `Spec::parse`.
            continue;
        }
        volume.host = std::fs::canonicalize(&volume.host).map_err(|e| {
            DaemonError::BadRequest(format!(
                "invalid volume `{volume}`: cannot resolve `{}`: {e}",
                volume.host.display()
            ))
        })?;
    }
    Ok(())
}

/// Checks at a start that every volume's host path still resolves to itself, the
/// canonical path pinned at create: a folder on the way replaced by a symbolic link
/// (to somewhere the container was not granted) is refused.
pub fn check_pinned(volumes: &[VolumeSpec]) -> Result<(), DaemonError> {
    for v in volumes {
        let now = std::fs::canonicalize(&v.host);
        if now.as_deref().ok() != Some(v.host.as_path()) {
            let now = match now {
                Ok(p) => format!("now resolves to `{}`", p.display()),
                Err(e) => format!("cannot be resolved: {e}"),
            };
            return Err(DaemonError::Conflict(format!(
                "volume host path `{}` changed since the container was created: it {now}",
                v.host.display()
            )));
        }
    }
    Ok(())
}

/// Names as Docker allows them: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128 characters.
pub fn check_name(name: &str) -> Result<(), DaemonError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(DaemonError::BadRequest(format!(
            "invalid container name `{name}`: use letters, digits, `_`, `.` and `-`, starting with a letter or digit"
        )))
    }
}

/// Why a daemon built without the `serve` feature (a device build) refuses a port.
pub(crate) const NO_HTTP_SERVER: &str = "this wedged is built without the HTTP server \
    (Cargo feature `serve`, docs/edge.md): it cannot serve an HTTP app on a port";

/// `-p PORT` (every interface, as Docker binds) or `-p IP:PORT`. A daemon without the
/// HTTP server refuses any.
pub fn parse_port(s: &str) -> Result<SocketAddr, DaemonError> {
    if !cfg!(feature = "serve") {
        return Err(DaemonError::BadRequest(NO_HTTP_SERVER.into()));
    }
    let addr = match s.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([0, 0, 0, 0], port))),
        Err(_) => s.parse::<SocketAddr>(),
    };
    addr.map_err(|_| {
        DaemonError::BadRequest(format!(
            "invalid port `{s}`: expected PORT or IP:PORT, e.g. `8080` or `127.0.0.1:8080`"
        ))
    })
}

fn parse_opt<T: FromStr>(item: &Option<String>, what: &str) -> Result<Option<T>, DaemonError>
where
    T::Err: std::fmt::Display,
{
    item.as_deref().map(|s| parse_one(s, what)).transpose()
}

fn parse_one<T: FromStr>(s: &str, what: &str) -> Result<T, DaemonError>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| DaemonError::BadRequest(format!("invalid {what} `{s}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wedge_manifest::ByteSize;

    fn grants(json: &str) -> Grants {
        serde_json::from_str(json).unwrap()
    }

    fn request() -> CreateRequest {
        CreateRequest {
            image: "/apps/hello.wasm".into(),
            ..CreateRequest::default()
        }
    }

    #[test]
    fn good_and_bad_fields() {
        let spec = Spec::parse(&CreateRequest {
            grants: grants(
                r#"{"env": ["A=1"], "volumes": ["/tmp:/data:rw"],
                               "limits": {"memory": "16MiB"}}"#,
            ),
            restart: Some("on-failure:3".into()),
            ..request()
        })
        .unwrap();
        assert_eq!(spec.restart, RestartPolicy::OnFailure(Some(3)));
        assert_eq!(spec.flags.limits.memory, Some(ByteSize(16 << 20)));
        assert_eq!(parse_port("8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(
            parse_port("127.0.0.1:9000").unwrap().to_string(),
            "127.0.0.1:9000"
        );
        for (bad, message) in [
            (
                CreateRequest {
                    grants: grants(r#"{"volumes": ["rel:/data"]}"#),
                    ..request()
                },
                "must be absolute",
            ),
            (
                CreateRequest {
                    grants: grants(r#"{"nn": {"models": ["m=m.onnx"]}}"#),
                    ..request()
                },
                "must be absolute",
            ),
            (
                CreateRequest {
                    grants: grants(r#"{"env": ["HOME"]}"#),
                    ..request()
                },
                "needs `KEY=VALUE`",
            ),
            (
                CreateRequest {
                    restart: Some("never".into()),
                    ..request()
                },
                "invalid restart policy",
            ),
            (
                CreateRequest {
                    name: Some("-x".into()),
                    ..request()
                },
                "invalid container name",
            ),
            (
                CreateRequest {
                    engine: Some("v8".into()),
                    ..request()
                },
                "invalid engine",
            ),
            (
                CreateRequest {
                    port: Some("80:8080".into()),
                    ..request()
                },
                "invalid port `80:8080`",
            ),
            (CreateRequest::default(), "`image` is required"),
        ] {
            let err = Spec::parse(&bad).unwrap_err();
            assert_eq!(err.status(), 400);
            assert!(err.to_string().contains(message), "{err}");
        }
    }
}
