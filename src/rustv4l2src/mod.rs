//! The `rustv4l2src` element: the public wrapper type and its registration.
//!
//! `imp.rs` is the GObject glue; beside it, one file per concern: `settings` (properties) and
//! `kinds` (their enum and flags types),
//! `controls` (control properties on the device), `colorbalance` (the GstColorBalance vtable),
//! `crop` (the `crop-*` properties on the device), `inputs` (`input` and `norm` on the
//! device), `tuner` (the GstTuner vtable), `orientation` (GstVideoOrientation over the flip and
//! centre controls), `signals` (`prepare-format`),
//! `errors` (what users read on the bus), `session` (the capture session's state machine),
//! `negotiation`, `allocation`, `capture` (the capture loop), `reconnect` (waiting for a device
//! that went away, and bringing it back), `restart` (restarting a stream the driver failed),
//! `source` and `signal` (a capture card's source: its
//! timings, changes and signal loss), `pool` (the frame pool: one GstBuffer per driver buffer,
//! recycled), `lend` (video meta, dmabuf wrapping and copies),
//! `timeline` (timestamps, sequence numbers, latency), `stats`, `uri` (the `v4l2://` URI
//! handler), and `shared` (the debug category and the lock helper every file uses).

use gst::glib;
use gst::prelude::*;

mod allocation;
mod capture;
mod colorbalance;
mod controls;
mod crop;
mod errors;
mod imp;
mod import;
mod inputs;
mod iomodes;
mod kinds;
mod lend;
mod negotiation;
mod orientation;
mod pool;
mod reading;
mod reconnect;
mod restart;
mod session;
mod settings;
mod shared;
mod signal;
mod signals;
mod slots;
mod source;
mod stats;
mod timeline;
mod tuner;
mod tuner_lists;
mod uri;

#[cfg(test)]
pub(crate) use controls::extra_control_value;
#[cfg(test)]
pub(crate) use uri::device_of_uri;

glib::wrapper! {
    pub struct RustV4l2Src(ObjectSubclass<imp::RustV4l2Src>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object,
        @implements gst::URIHandler, gst_video::ColorBalance, gst_video::VideoOrientation;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    let type_ = RustV4l2Src::static_type();
    // Between registering the type and registering the element, which initialises its class.
    tuner::install(type_, plugin);
    gst::Element::register(Some(plugin), "rustv4l2src", gst::Rank::NONE, type_)
}
