//! The C interfaces GStreamer's bindings cannot implement for a Rust subclass, their vtables
//! filled by hand: GstTuner (`tuner`, its lists for one open device in `tuner_lists`),
//! GstColorBalance (`colorbalance`) and GstVideoOrientation (`orientation`). The lowest layer of
//! the element: each vtable is generic over a trait the element implements (`TunerImpl`,
//! `ColorBalanceImpl`, `OrientationImpl`), and beside it is what C callers borrow (the channel
//! and norm objects, and their lists that the session keeps for the open device). What
//! the calls do is the element's, in safe code beside `imp.rs` (`tuning.rs`, `orienting.rs`, and
//! `imp.rs` for GstColorBalance). Their FFI is the unsafe code outside `src/v4l2/`, but for
//! `stream::lend`'s dmabuf wrapping.
//!
//! May import `shared` and `crate::v4l2`; no other folder of the element, nor its type.

pub(in crate::rustv4l2src) mod colorbalance;
pub(in crate::rustv4l2src) mod orientation;
pub(in crate::rustv4l2src) mod tuner;
pub(in crate::rustv4l2src) mod tuner_lists;
