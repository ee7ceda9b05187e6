//! Expanding command-line paths into the files to examine: folders are
//! walked recursively in name order; symbolic links to files are followed,
//! links to folders are not (they could form cycles).
use std::fs;
use std::path::{Path, PathBuf};

use crate::IndexError;

/// A path met while walking that could not be listed.
#[derive(Debug)]
pub struct WalkProblem {
    pub path: PathBuf,
    pub error: String,
}

/// Absolute paths of every regular file under `inputs`, sorted, without
/// duplicates and without the files in `exclude` (the index itself).
pub fn files(
    inputs: &[PathBuf],
    exclude: &[PathBuf],
) -> Result<(Vec<PathBuf>, Vec<WalkProblem>), IndexError> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for input in inputs {
        let meta = fs::metadata(input)
            .map_err(|e| IndexError::Input(format!("{}: {e}", input.display())))?;
        let abs = fs::canonicalize(input)
            .map_err(|e| IndexError::Input(format!("{}: {e}", input.display())))?;
        if meta.is_dir() {
            walk_dir(&abs, &mut out, &mut problems);
        } else if meta.is_file() {
            out.push(abs);
        } else {
            return Err(IndexError::Input(format!(
                "{}: not a file or folder",
                input.display()
            )));
        }
    }
    out.sort();
    out.dedup();
    out.retain(|p| !exclude.contains(p));
    Ok((out, problems))
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<WalkProblem>) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(WalkProblem {
                path: dir.to_path_buf(),
                error: format!("cannot list folder: {e}"),
            });
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk_dir(&path, out, problems);
        } else if ft.is_file() {
            out.push(path);
        } else if ft.is_symlink() {
            match fs::metadata(&path) {
                Ok(m) if m.is_file() => {
                    if let Ok(real) = fs::canonicalize(&path) {
                        out.push(real);
                    }
                }
                Ok(_) => {}
                Err(e) => problems.push(WalkProblem {
                    path,
                    error: format!("broken link: {e}"),
                }),
            }
        }
    }
}
