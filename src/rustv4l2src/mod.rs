//! The `rustv4l2src` element: the public wrapper type and its registration.
//!
//! The element's files are grouped by concern, one folder each, listed here from the bottom up:
//! each imports only `shared.rs` (what every file uses: the debug category, the lock helper,
//! posting an element message) and the folders listed before it, never the element's type.
//!
//! `interfaces/`: the C interfaces whose vtables are filled by hand, GstTuner (`tuner`, with
//! `tuner_lists`), GstColorBalance (`colorbalance`) and GstVideoOrientation (`orientation`):
//! each generic over a trait the element implements, with the objects C callers borrow.
//!
//! `face/`: what users set and read, as plain data. The properties (`settings`, their enum and
//! flags types in `kinds`), the errors users read on the bus (`errors`) and the `stats` property
//! (`stats`). Imports neither `interfaces/` nor anything above.
//!
//! `knobs/`: the device's knobs. Its controls (`controls`), the `crop-*` rectangle (`crop`), the
//! `input` and `norm` (`inputs`), and the source on a capture card's input (`source`: its DV
//! timings, source-change events and signal).
//!
//! `stream/`: the stream. The capture session's state machine (`session`), `negotiation`,
//! `allocation`, the io-modes (`iomodes`, `reading`, and `import` over the `slots` of
//! `io-mode=dmabuf-import`), the frame pool (`pool`: one GstBuffer per driver buffer, recycled),
//! lending frames (`lend`: video meta, dmabuf wrapping and copies), the capture loop
//! (`capture`) and the `timeline` (timestamps, sequence numbers, latency).
//!
//! `alive/`: what keeps the stream alive. A source change or a lost signal (`signal`), a device
//! that went away and came back (`reconnect`), a stream the driver failed (`restart`).
//!
//! On top, the element itself: `imp.rs`, the GObject glue, and beside it the files that
//! implement on its type: how it negotiates (`negotiating.rs`), the `v4l2://` URI handler
//! (`uri.rs`), emitting the `prepare-format` signal (`prepare_format.rs`), and the answers to
//! GstTuner (`tuning.rs`) and GstVideoOrientation (`orienting.rs`) that `interfaces/` calls.
//! Only these import `imp.rs`, and `imp.rs` imports none of them: GLib calls `uri.rs`,
//! `tuning.rs` and `orienting.rs` through the interfaces, and `imp.rs` calls the others'
//! methods on its own type. `mod.rs` and `imp.rs` name each other, as a GObject subclass and
//! its wrapper type do.

use gst::glib;
use gst::prelude::*;

mod alive;
mod face;
mod imp;
mod interfaces;
mod knobs;
mod negotiating;
mod orienting;
mod prepare_format;
mod shared;
mod stream;
mod tuning;
mod uri;

#[cfg(test)]
pub(crate) use knobs::controls::extra_control_value;
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
    interfaces::tuner::install::<imp::RustV4l2Src>(type_, plugin);
    gst::Element::register(Some(plugin), "rustv4l2src", gst::Rank::NONE, type_)
}
