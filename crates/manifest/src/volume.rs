//! Volume grants: a host directory preopened for the guest at a guest path.

use crate::{ManifestError, serde_via_str};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Whether the guest may write to a volume. Read-only unless granted `rw`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeMode {
    /// The guest may read files and list directories.
    #[default]
    Ro,
    /// The guest may also create, write, rename and remove.
    Rw,
}

/// `HOST:GUEST[:ro|rw]`: the host directory HOST appears to the guest at the absolute
/// path GUEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Directory on the host (relative paths are resolved by whoever applies the grant).
    pub host: PathBuf,
    /// Absolute path inside the guest.
    pub guest: String,
    /// Access mode.
    pub mode: VolumeMode,
}

impl VolumeSpec {
    /// Checks the guest path: absolute, no `..`, and not the empty string.
    pub fn validate_guest(guest: &str, whole: &str) -> Result<(), ManifestError> {
        if !guest.starts_with('/') {
            return Err(ManifestError::invalid(
                "volume",
                whole,
                "guest path must be absolute",
            ));
        }
        if guest.split('/').any(|part| part == "..") {
            return Err(ManifestError::invalid(
                "volume",
                whole,
                "guest path must not contain `..`",
            ));
        }
        Ok(())
    }
}

impl FromStr for VolumeSpec {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let (host, guest, mode) = match parts.as_slice() {
            [host, guest] => (*host, *guest, VolumeMode::Ro),
            [host, guest, "ro"] => (*host, *guest, VolumeMode::Ro),
            [host, guest, "rw"] => (*host, *guest, VolumeMode::Rw),
            [_, _, _] => {
                return Err(ManifestError::invalid(
                    "volume",
                    s,
                    "mode must be `ro` or `rw`",
                ));
            }
            _ => {
                return Err(ManifestError::invalid(
                    "volume",
                    s,
                    "expected HOST:GUEST[:ro|rw]",
                ));
            }
        };
        if host.is_empty() {
            return Err(ManifestError::invalid("volume", s, "host path is empty"));
        }
        Self::validate_guest(guest, s)?;
        Ok(VolumeSpec {
            host: PathBuf::from(host),
            guest: guest.to_string(),
            mode,
        })
    }
}

impl fmt::Display for VolumeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            VolumeMode::Ro => "ro",
            VolumeMode::Rw => "rw",
        };
        write!(f, "{}:{}:{mode}", self.host.display(), self.guest)
    }
}

serde_via_str!(VolumeSpec, "a volume such as `./data:/data:rw`");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_read_only_unless_rw() {
        let v: VolumeSpec = "./data:/data".parse().unwrap();
        assert_eq!(v.mode, VolumeMode::Ro);
        let v: VolumeSpec = "/srv/x:/x:rw".parse().unwrap();
        assert_eq!(
            (v.host.to_str().unwrap(), v.guest.as_str(), v.mode),
            ("/srv/x", "/x", VolumeMode::Rw)
        );
    }

    #[test]
    fn bad_volumes_say_why() {
        assert_eq!(
            "a:/b:c".parse::<VolumeSpec>().unwrap_err().to_string(),
            "invalid volume `a:/b:c`: mode must be `ro` or `rw`"
        );
        assert!("a".parse::<VolumeSpec>().is_err());
        assert!("a:rel".parse::<VolumeSpec>().is_err());
        assert!("a:/x/../y".parse::<VolumeSpec>().is_err());
        assert!(":/x".parse::<VolumeSpec>().is_err());
    }
}
