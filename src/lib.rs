//! rustv4l2: a zero-copy V4L2 capture source for GStreamer.
//!
//! `v4l2` talks to the kernel, `caps` translates between V4L2 formats and GStreamer caps, and
//! `rustv4l2src` is the element built on both, and `deviceprovider` lists capture nodes for
//! `GstDeviceMonitor`.

pub mod caps;
mod deviceprovider;
#[cfg(test)]
mod properties;
mod rustv4l2src;
pub mod v4l2;

pub use rustv4l2src::RustV4l2Src;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    rustv4l2src::register(plugin)?;
    deviceprovider::register(plugin)
}

gst::plugin_define!(
    rustv4l2,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // Meant to be the URL the plugin comes from, which this project does not have in public:
    // say so rather than invent one (GStreamer refuses a plugin without an origin).
    concat!(
        env!("CARGO_PKG_NAME"),
        ": no public URL; see README.md in its sources"
    ),
    env!("BUILD_REL_DATE")
);
