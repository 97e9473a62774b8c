//! The C interfaces GStreamer's bindings cannot implement for a Rust subclass, their vtables
//! filled by hand: GstTuner (`tuner`, its lists for one open device in `tuner_lists`),
//! GstColorBalance (`colorbalance`) and GstVideoOrientation (`orientation`). Their FFI is the
//! unsafe code outside `src/v4l2/`, but for `stream::lend`'s dmabuf wrapping.
//!
//! May import `stream` (the session), `knobs`, `face` and the element's type (`imp`): `tuner`
//! still does. `colorbalance`, `orientation` and `tuner_lists` import nothing of the element:
//! vtables generic over a trait the element implements, and the objects C callers borrow, which
//! `stream::session` and `knobs::controls` hold and make.

pub(in crate::rustv4l2src) mod colorbalance;
pub(in crate::rustv4l2src) mod orientation;
pub(in crate::rustv4l2src) mod tuner;
pub(in crate::rustv4l2src) mod tuner_lists;
