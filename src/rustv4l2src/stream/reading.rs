//! What a stream read with `read()` (`io-mode=rw`) keeps: the file it reads through, the frame
//! size, the pool it reads into and its frame count. Its own file so that the session can own
//! one without knowing how frames are read (`iomodes.rs`).

use crate::v4l2::Reader;
use gst::prelude::*;
use std::sync::Arc;

/// A stream's frames by `read()` (`io-mode=rw`).
pub(in crate::rustv4l2src) struct Reading {
    pub reader: Arc<Reader>,
    /// Bytes of one frame (`sizeimage`).
    pub size: u32,
    /// Where frames are read into, made on first need.
    pub pool: Option<gst::BufferPool>,
    /// Frames read: their offsets, as the driver gives no sequence number with `read()`.
    pub count: u64,
}

impl Reading {
    /// Closes the reader's file (when no frame request uses it any more), which stops the
    /// driver and frees its buffers.
    pub fn end(self) {
        if let Some(pool) = self.pool {
            let _ = pool.set_active(false);
        }
    }
}
