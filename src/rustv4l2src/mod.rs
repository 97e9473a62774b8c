//! The `rustv4l2src` element: the public wrapper type and its registration.

use gst::glib;
use gst::prelude::*;

mod colorbalance;
mod imp;

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
