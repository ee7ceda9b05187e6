//! The project's capture generator: deterministic synthetic traffic written
//! as pcap and pcapng in every supported format and link type, together with
//! the ground truth of what it wrote — each flow's packets with their file,
//! offset, timestamp, lengths and direction.
//!
//! - [`sample`]: small captures covering formats, link types and features
//!   (what `testdata/` holds);
//! - [`bench`]: large rotated runs of realistic traffic for the benchmark.
//!
//! The same inputs always give the same bytes.
#![forbid(unsafe_code)]

pub mod bench;
pub mod link;
pub mod packet;
pub mod rng;
pub mod run;
pub mod sample;
pub mod truth;
