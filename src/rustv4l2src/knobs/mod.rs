//! The device's knobs, what the element sets on it besides the format and buffers: controls and
//! the GstColorBalance channels they make (`controls`), the crop rectangle (`crop`), the input
//! and its TV norm (`inputs`), and the source on a capture card's input: its DV timings and
//! whether a signal is there (`source`).
//!
//! May import `face` (the settings they apply) and, from `interfaces`, `colorbalance`'s
//! channel specs; not `stream`, `alive` or the element.

pub(in crate::rustv4l2src) mod controls;
pub(in crate::rustv4l2src) mod crop;
pub(in crate::rustv4l2src) mod inputs;
pub(in crate::rustv4l2src) mod source;
