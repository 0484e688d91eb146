//! Secret files: created once with mode 0600, read back on every start.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use rand::RngCore;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Reads the secret in `path`, creating it (64 random hex characters, mode 0600) if absent.
pub fn load_or_create(path: &Path) -> anyhow::Result<String> {
    if path.exists() {
        return read(path);
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    write_private(path, &secret)?;
    Ok(secret)
}

/// Reads a secret file, trimmed; refuses one shorter than [`MIN_SECRET_BYTES`].
pub fn read(path: &Path) -> anyhow::Result<String> {
    let secret = fs::read_to_string(path)
        .with_context(|| format!("reading the secret in {}", path.display()))?
        .trim()
        .to_owned();
    if secret.len() < MIN_SECRET_BYTES {
        bail!(
            "the secret in {} is {} bytes; at least {MIN_SECRET_BYTES} are needed",
            path.display(),
            secret.len()
        );
    }
    Ok(secret)
}

/// Writes `contents` to `path` readable by the owner only (0600), atomically.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .context("a secret file needs a parent directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(contents.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
