//! Building bidirectional flows from decoded packets, in processing order.
//!
//! A flow is keyed by protocol, its two endpoints (address, and port where
//! the protocol has one) and its VLAN ids; layer-2 flows by MAC pair,
//! EtherType and VLAN ids. ICMP flows are keyed by the two addresses alone,
//! so an ICMP error belongs to the ICMP flow between its outer addresses.
//!
//! A new flow starts for the same key after an idle gap longer than the
//! protocol's timeout (shorter for a TCP session that has closed), and for
//! TCP when a SYN without ACK arrives after the session closed (FIN both
//! ways, or RST) or carries another initial sequence number than the one the
//! session has for that direction (the rule Wireshark uses for `tcp.stream`).
//!
//! Each packet's position goes into its flow's position list
//! ([`pcapidx_positions`]); finished chunks and flow totals go to a
//! [`FlowSink`]. Flows still open when a run checkpoints are written with a
//! state blob so a later run (or a restart after a crash) continues them.
//!
//! Invariant: memory is bounded by the flows active within their timeouts;
//! position bytes of a flow idle for [`Config::idle_flush_ns`] are handed to
//! the sink, not kept (before a flow's first row, at most
//! [`Config::first_row_ns`] after the oldest flow without one started).
//! First rows reach the sink in flow id order.
// Unsafe code only to prefetch (`table::prefetch`).
#![deny(unsafe_code)]

mod community;
mod deadlines;
mod key;
mod orient;
mod payload;
mod record;
mod state;
mod table;
mod tcp;
mod tracker;

pub use community::{CommunityId, community_id, icmp_ports};
pub use key::{FlowKey, KeyKind, Keyed, Summary};
pub use orient::{Orient, ServerPorts, Turned};
pub use record::{FlowRecord, Payload, RowCounts};
pub use state::{SavedFlow, StateError, decode_all, without as states_without};
pub use tracker::{Config, FlowSink, PacketIn, Tracker, TrackerStats};
