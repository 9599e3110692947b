//! A lasting DTLS identity: one certificate per user, kept in the state folder, so the
//! fingerprint peers see is the same every run and can be verified once and remembered.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use rtc::crypto::SignatureScheme;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};

/// Why the identity could not be had.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("could not read the identity file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("could not create the identity file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "the identity file {path} is damaged ({why}); move it away to start a new identity (peers who verified you will be warned)"
    )]
    Corrupt { path: PathBuf, why: String },
    #[error("could not make a DTLS certificate: {0}")]
    Generate(String),
}

/// Our certificate and its SHA-256 fingerprint, as SDP writes it (`AB:CD:…`).
#[derive(Clone)]
pub struct Identity {
    certificate: RTCCertificate,
    pub fingerprint: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads the identity at `path`, or makes one there (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> Result<Self, IdentityError> {
        match fs::read_to_string(path) {
            Ok(pem) => {
                Self::from_pem(&pem).map_err(|why| IdentityError::Corrupt { path: path.to_owned(), why })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(source) => Err(IdentityError::Read { path: path.to_owned(), source }),
        }
    }

    fn create(path: &Path) -> Result<Self, IdentityError> {
        let crypto = rtc::crypto::default_provider().map_err(|e| IdentityError::Generate(e.to_string()))?;
        let params = CertificateParams::new(vec!["peertalk".to_owned()])
            .map_err(|e| IdentityError::Generate(e.to_string()))?;
        let certificate = RTCCertificate::generate(crypto.crypto(), SignatureScheme::EcdsaP256Sha256, params)
            .map_err(|e| IdentityError::Generate(e.to_string()))?;
        let pem = certificate.serialize_pem().map_err(|e| IdentityError::Generate(e.to_string()))?;
        let write = |source| IdentityError::Write { path: path.to_owned(), source };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(write)?;
        }
        // Written whole under another name, then linked into place: two clients starting
        // at once never read half a file, and the first one's identity is the one kept.
        let partial = path.with_extension(format!("new-{}", std::process::id()));
        let mut file = private_file(&partial).map_err(write)?;
        file.write_all(pem.as_bytes()).and_then(|()| file.sync_all()).map_err(write)?;
        let linked = fs::hard_link(&partial, path);
        let _ = fs::remove_file(&partial);
        match linked {
            Ok(()) => Self::from_pem(&pem).map_err(IdentityError::Generate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::load_or_create(path),
            Err(source) => Err(write(source)),
        }
    }

    fn from_pem(pem: &str) -> Result<Self, String> {
        // rtc 0.21.1's `from_pem` indexes the EXPIRES block without checking its length, so
        // a damaged file is looked at first: it must not panic.
        let first = pem.split("\n\n").next().unwrap_or_default();
        let expires = first.lines().filter(|l| !l.starts_with("-----")).collect::<String>();
        if !first.starts_with("-----BEGIN EXPIRES-----") || expires.len() < 12 {
            return Err("it does not start with the certificate's expiry block".to_owned());
        }
        let crypto = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
        let certificate = RTCCertificate::from_pem(pem, crypto.crypto()).map_err(|e| e.to_string())?;
        let fingerprint = certificate
            .get_fingerprints(crypto.crypto())
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|f| f.algorithm == "sha-256")
            .map(|f| f.value.to_uppercase())
            .ok_or("it holds no certificate")?;
        Ok(Self { certificate, fingerprint })
    }

    pub(super) fn certificate(&self) -> RTCCertificate {
        self.certificate.clone()
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create_new(true).open(path)
}

/// Where the identity lives by default: `$XDG_STATE_HOME/peertalk/identity.pem`, else
/// `~/.local/state/peertalk/identity.pem`.
#[must_use]
pub fn default_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))?;
    Some(state.join("peertalk").join("identity.pem"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("peertalk-identity-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir.join("identity.pem")
    }

    #[test]
    fn an_identity_is_made_once_kept_private_and_read_back_the_same() {
        let path = scratch("keep");
        let first = Identity::load_or_create(&path).expect("made");
        let again = Identity::load_or_create(&path).expect("read");
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1, "{}", first.fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let _ = fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn a_damaged_identity_is_an_error_that_says_what_to_do() {
        let path = scratch("damaged");
        fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        for damage in ["", "garbage", "-----BEGIN EXPIRES-----\nAA==\n-----END EXPIRES-----\n"] {
            fs::write(&path, damage).expect("write");
            let err = Identity::load_or_create(&path).expect_err("refused").to_string();
            assert!(err.contains("is damaged") && err.contains("move it away"), "{err}");
        }
        let _ = fs::remove_dir_all(path.parent().expect("dir"));
    }
}
