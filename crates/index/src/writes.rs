//! The flow tracker's writes to the store: gathered as the tracker makes
//! them, handed over in bursts, applied inside the open transaction on the
//! calling thread (`Inline`) or on a writer thread of their own (`Threaded`),
//! made durable by each commit.
use pcapidx_capture::Interface;
use pcapidx_flow::{FlowRecord, FlowSink, RowCounts};
use pcapidx_store::{FileRow, Store, StoreError, Traffic};

use crate::IndexError;

/// Writes handed to the writer at a time.
pub(crate) const WRITES_PER_HANDOVER: usize = 4096;

/// One write for the store, applied at the next commit.
pub(crate) enum Write {
    Chunk(u64, Vec<u8>),
    /// A flow's row, the first time with its first position chunk, the
    /// files no earlier row of it named, and what its previous row said.
    Flow(FlowRecord, Option<Vec<u8>>, NewFiles, Option<RowCounts>),
    OpenFlows(Vec<u8>),
    File(FileRow, Vec<Interface>),
    /// The flows' packets per second, minute and hour since the last commit.
    Traffic(Traffic),
}

/// A flow row's new files: almost always none or one, kept without an
/// allocation.
pub(crate) struct NewFiles {
    pub(crate) first: Option<u32>,
    pub(crate) rest: Vec<u32>,
}

impl NewFiles {
    pub(crate) fn of(files: &[u32]) -> Self {
        NewFiles {
            first: files.first().copied(),
            rest: files.get(1..).map_or_else(Vec::new, <[u32]>::to_vec),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.first.into_iter().chain(self.rest.iter().copied())
    }
}

pub(crate) struct Writes<'a>(pub(crate) &'a mut Vec<Write>);

impl FlowSink for Writes<'_> {
    fn chunk(&mut self, flow_id: u64, data: Vec<u8>) {
        self.0.push(Write::Chunk(flow_id, data));
    }
    fn flow(
        &mut self,
        rec: &FlowRecord,
        first_chunk: Option<Vec<u8>>,
        new_files: &[u32],
        before: Option<RowCounts>,
    ) {
        self.0.push(Write::Flow(
            rec.clone(),
            first_chunk,
            NewFiles::of(new_files),
            before,
        ));
    }
    fn open_flows(&mut self, state: Vec<u8>) {
        self.0.push(Write::OpenFlows(state));
    }
}

/// Writes handed to the writer as they accumulate, for the bursts of a
/// checkpoint or the end of the run (every open flow at once): the writer
/// applies them while the tracker produces the rest.
pub(crate) struct HandedWrites<'a> {
    pub(crate) writes: &'a mut Vec<Write>,
    pub(crate) out: &'a mut dyn Writer,
    pub(crate) error: Option<IndexError>,
}

impl HandedWrites<'_> {
    pub(crate) fn pushed(&mut self) {
        if self.writes.len() >= WRITES_PER_HANDOVER && self.error.is_none() {
            self.error = self.out.write(self.writes).err();
        }
    }

    pub(crate) fn done(self) -> Result<(), IndexError> {
        self.error.map_or(Ok(()), Err)
    }
}

impl FlowSink for HandedWrites<'_> {
    fn chunk(&mut self, flow_id: u64, data: Vec<u8>) {
        Writes(self.writes).chunk(flow_id, data);
        self.pushed();
    }
    fn flow(
        &mut self,
        rec: &FlowRecord,
        first_chunk: Option<Vec<u8>>,
        new_files: &[u32],
        before: Option<RowCounts>,
    ) {
        Writes(self.writes).flow(rec, first_chunk, new_files, before);
        self.pushed();
    }
    fn open_flows(&mut self, state: Vec<u8>) {
        Writes(self.writes).open_flows(state);
        self.pushed();
    }
}

/// Where the flow tracker's writes go: applied inside the open transaction
/// as they come, made durable by `commit`.
pub(crate) trait Writer {
    /// Takes the writes out of `w` (leaving it empty, with room for more).
    fn write(&mut self, w: &mut Vec<Write>) -> Result<(), IndexError>;
    fn commit(&mut self) -> Result<(), IndexError>;
}

/// Writes applied on the calling thread, inside the open transaction as they
/// come (holding them until the commit took memory in proportion to
/// `--checkpoint-packets`: 60 MB more on the 3 GB benchmark).
pub(crate) struct Inline<'s> {
    pub(crate) store: &'s Store,
    pub(crate) batch: Option<pcapidx_store::Batch<'s>>,
    /// Writes held back while a background checkpoint finishes (see
    /// `Store::wal_wants_restart`).
    pub(crate) held: Vec<Vec<Write>>,
}

/// Handovers held at most while a checkpoint finishes (about 1 MB each).
pub(crate) const MAX_HELD: usize = 16;

impl<'s> Inline<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Inline {
            store,
            batch: None,
            held: Vec::new(),
        }
    }

    /// The open transaction, begun now if need be with the held writes.
    pub(crate) fn begin(&mut self) -> Result<&mut pcapidx_store::Batch<'s>, IndexError> {
        let b = match self.batch.take() {
            Some(b) => b,
            None => self.store.batch()?,
        };
        let b = self.batch.insert(b);
        for mut w in self.held.drain(..) {
            apply(b, &mut w)?;
        }
        Ok(b)
    }
}

impl Writer for Inline<'_> {
    fn write(&mut self, w: &mut Vec<Write>) -> Result<(), IndexError> {
        if self.batch.is_none() && self.held.len() < MAX_HELD && self.store.wal_wants_restart() {
            self.held.push(std::mem::take(w));
            return Ok(());
        }
        apply(self.begin()?, w)?;
        Ok(())
    }
    fn commit(&mut self) -> Result<(), IndexError> {
        if !self.held.is_empty() {
            self.begin()?;
        }
        if let Some(b) = self.batch.take() {
            b.commit()?;
        }
        Ok(())
    }
}

pub(crate) enum ToWriter {
    Write(Vec<Write>),
    Commit,
}

/// A writer thread: writes are applied while the tracker goes on.
pub(crate) struct Threaded(pub(crate) crossbeam_channel::Sender<ToWriter>);

impl Writer for Threaded {
    fn write(&mut self, w: &mut Vec<Write>) -> Result<(), IndexError> {
        // Sized for a whole handover, so it is not grown step by step.
        let full = std::mem::replace(w, Vec::with_capacity(2 * WRITES_PER_HANDOVER));
        self.0.send(ToWriter::Write(full)).map_err(|_| stopped())
    }
    fn commit(&mut self) -> Result<(), IndexError> {
        self.0.send(ToWriter::Commit).map_err(|_| stopped())
    }
}

pub(crate) fn stopped() -> IndexError {
    IndexError::Input("the index writer stopped".into())
}

/// The writer thread's loop; returns the store when the tracker is done.
pub(crate) fn writer_loop(
    store: Store,
    rx: crossbeam_channel::Receiver<ToWriter>,
) -> Result<Store, IndexError> {
    let mut out = Inline::new(&store);
    for msg in rx {
        match msg {
            ToWriter::Write(mut w) => out.write(&mut w)?,
            ToWriter::Commit => out.commit()?,
        }
    }
    drop(out);
    Ok(store)
}

/// Applies writes inside an open transaction, emptying `writes`.
pub(crate) fn apply(
    b: &mut pcapidx_store::Batch,
    writes: &mut Vec<Write>,
) -> Result<(), StoreError> {
    for w in writes.drain(..) {
        match w {
            Write::Chunk(id, data) => b.put_chunk(id, &data)?,
            Write::Flow(rec, first_chunk, files, before) => {
                b.put_flow(&rec, first_chunk.as_deref(), before.as_ref())?;
                b.put_flow_files(rec.id, files.iter())?;
            }
            Write::OpenFlows(state) => b.put_open_flows(&state)?,
            Write::Traffic(mut t) => b.put_traffic(&mut t)?,
            Write::File(row, ifaces) => {
                let id = b.put_file(&row)?;
                b.put_interfaces(id, &ifaces)?;
            }
        }
    }
    Ok(())
}
