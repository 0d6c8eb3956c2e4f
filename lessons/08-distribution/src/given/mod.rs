//! Given code: the command line, the HTTP client, archives, references,
//! progress. Read it; you do not write it.

pub mod archive;
pub mod blobs;
pub mod cli;
pub mod http;
pub mod progress;
pub mod reference;
pub mod sources;
