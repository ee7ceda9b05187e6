//! Integration tests: they drive the real `pcapidx` binary on real files —
//! captures made by the project's generator, and the third-party captures in
//! `../shared/corpus` (skipped, saying so, when that folder is absent).
mod analyst;
mod carve;
mod cli;
mod common;
mod corpus;
mod export;
mod first_use;
mod follow;
mod fuzzing;
mod generated;
mod lifecycle;
mod robust;
mod s3;
mod serve;
mod timestamps;
mod watch;
