//! Models named by Hugging Face id (`hub:ORG/NAME`): found in the local Hugging Face cache
//! (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`) and, only in builds
//! with the non-default `hub` cargo feature, downloaded into that cache with the `hf-hub`
//! crate. attnscope's default build never touches the network.
//!
//! Cache layout (the one `huggingface_hub` and `hf-hub` write):
//! `models--ORG--NAME/refs/main` holds a commit hash; `models--ORG--NAME/snapshots/<hash>/`
//! holds the files (symlinks into `blobs/`).

use std::path::{Path, PathBuf};

use super::EncoderError;

/// The files a model folder needs; the download fetches exactly these.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

fn hub_err(id: &str, reason: impl Into<String>) -> EncoderError {
    EncoderError::Hub {
        id: id.to_string(),
        reason: reason.into(),
    }
}

/// Checks that `id` is `NAME` or `ORG/NAME` of `[A-Za-z0-9._-]`, without `..`.
///
/// # Errors
/// [`EncoderError::Hub`] naming the problem.
pub fn check_id(id: &str) -> Result<(), EncoderError> {
    let parts: Vec<&str> = id.split('/').collect();
    let part_ok = |p: &str| {
        !p.is_empty()
            && p != "."
            && !p.contains("..")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if parts.len() > 2 || !parts.iter().all(|p| part_ok(p)) {
        return Err(hub_err(
            id,
            "a model id is NAME or ORG/NAME of letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

/// The Hugging Face cache folder from the environment.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(home) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(home).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
}

/// The snapshot folder of `id` in `cache` if `refs/main` names a snapshot holding every file of
/// [`MODEL_FILES`]. The commit hash read from `refs/main` must be a plain hex name, so the path
/// built from it stays inside the model's cache folder.
pub fn cached_snapshot(cache: &Path, id: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    let commit = std::fs::read_to_string(repo.join("refs").join("main")).ok()?;
    let commit = commit.trim();
    if commit.is_empty() || commit.len() > 64 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let snapshot = repo.join("snapshots").join(commit);
    MODEL_FILES
        .iter()
        .all(|f| snapshot.join(f).is_file())
        .then_some(snapshot)
}

/// The local folder of model `id`: its cached snapshot, else (with the `hub` feature) a fresh
/// download of [`MODEL_FILES`] into the cache.
///
/// # Errors
/// [`EncoderError::Hub`]: a malformed id, a model not in the cache in a build without the
/// `hub` feature, or a failed download.
pub fn resolve(id: &str) -> Result<PathBuf, EncoderError> {
    check_id(id)?;
    if let Some(cache) = cache_dir()
        && let Some(snapshot) = cached_snapshot(&cache, id)
    {
        return Ok(snapshot);
    }
    download(id)
}

#[cfg(not(feature = "hub"))]
fn download(id: &str) -> Result<PathBuf, EncoderError> {
    Err(hub_err(
        id,
        format!(
            "not in the Hugging Face cache ({}), and this attnscope was built without the `hub` feature (cargo build --release --features hub) so it does not download; or pass a local folder",
            cache_dir().map_or_else(
                || String::from("no cache folder"),
                |d| d.display().to_string()
            )
        ),
    ))
}

/// Downloads [`MODEL_FILES`] of `id` into the Hugging Face cache with `hf-hub` (honours
/// `HF_HOME` and `HF_ENDPOINT`; a progress bar on stderr) and returns the snapshot folder.
#[cfg(feature = "hub")]
fn download(id: &str) -> Result<PathBuf, EncoderError> {
    let mut builder = hf_hub::api::sync::ApiBuilder::from_env().with_progress(true);
    if let Some(cache) = cache_dir() {
        builder = builder.with_cache_dir(cache);
    }
    let api = builder.build().map_err(|e| hub_err(id, e.to_string()))?;
    let repo = api.model(id.to_string());
    let mut dir = None;
    for file in MODEL_FILES {
        let path = repo
            .get(file)
            .map_err(|e| hub_err(id, format!("{file}: {e}")))?;
        dir = path.parent().map(Path::to_path_buf);
    }
    dir.ok_or_else(|| hub_err(id, "the download returned no folder"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_and_cached_snapshots_found_without_network() {
        for ok in [
            "bert-base-uncased",
            "sentence-transformers/all-MiniLM-L6-v2",
        ] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b/c", "../x", "a/..", "org/na me", "/abs"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--org--tiny");
        let snap = repo.join("snapshots").join("abc123");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc123\n").unwrap();
        assert_eq!(
            cached_snapshot(cache.path(), "org/tiny"),
            None,
            "files missing"
        );
        for f in MODEL_FILES {
            std::fs::write(snap.join(f), "x").unwrap();
        }
        assert_eq!(cached_snapshot(cache.path(), "org/tiny"), Some(snap));
        // A ref that would leave the cache folder is ignored.
        std::fs::write(repo.join("refs/main"), "../../../etc").unwrap();
        assert_eq!(cached_snapshot(cache.path(), "org/tiny"), None);
    }
}
