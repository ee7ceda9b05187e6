//! Ground truth: every flow the generator wrote, with each packet's file,
//! offset, timestamp, lengths and direction — what the indexer must find.
use std::fmt::Write;

/// One packet as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruthPacket {
    /// Index into the run's file list.
    pub file: usize,
    pub offset: u64,
    /// The timestamp the indexer sees (a Simple Packet Block inherits the previous one's).
    pub ts_ns: i64,
    pub caplen: u32,
    pub orig_len: u32,
    pub reverse: bool,
    pub tcp_flags: u8,
    pub iface: u32,
}

/// One flow as the indexer should report it (`src` is the originator).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TruthFlow {
    /// IP protocol; `None` for a layer-2 flow.
    pub proto: Option<u8>,
    pub src_ip: Option<String>,
    pub dst_ip: Option<String>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub ethertype: u16,
    pub vlan: Option<u16>,
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    pub packets: Vec<TruthPacket>,
}

/// TCP flags as letters from `FSRPAUEC`, in that order (the index's form).
pub fn tcp_flag_letters(f: u8) -> String {
    b"FSRPAUEC"
        .iter()
        .enumerate()
        .filter(|(i, _)| f & (1 << i) != 0)
        .map(|(_, c)| char::from(*c))
        .collect()
}

impl TruthFlow {
    /// The flow's totals in the indexer's terms, as one tab-separated line:
    /// proto, src_ip, src_port, dst_ip, dst_port, ethertype, vlan,
    /// first_ts_ns, last_ts_ns, packets_fwd, packets_rev, bytes_fwd,
    /// bytes_rev, tcp_flags_fwd, tcp_flags_rev, src_mac, dst_mac, files
    /// (absent values empty).
    pub fn summary(&self) -> String {
        let mut pk = [0u64; 2];
        let mut by = [0u64; 2];
        let mut fl = [0u8; 2];
        let mut files: Vec<usize> = Vec::new();
        for p in &self.packets {
            let d = usize::from(p.reverse);
            pk[d] += 1;
            by[d] += u64::from(p.orig_len);
            fl[d] |= p.tcp_flags;
            if !files.contains(&p.file) {
                files.push(p.file);
            }
        }
        let first = self.packets.iter().map(|p| p.ts_ns).min().unwrap_or(0);
        let last = self.packets.iter().map(|p| p.ts_ns).max().unwrap_or(0);
        let opt = |v: Option<String>| v.unwrap_or_default();
        let mac = |m: Option<[u8; 6]>| {
            m.map(|m| {
                m.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default()
        };
        let tcp = self.proto == Some(6);
        let mut s = String::new();
        let _ = write!(
            s,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{first}\t{last}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            opt(self.proto.map(|p| p.to_string())),
            opt(self.src_ip.clone()),
            opt(self.src_port.map(|p| p.to_string())),
            opt(self.dst_ip.clone()),
            opt(self.dst_port.map(|p| p.to_string())),
            self.ethertype,
            opt(self.vlan.map(|v| v.to_string())),
            pk[0],
            pk[1],
            by[0],
            by[1],
            if tcp {
                tcp_flag_letters(fl[0])
            } else {
                String::new()
            },
            if tcp {
                tcp_flag_letters(fl[1])
            } else {
                String::new()
            },
            mac(self.src_mac),
            mac(self.dst_mac),
            files.len(),
        );
        s
    }
}

/// All flows of a run, indexed by truth id.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    pub flows: Vec<TruthFlow>,
}

impl Truth {
    /// Sorted summaries of every flow that has packets.
    pub fn summaries(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .flows
            .iter()
            .filter(|f| !f.packets.is_empty())
            .map(TruthFlow::summary)
            .collect();
        v.sort();
        v
    }

    pub fn packets(&self) -> usize {
        self.flows.iter().map(|f| f.packets.len()).sum()
    }
}
