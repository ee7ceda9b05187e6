//! A TCP session's state as the tracker keeps it: base sequence numbers,
//! FINs and a RST, which decide when a new session starts on the same ports.
use pcapidx_decode::{Tcp, tcp_flags};

/// TCP session state, per direction (0 forward, 1 reverse).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TcpState {
    /// Wireshark's base sequence number: the SYN's, else the first seq - 1,
    /// else the other side's first ACK - 1.
    pub base: [Option<u32>; 2],
    pub fin: [bool; 2],
    pub rst: bool,
}

impl TcpState {
    pub(crate) fn starts_new_session(&self, t: &Tcp, dir: usize) -> bool {
        if t.flags & (tcp_flags::SYN | tcp_flags::ACK) != tcp_flags::SYN {
            return false;
        }
        self.closed() || self.base[dir].is_some_and(|b| b != t.seq)
    }

    /// FIN both ways, or RST.
    pub(crate) fn closed(&self) -> bool {
        (self.fin[0] && self.fin[1]) || self.rst
    }

    pub(crate) fn update(&mut self, t: &Tcp, dir: usize) {
        if self.base[dir].is_none() {
            self.base[dir] = Some(if t.flags & tcp_flags::SYN != 0 {
                t.seq
            } else {
                t.seq.wrapping_sub(1)
            });
        }
        if t.flags & tcp_flags::ACK != 0 && self.base[1 - dir].is_none() {
            self.base[1 - dir] = Some(t.ack.wrapping_sub(1));
        }
        if t.flags & tcp_flags::FIN != 0 {
            self.fin[dir] = true;
        }
        if t.flags & tcp_flags::RST != 0 {
            self.rst = true;
        }
    }
}
