//! The device provider's debug category, on its own so that every file of the provider can log
//! without importing the GObject glue that imports them.

use std::sync::LazyLock;

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rustv4l2deviceprovider",
        gst::DebugColorFlags::empty(),
        Some("V4L2 capture device provider for rustv4l2src"),
    )
});
