//! Expanding command-line paths into the files to examine: folders are
//! walked recursively in name order; symbolic links to files are followed,
//! links to folders are not (they could form cycles).
use std::fs;
use std::path::{Path, PathBuf};

/// Why a pipe, a device or standard input cannot be indexed.
pub const NOT_SEEKABLE: &str = "not a capture file or folder: an index stores the byte offset of every \
packet, so it needs a capture file it can read again (save a stream first, e.g. \
`tcpdump -r - -w capture.pcap`, then index that)";

/// A path met while walking that could not be listed.
#[derive(Debug)]
pub struct WalkProblem {
    pub path: PathBuf,
    pub error: String,
}

/// Absolute paths of every regular file under `inputs`, sorted, without
/// duplicates and without the files in `exclude` (the index itself).
pub fn files(inputs: &[PathBuf], exclude: &[PathBuf]) -> (Vec<PathBuf>, Vec<WalkProblem>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for input in inputs {
        // A path that cannot be used is named and the others are indexed.
        let problem = |error: String| WalkProblem {
            path: input.clone(),
            error,
        };
        if input.as_os_str() == "-" {
            problems.push(problem(format!("standard input is {NOT_SEEKABLE}")));
            continue;
        }
        let meta = match fs::metadata(input) {
            Ok(m) => m,
            Err(e) => {
                problems.push(problem(e.to_string()));
                continue;
            }
        };
        if !meta.is_dir() && !meta.is_file() {
            problems.push(problem(format!("it is {NOT_SEEKABLE}")));
            continue;
        }
        match fs::canonicalize(input) {
            Ok(abs) if meta.is_dir() => walk_dir(&abs, &mut out, &mut problems),
            Ok(abs) => out.push(abs),
            Err(e) => problems.push(problem(e.to_string())),
        }
    }
    out.sort();
    out.dedup();
    out.retain(|p| !exclude.contains(p));
    (out, problems)
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
                // Recorded in `files` like any other unusable entry (the
                // plan says it is a broken link).
                Err(_) => out.push(path),
            }
        }
    }
}
