//! The files an executor wrote to its output directory, as artifacts to upload.
//!
//! Only regular files count: a symbolic link in the output directory is skipped, so an
//! agent cannot make the worker upload a file from outside the run. Each file gets an
//! artifact type from its name (`plan.json` → `plan`; `.md`, `.txt`, `.rst`, `.adoc` →
//! `document`; anything else → `file`) and a media type from its extension.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tlao_domain::{ArtifactName, ArtifactType, ProducedArtifact};

/// The artifact types of the files a run's output directory holds, sorted by name.
pub fn collect_outputs(outdir: &Path) -> io::Result<Vec<ProducedArtifact>> {
    let mut files = Vec::new();
    walk(outdir, outdir, &mut files)?;
    files.sort();
    let mut artifacts = Vec::with_capacity(files.len());
    for (name, path) in files {
        match ArtifactName::try_from(name.clone()) {
            Ok(artifact_name) => artifacts.push(ProducedArtifact {
                artifact_type: artifact_type_for(&name),
                content_type: content_type_for(&name).to_owned(),
                name: artifact_name,
                path,
            }),
            Err(error) => {
                tracing::warn!(
                    operation = "collect_outputs", name = %name, %error,
                    "output file skipped: its name is not a valid artifact name"
                );
            }
        }
    }
    Ok(artifacts)
}

/// Collects `(name, path)` of the regular files under `dir`; names are relative to
/// `root`, `/`-separated.
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            walk(root, &path, files)?;
        } else if file_type.is_file() {
            let Ok(relative) = path.strip_prefix(root) else {
                continue;
            };
            let name: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push((name.join("/"), path));
        }
    }
    Ok(())
}

/// The artifact type of an output file named `name`.
pub fn artifact_type_for(name: &str) -> ArtifactType {
    let file_name = name.rsplit('/').next().unwrap_or(name);
    if file_name == "plan.json" {
        return ArtifactType::Plan;
    }
    match extension(file_name).as_deref() {
        Some("md" | "markdown" | "txt" | "rst" | "adoc") => ArtifactType::Document,
        _ => ArtifactType::File,
    }
}

/// The media type of a file named `name`, from its extension.
pub fn content_type_for(name: &str) -> &'static str {
    let file_name = name.rsplit('/').next().unwrap_or(name);
    match extension(file_name).as_deref() {
        Some("json") => "application/json",
        Some("md" | "markdown") => "text/markdown; charset=utf-8",
        Some("txt" | "log") => "text/plain; charset=utf-8",
        Some("rst") => "text/x-rst; charset=utf-8",
        Some("adoc") => "text/asciidoc; charset=utf-8",
        Some("patch" | "diff") => "text/x-diff; charset=utf-8",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("xml") => "application/xml",
        Some("yaml" | "yml") => "application/yaml",
        Some("toml") => "application/toml",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("gz" | "tgz") => "application/gzip",
        Some("tar") => "application/x-tar",
        _ => "application/octet-stream",
    }
}

fn extension(file_name: &str) -> Option<String> {
    let (stem, extension) = file_name.rsplit_once('.')?;
    (!stem.is_empty()).then(|| extension.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decide_types() {
        assert_eq!(artifact_type_for("plan.json"), ArtifactType::Plan);
        assert_eq!(artifact_type_for("docs/plan.json"), ArtifactType::Plan);
        assert_eq!(artifact_type_for("other.json"), ArtifactType::File);
        for doc in ["README.md", "notes.TXT", "a/b.rst", "guide.adoc"] {
            assert_eq!(artifact_type_for(doc), ArtifactType::Document, "{doc}");
        }
        assert_eq!(artifact_type_for(".md"), ArtifactType::File);
        assert_eq!(content_type_for("plan.json"), "application/json");
        assert_eq!(content_type_for("x.bin"), "application/octet-stream");
    }
}
