//! Load tests of Kinto servers: the scenarios (`kinto-load`), the
//! population tool (`kinto-populate`) and the machine's ceiling
//! (`kinto-ceiling`). See `loadtests/README.md`.

pub mod kinto;
pub mod scenarios;
