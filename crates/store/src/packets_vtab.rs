//! `packets`: an eponymous virtual table that expands the position lists,
//! one row per packet: `SELECT * FROM packets WHERE flow_id = 7`.
//! Only pcapidx's own connections have it (other SQLite clients see the
//! `packet_chunks` blobs, documented in docs/schema.md).
//!
//! rusqlite's virtual-table traits are `unsafe` to implement: their contract
//! is that the table and cursor structs are `#[repr(C)]` with SQLite's base
//! struct as the first field, which both structs below follow. Nothing else
//! here is unsafe.
#![allow(unsafe_code)]

use std::borrow::Cow;
use std::ffi::{CStr, c_int};
use std::path::Path;

use pcapidx_positions::Position;
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConfig, VTabConnection,
    VTabCursor,
};
use rusqlite::{Connection, OpenFlags, ffi};

const FLOW_ID: c_int = 0;

pub(crate) fn register(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    const MODULE: Module<PacketsTab> = Module::eponymous_only_module();
    conn.create_module(
        c"packets",
        &MODULE,
        Some(path.to_string_lossy().into_owned()),
    )
}

#[repr(C)]
struct PacketsTab {
    /// SQLite's base struct; must stay first.
    base: ffi::sqlite3_vtab,
    /// A read-only connection of the table's own, to read the position blobs.
    conn: Connection,
}

unsafe impl<'vtab> VTab<'vtab> for PacketsTab {
    type Aux = String;
    type Cursor = PacketsCursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        aux: Option<&String>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        let path =
            aux.ok_or_else(|| rusqlite::Error::ModuleError("packets: no database path".into()))?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        db.config(VTabConfig::DirectOnly)?;
        Ok((
            Cow::Borrowed(
                c"CREATE TABLE x(flow_id INTEGER, file_id INTEGER, offset INTEGER, ts_ns INTEGER, caplen INTEGER, orig_len INTEGER, direction TEXT, iface INTEGER)",
            ),
            PacketsTab {
                base: ffi::sqlite3_vtab::default(),
                conn,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let mut eq = None;
        for (i, c) in info.constraints().enumerate() {
            if c.column() == FLOW_ID
                && c.is_usable()
                && c.operator() == IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ
            {
                eq = Some(i);
            }
        }
        if let Some(i) = eq {
            let mut u = info.constraint_usage(i);
            u.set_argv_index(1);
            u.set_omit(true);
            info.set_idx_num(1);
            info.set_estimated_cost(10.0);
            info.set_estimated_rows(100);
        } else {
            info.set_idx_num(0);
            info.set_estimated_cost(1e12);
        }
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<PacketsCursor<'vtab>> {
        Ok(PacketsCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            tab: self,
            flows: Vec::new(),
            next_flow: 0,
            flow_id: 0,
            rows: Vec::new(),
            at: 0,
            rowid: 0,
        })
    }
}

#[repr(C)]
struct PacketsCursor<'vtab> {
    /// SQLite's base struct; must stay first.
    base: ffi::sqlite3_vtab_cursor,
    tab: &'vtab PacketsTab,
    /// Flows still to expand.
    flows: Vec<i64>,
    next_flow: usize,
    flow_id: i64,
    rows: Vec<Position>,
    at: usize,
    rowid: i64,
}

impl PacketsCursor<'_> {
    /// Moves to the next flow that has packets.
    fn load_next(&mut self) -> rusqlite::Result<()> {
        self.rows.clear();
        self.at = 0;
        while self.rows.is_empty() && self.next_flow < self.flows.len() {
            self.flow_id = self.flows[self.next_flow];
            self.next_flow += 1;
            let mut st = self.tab.conn.prepare_cached(
                "SELECT data FROM flow_chunks WHERE flow_id = ? ORDER BY chunk_id",
            )?;
            let mut q = st.query([self.flow_id])?;
            while let Some(r) = q.next()? {
                let data = r.get_ref(0)?.as_blob()?;
                pcapidx_positions::decode_into(data, &mut self.rows).map_err(|e| {
                    rusqlite::Error::ModuleError(format!("flow {}: {e}", self.flow_id))
                })?;
            }
        }
        Ok(())
    }
}

unsafe impl VTabCursor for PacketsCursor<'_> {
    fn filter(
        &mut self,
        idx_num: c_int,
        _idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        self.flows = if idx_num == 1 {
            args.get::<Option<i64>>(0)?.into_iter().collect()
        } else {
            let mut st = self
                .tab
                .conn
                .prepare("SELECT flow_id FROM flow_data ORDER BY flow_id")?;
            st.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?
        };
        self.next_flow = 0;
        self.rowid = 0;
        self.load_next()
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.at += 1;
        self.rowid += 1;
        if self.at >= self.rows.len() {
            self.load_next()?;
        }
        Ok(())
    }

    fn eof(&self) -> bool {
        self.at >= self.rows.len()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let Some(p) = self.rows.get(self.at) else {
            return ctx.set_result(rusqlite::types::Null);
        };
        match i {
            0 => ctx.set_result(self.flow_id),
            1 => ctx.set_result(i64::from(p.file_id)),
            2 => ctx.set_result(p.offset as i64),
            3 => ctx.set_result(p.ts_ns),
            4 => ctx.set_result(i64::from(p.caplen)),
            5 => ctx.set_result(i64::from(p.orig_len)),
            6 => ctx.set_result(if p.reverse { "rev" } else { "fwd" }),
            _ => ctx.set_result(i64::from(p.iface)),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.rowid)
    }
}
