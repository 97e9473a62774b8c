//! The element's face: what users set and read, as plain data. The properties and their
//! settings (`settings`, with their enum and flags types in `kinds`, and the declaration of the
//! `prepare-format` signal), the errors users read on the bus (`errors`) and the `stats`
//! property's counts (`stats`). Nothing here touches the element or the device: what
//! implements on the element's type (the URI handler, emitting `prepare-format`) is beside
//! `imp.rs`.
//!
//! May import `shared`, and no other folder of the element.

pub(in crate::rustv4l2src) mod errors;
mod kinds;
pub(in crate::rustv4l2src) mod settings;
pub(in crate::rustv4l2src) mod stats;
