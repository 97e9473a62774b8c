//! `rustv4l2deviceprovider`: lists the V4L2 capture nodes as `GstDevice`s, so that
//! `GstDeviceMonitor` (and `gst-device-monitor-1.0 Video/Source`) finds them, and makes a
//! `rustv4l2src` for each.
//!
//! Like the element, it reaches the kernel only through `crate::v4l2` and builds caps only
//! through `crate::caps`. It knows no udev: while started, a thread of its own rescans
//! `/dev/video*` on each of the kernel's video4linux hot-plug events, so devices that come or go
//! are reported at once; where those events cannot be had, or `RUSTV4L2_PROVIDER_SCAN=1` asks
//! for it, the thread rescans every second instead.

use gst::glib;
use gst::prelude::*;

mod device;
mod examine;
mod imp;
mod log;
mod monitor;
mod nodes;

glib::wrapper! {
    pub struct RustV4l2DeviceProvider(ObjectSubclass<imp::RustV4l2DeviceProvider>)
        @extends gst::DeviceProvider, gst::Object;
}

glib::wrapper! {
    /// One capture node: its card name, everything it can capture, and its path.
    pub struct RustV4l2Device(ObjectSubclass<device::RustV4l2Device>)
        @extends gst::Device, gst::Object;
}

/// Marginal rank: `GstDeviceMonitor` only uses providers ranked above none, and it lists their
/// devices by rank, so these come after those of v4l2's own provider (primary).
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::DeviceProvider::register(
        Some(plugin),
        "rustv4l2deviceprovider",
        gst::Rank::MARGINAL,
        RustV4l2DeviceProvider::static_type(),
    )
}
