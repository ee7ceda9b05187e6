//! `index --reindex PATH...`: the named files are read again under this
//! run's options. A flow is rebuilt from all its packets or not at all, so
//! every file that shares a flow with a named file (and theirs in turn) is
//! read again too; the result is what indexing those files from scratch
//! gives, beside the flows of the other files, which stay as they are.
use std::path::PathBuf;

use pcapidx_store::{FileStatus, Store};

use crate::IndexError;
use crate::plan::holds;

/// What `--reindex` prepared: the files to read (beyond those named).
pub(crate) struct Prepared {
    pub also: Vec<PathBuf>,
    pub named: usize,
    pub total: usize,
}

/// Takes the packets of the named files, and of the files sharing flows
/// with them, out of the index, their rows left to be read afresh.
pub(crate) fn prepare(store: &Store, named: &[PathBuf]) -> Result<Prepared, IndexError> {
    let mut ids = Vec::new();
    for p in named {
        if let Some(row) = store.file_by_path(&p.to_string_lossy())?
            && row.has_content()
        {
            ids.push(row.file_id);
        }
    }
    let all = store.files_sharing_flows(&ids)?;
    let mut rows = Vec::new();
    let mut unreadable = Vec::new();
    for id in &all {
        let Some(row) = store.file_by_id(*id)? else {
            continue;
        };
        let readable = matches!(
            row.status,
            FileStatus::Ok | FileStatus::Partial | FileStatus::Indexing
        ) && holds(std::path::Path::new(&row.path), &row);
        if !readable {
            unreadable.push(format!("{} ({})", row.path, row.status.as_str()));
        }
        rows.push(row);
    }
    if !unreadable.is_empty() {
        return Err(IndexError::Input(format!(
            "--reindex would rebuild flows that also have packets in files that cannot be read \
             again as they were indexed: {}; nothing was changed (their packets would be lost)",
            unreadable.join(", ")
        )));
    }
    store.clear_for_reindex(&all)?;
    let also = rows
        .iter()
        .map(|r| PathBuf::from(&r.path))
        .filter(|p| !named.contains(p))
        .collect();
    Ok(Prepared {
        also,
        named: ids.len(),
        total: all.len(),
    })
}
