//! What every file of the element uses: its debug category, taking a lock that a panic
//! elsewhere may have poisoned, and posting an element message.

use std::sync::{LazyLock, Mutex, MutexGuard};

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rustv4l2src",
        gst::DebugColorFlags::empty(),
        Some("Zero-copy V4L2 capture source"),
    )
});

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later call into a panic too.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Posts `rustv4l2src-<what>` (`structure`) from `element`; never with a lock held.
pub(super) fn post_element_message(element: &gst::Element, structure: gst::Structure) {
    use gst::prelude::*;
    let _ = element.post_message(
        gst::message::Element::builder(structure)
            .src(element)
            .build(),
    );
}
