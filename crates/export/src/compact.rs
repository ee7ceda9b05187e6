//! `pcapidx export --compact`: the Parquet files of each of a sensor's
//! partitions merged into one, so that months of small incremental exports
//! do not leave engines opening thousands of files. Rows are kept as they
//! are (each with its `export_version`): the merged file is written in full
//! before the files it replaces are removed, and while both exist a
//! reader's latest-version view sees each row twice, identical, which it
//! keeps once. Files of another Parquet schema version are left apart.
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::{ExportError, PARQUET_SCHEMA_VERSION};

/// What compacting did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// Files merged away, and the files they became.
    pub merged: usize,
    pub into: usize,
}

/// Merges the files of every partition of `sensor` under `dest` (flows,
/// packets; the files table keeps only its latest export, which is whole).
pub fn compact(dest: &Path, sensor: &str) -> Result<Compacted, ExportError> {
    let mut done = Compacted::default();
    for table in ["flows", "packets"] {
        let root = dest.join(table).join(format!("sensor={sensor}"));
        for dir in partitions(&root)? {
            merge(&dir, &mut done)?;
        }
    }
    // The files table is written whole by each export: the latest is all.
    let files = dest.join("files").join(format!("sensor={sensor}"));
    let mut all = parquet_files(&files)?;
    all.pop();
    for old in all {
        remove(&old)?;
        done.merged += 1;
    }
    Ok(done)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn remove(path: &Path) -> Result<(), ExportError> {
    std::fs::remove_file(path).map_err(io(path))
}

/// The leaf folders (date=/hour=) under `root`.
fn partitions(root: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    for date in std::fs::read_dir(root).map_err(io(root))? {
        let date = date.map_err(io(root))?.path();
        if !date.is_dir() {
            continue;
        }
        for hour in std::fs::read_dir(&date).map_err(io(&date))? {
            let hour = hour.map_err(io(&date))?.path();
            if hour.is_dir() {
                out.push(hour);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let p = e.map_err(io(dir))?.path();
        if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The files of `dir` written with this pcapidx's Parquet schema.
fn ours(files: Vec<PathBuf>) -> Result<Vec<PathBuf>, ExportError> {
    let mut out = Vec::new();
    for p in files {
        let f = File::open(&p).map_err(io(&p))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(f)?;
        let version = b
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == "pcapidx.schema_version"))
            .and_then(|k| k.value.clone());
        if version.as_deref() == Some(PARQUET_SCHEMA_VERSION) {
            out.push(p);
        }
    }
    Ok(out)
}

fn merge(dir: &Path, done: &mut Compacted) -> Result<(), ExportError> {
    let files = ours(parquet_files(dir)?)?;
    if files.len() < 2 {
        return Ok(());
    }
    // A name that sorts after the merged ones' (`c` after `v`), not taken.
    let mut n = 0;
    let target = loop {
        let p = dir.join(format!("c{:06}-{n}.parquet", files.len()));
        if !p.exists() {
            break p;
        }
        n += 1;
    };
    let tmp = target.with_extension("parquet.partial");
    let mut writer: Option<ArrowWriter<File>> = None;
    for p in &files {
        let f = File::open(p).map_err(io(p))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)?.build()?;
        for batch in reader {
            let batch = batch?;
            if writer.is_none() {
                let out = File::create(&tmp).map_err(io(&tmp))?;
                let props = crate::writer_properties();
                writer = Some(ArrowWriter::try_new(out, batch.schema(), Some(props))?);
            }
            if let Some(w) = writer.as_mut() {
                w.write(&batch)?;
            }
        }
    }
    let Some(w) = writer else {
        return Ok(());
    };
    w.close()?;
    // Whole before anything goes: the new file, then the old ones.
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    for p in &files {
        remove(p)?;
    }
    done.merged += files.len();
    done.into += 1;
    Ok(())
}
