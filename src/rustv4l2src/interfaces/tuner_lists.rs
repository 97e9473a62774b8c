//! GstTuner's lists for one open device, which the session keeps (they must live as long as the
//! device is open): its own file so that the session owns them without knowing the interface.

use gst::glib;
use gst::glib::gobject_ffi;
use gst::prelude::*;
use std::collections::HashMap;

/// A list lent to C callers (`transfer none`) and what each of its objects stands for.
pub(in crate::rustv4l2src) struct Lent {
    pub list: glib::List<glib::Object>,
    pub ids: Vec<u64>,
}

impl Lent {
    pub fn id_of(&self, object: &glib::Object) -> Option<u64> {
        self.list
            .iter()
            .position(|o| o == object)
            .map(|i| self.ids[i])
    }

    pub fn object_of(&self, pick: impl Fn(u64) -> bool) -> *mut gobject_ffi::GObject {
        self.ids
            .iter()
            .position(|&id| pick(id))
            .and_then(|i| self.list.iter().nth(i))
            .map_or(std::ptr::null_mut(), |o| o.as_ptr())
    }
}

/// The tuner's lists for one open device: its channels, and the norms of each input, made on
/// first use. Never rebuilt while the device is open, so a list handed out stays valid until
/// it closes (switching inputs carries them over to the reopened device).
#[derive(Default)]
pub(in crate::rustv4l2src) struct Lists {
    pub channels: Option<Lent>,
    pub norms: HashMap<u32, Lent>,
}

// SAFETY: the lists hold GstTunerChannel and GstTunerNorm objects, plain data with no thread
// affinity (glib-rs calls only GObject "not Send" because a subclass could have some);
// references to them are counted atomically, and the lists are only used under the session's
// lock.
unsafe impl Send for Lists {}
