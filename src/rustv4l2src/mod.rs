//! The `rustv4l2src` element: the public wrapper type and its registration.
//!
//! `imp.rs` is the GObject glue; beside it, one file per concern: `settings` (properties),
//! `controls` (control properties on the device), `colorbalance` (the GstColorBalance vtable),
//! `crop` (the `crop-*` properties on the device),
//! `errors` (what users read on the bus), `session` (the capture session's state machine),
//! `negotiation`, `allocation`, `capture` (the capture loop), `reconnect` (waiting for a device
//! that went away, and bringing it back), `lend` (dmabuf lending and copies),
//! `timeline` (timestamps, sequence numbers, latency), `stats`, and `shared` (the debug category
//! and the lock helper every file uses).

use gst::glib;
use gst::prelude::*;

mod allocation;
mod capture;
mod colorbalance;
mod controls;
mod crop;
mod errors;
mod imp;
mod iomodes;
mod lend;
mod negotiation;
mod reconnect;
mod session;
mod settings;
mod shared;
mod stats;
mod timeline;

glib::wrapper! {
    pub struct RustV4l2Src(ObjectSubclass<imp::RustV4l2Src>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object,
        @implements gst::URIHandler, gst_video::ColorBalance;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "rustv4l2src",
        gst::Rank::NONE,
        RustV4l2Src::static_type(),
    )
}
