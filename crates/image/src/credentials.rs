//! Registry credentials: wedge's own (`wedge login`, `<root>/auth.json`) first, then the
//! standard Docker client file (`$DOCKER_CONFIG/config.json`, default
//! `~/.docker/config.json`). Both use Docker's format:
//! `{"auths": {"HOST": {"auth": base64("USER:PASSWORD")}}}`. In Docker's file, a
//! credential helper named for the registry (`credHelpers`) or for every registry
//! (`credsStore`) is asked first, as the Docker CLI does: `docker-credential-NAME get`
//! with the registry on stdin, answering `{"Username", "Secret"}` in JSON.

use crate::ImageError;
use crate::store::write_atomically;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci_client::secrets::RegistryAuth;
use std::path::{Path, PathBuf};

/// Docker Hub's key in Docker's credential file.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The credentials to use for `registry`, or anonymous access.
pub fn lookup(registry: &str, wedge_auth_file: &Path) -> Result<RegistryAuth, ImageError> {
    if let Some(auth) = read_entry(wedge_auth_file, registry)? {
        return Ok(auth);
    }
    let Some(docker) = docker_config_file() else {
        return Ok(RegistryAuth::Anonymous);
    };
    let doc = read_doc(&docker)?;
    let helper = doc["credHelpers"][registry]
        .as_str()
        .or_else(|| doc["credsStore"].as_str())
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper
        && let Some(auth) = ask_helper(helper, registry)?
    {
        return Ok(auth);
    }
    Ok(read_entry(&docker, registry)?.unwrap_or(RegistryAuth::Anonymous))
}

/// Runs `docker-credential-HELPER get` for `registry`. A helper that has nothing for it
/// (Docker's helpers say "credentials not found") means no credentials; a missing
/// helper or any other failure is an error naming the helper.
fn ask_helper(helper: &str, registry: &str) -> Result<Option<RegistryAuth>, ImageError> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let failed =
        |why: String| ImageError::invalid("credential helper", format!("`{program}`: {why}"));
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is judged by its answer.
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!(
            "{}: {}",
            out.status,
            said.trim().replace('\n', " ")
        )));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&out.stdout)
        .map_err(|e| failed(format!("unreadable answer: {e}")))?;
    // Docker's convention for an identity token.
    Ok(Some(if answer.username == "<token>" {
        RegistryAuth::Bearer(answer.secret)
    } else {
        RegistryAuth::Basic(answer.username, answer.secret)
    }))
}

/// Stores credentials for `registry` in wedge's auth file (mode 0600).
pub fn save(
    wedge_auth_file: &Path,
    registry: &str,
    user: &str,
    password: &str,
) -> Result<(), ImageError> {
    let mut doc = read_doc(wedge_auth_file)?;
    let encoded = STANDARD.encode(format!("{user}:{password}"));
    doc["auths"][registry] = serde_json::json!({ "auth": encoded });
    write_doc(wedge_auth_file, &doc)
}

/// Removes `registry`'s credentials from wedge's auth file; returns whether there were any.
pub fn remove(wedge_auth_file: &Path, registry: &str) -> Result<bool, ImageError> {
    let mut doc = read_doc(wedge_auth_file)?;
    let removed = doc["auths"]
        .as_object_mut()
        .and_then(|a| a.remove(registry))
        .is_some();
    if removed {
        write_doc(wedge_auth_file, &doc)?;
    }
    Ok(removed)
}

fn docker_config_file() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    }
}

fn read_doc(file: &Path) -> Result<serde_json::Value, ImageError> {
    match std::fs::read(file) {
        Ok(bytes) => {
            let mut doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                ImageError::invalid("credentials file", format!("`{}`: {e}", file.display()))
            })?;
            if !doc.get("auths").is_some_and(|a| a.is_object()) {
                doc["auths"] = serde_json::json!({});
            }
            Ok(doc)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(serde_json::json!({ "auths": {} }))
        }
        Err(e) => Err(ImageError::Io {
            path: file.to_path_buf(),
            error: e,
        }),
    }
}

fn write_doc(file: &Path, doc: &serde_json::Value) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(ImageError::io(dir))?;
    }
    let bytes =
        serde_json::to_vec_pretty(doc).map_err(|e| ImageError::invalid("credentials file", e))?;
    write_atomically(file, &bytes)?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
        .map_err(ImageError::io(file))
}

fn read_entry(file: &Path, registry: &str) -> Result<Option<RegistryAuth>, ImageError> {
    let doc = read_doc(file)?;
    let auths = &doc["auths"];
    let keys = [
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    let hub = (registry == "docker.io" || registry == "index.docker.io")
        .then_some(DOCKER_HUB_KEY.to_string());
    let Some(entry) = keys.iter().chain(hub.iter()).find_map(|k| auths.get(k)) else {
        return Ok(None);
    };
    let Some(encoded) = entry.get("auth").and_then(|a| a.as_str()) else {
        return Ok(None);
    };
    let decoded = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            ImageError::invalid(
                "credentials file",
                format!("`{}`: bad `auth` for `{registry}`", file.display()),
            )
        })?;
    let (user, password) = decoded.split_once(':').ok_or_else(|| {
        ImageError::invalid(
            "credentials file",
            format!("`{}`: bad `auth` for `{registry}`", file.display()),
        )
    })?;
    Ok(Some(RegistryAuth::Basic(
        user.to_string(),
        password.to_string(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_credentials_are_found_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        assert!(matches!(
            lookup("localhost:5000", &file).unwrap(),
            RegistryAuth::Anonymous
        ));
        save(&file, "localhost:5000", "alice", "s3:cret").unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        match lookup("localhost:5000", &file).unwrap() {
            RegistryAuth::Basic(u, p) => assert_eq!((u.as_str(), p.as_str()), ("alice", "s3:cret")),
            other => panic!("unexpected {other:?}"),
        }
        assert!(remove(&file, "localhost:5000").unwrap());
        assert!(!remove(&file, "localhost:5000").unwrap());
    }
}
