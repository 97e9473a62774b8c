//! The element's face: what users set and read. The properties and their plain settings
//! (`settings`, with their enum and flags types in `kinds`), the `prepare-format` signal
//! (`signals`), the `v4l2://` URI handler (`uri`), the errors users read on the bus (`errors`)
//! and the `stats` property's counts (`stats`).
//!
//! May import `shared`, and no other folder of the element.
//! `signals` and `uri` implement on the element's type (`imp`), and reach the session only
//! through its fields; the rest is plain data that touches neither element nor device.

pub(in crate::rustv4l2src) mod errors;
mod kinds;
pub(in crate::rustv4l2src) mod settings;
mod signals;
pub(in crate::rustv4l2src) mod stats;
pub(in crate::rustv4l2src) mod uri;
