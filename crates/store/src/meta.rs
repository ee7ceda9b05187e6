//! The index's lasting settings (`meta`): its sensor id, and where its
//! Parquet exports stand.
use std::hash::{BuildHasher, Hasher};

use rusqlite::OptionalExtension;

use crate::{Result, Store, StoreError};

/// Where the exports of an index stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportState {
    /// The number of the last export (0: none yet).
    pub version: u64,
    /// The highest flow id it wrote.
    pub max_flow_id: u64,
    /// Flows open at the last export: written again by the next.
    pub open: Vec<u64>,
}

impl Store {
    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    /// The sensor id, as stored (None before one is set).
    pub fn sensor(&self) -> Result<Option<String>> {
        self.meta("sensor")
    }

    /// Sets the sensor id: `name` if given (refused if the index already
    /// has another), else one made once from the host name and a random
    /// suffix, so that renaming the host later changes nothing.
    pub fn ensure_sensor(&self, name: Option<&str>) -> Result<String> {
        match (self.sensor()?, name) {
            (Some(have), Some(want)) if have != want => Err(StoreError::Expression(format!(
                "this index belongs to sensor {have:?}, not {want:?} (a sensor id is set once, when \
                 the index is made)"
            ))),
            (Some(have), _) => Ok(have),
            (None, want) => {
                let id = match want {
                    Some(w) => w.to_string(),
                    None => {
                        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                            .map(|h| h.trim().to_string())
                            .ok()
                            .filter(|h| !h.is_empty())
                            .unwrap_or_else(|| "sensor".into());
                        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                        h.write(self.path.to_string_lossy().as_bytes());
                        format!("{host}-{:08x}", h.finish() as u32)
                    }
                };
                check_sensor_name(&id)?;
                self.set_meta("sensor", &id)?;
                Ok(id)
            }
        }
    }

    pub fn export_state(&self) -> Result<ExportState> {
        let num = |k: &str| -> Result<u64> {
            Ok(self.meta(k)?.and_then(|v| v.parse().ok()).unwrap_or(0))
        };
        let open = self
            .conn
            .prepare("SELECT flow_id FROM export_open ORDER BY flow_id")?
            .query_map([], |r| r.get::<_, i64>(0))?
            .map(|r| r.map(|v| v as u64))
            .collect::<rusqlite::Result<_>>()?;
        Ok(ExportState {
            version: num("export_version")?,
            max_flow_id: num("export_max_flow_id")?,
            open,
        })
    }

    /// Records an export that is complete (its files are written).
    pub fn set_export_state(&self, s: &ExportState) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        self.set_meta("export_version", &s.version.to_string())?;
        self.set_meta("export_max_flow_id", &s.max_flow_id.to_string())?;
        tx.execute("DELETE FROM export_open", [])?;
        for id in &s.open {
            tx.execute(
                "INSERT INTO export_open (flow_id) VALUES (?1)",
                [*id as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Ids of the flows open now (in `tracker_state`).
    pub fn open_flow_ids(&self) -> Result<Vec<u64>> {
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT state FROM tracker_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        match blob {
            None => Ok(Vec::new()),
            Some(b) => Ok(pcapidx_flow::decode_all(&b)
                .map_err(|e| StoreError::Damaged(format!("open flow state: {e}")))?
                .into_iter()
                .map(|(id, _)| id)
                .collect()),
        }
    }
}

/// A sensor id goes into folder names (`sensor=<id>`): letters, digits,
/// `-`, `_` and `.`, 1 to 64 of them.
pub fn check_sensor_name(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && id != "."
        && id != "..";
    if ok {
        Ok(())
    } else {
        Err(StoreError::Expression(format!(
            "{id:?} is not a sensor id: use 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}
