//! The pictures of a run: the timeline model and its terminal drawing (with the accounting
//! tables), the Chrome trace, the SVG, and the picture files manager that judges the paths
//! before a run and writes the files after it.

pub mod files;
pub mod svg;
pub mod timeline;
pub mod trace;
