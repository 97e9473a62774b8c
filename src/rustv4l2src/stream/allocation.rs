//! Buffers for the negotiated format: how many to ask the driver for, and `REQBUFS` +
//! `QUERYBUF` + `mmap` (+ `EXPBUF` for `io-mode=dmabuf`) through the session; the other
//! io-modes' buffers are `iomodes.rs`'s.

use super::iomodes;
use super::pool::FramePool;
use super::session::Session;
use super::slots::DownstreamPool;
use crate::rustv4l2src::face::settings::IoMode;
use crate::rustv4l2src::shared::CAT;

/// Used when neither the driver nor downstream says anything: enough for the driver to keep
/// capturing while downstream holds a frame or two.
pub(in crate::rustv4l2src) const AUTO_MIN_BUFFERS: u32 = 4;

/// How many buffers to ask for: the `buffer-count` property when set (`wanted` > 0), else the
/// driver's minimum plus what downstream says it holds plus one, within
/// `AUTO_MIN_BUFFERS..=max`.
pub(super) fn buffer_count(
    wanted: u32,
    driver_min: Option<u32>,
    downstream_min: u32,
    max: u32,
) -> u32 {
    if wanted > 0 {
        return wanted.min(max);
    }
    driver_min
        .unwrap_or(1)
        .saturating_add(downstream_min)
        .saturating_add(1)
        .clamp(AUTO_MIN_BUFFERS, max.max(AUTO_MIN_BUFFERS))
}

/// What allocation needs to know.
pub(in crate::rustv4l2src) struct Request {
    /// The `buffer-count` property (0: choose).
    pub wanted: u32,
    pub max: u32,
    /// The most buffers downstream says it holds (its allocation query's pools).
    pub downstream_min: u32,
    /// Downstream understands GstVideoMeta.
    pub video_meta: bool,
    /// The `io-mode` property.
    pub io_mode: IoMode,
    /// The pool downstream offers (for `io-mode=dmabuf-import`).
    pub downstream_pool: Option<DownstreamPool>,
}

impl Session {
    /// Maps buffers for the configured format, unless the ones mapped already serve.
    pub fn allocate(&mut self, request: &Request) -> Result<(), gst::ErrorMessage> {
        let Some(device) = self.device().cloned() else {
            return Err(no_format());
        };
        match request.io_mode {
            IoMode::Rw => return self.start_reading(),
            // `import::allocate`'s: downstream's pool is driven without the session's lock.
            IoMode::DmabufImport => {
                return Err(gst::error_msg!(
                    gst::CoreError::Failed,
                    ("io-mode=dmabuf-import is allocated by import::allocate")
                ));
            }
            _ => {}
        }
        let dmabuf = request.io_mode == IoMode::Dmabuf;
        let userptr = request.io_mode == IoMode::Userptr;
        let count = buffer_count(
            request.wanted,
            device.min_buffers_for_capture(),
            request.downstream_min,
            request.max,
        );
        let streaming = matches!(self, Session::Streaming(..));
        let Some(stream) = self.stream() else {
            return Err(no_format());
        };
        if let Some(queue) = &stream.queue
            && stream.video_meta == request.video_meta
            && queue.is_exported() == dmabuf
            && queue.is_userptr() == userptr
            && (queue.len() >= count as usize || streaming)
        {
            // A reconfigure that changed nothing: keep capturing into the same buffers rather
            // than stopping the driver and dropping frames.
            gst::debug!(CAT, "Keeping the {} buffers already mapped", queue.len());
            return Ok(());
        }
        if stream.queue.is_some() {
            self.free_buffers();
        }
        let queue = iomodes::allocate_queue(&device, count, request.io_mode)?;
        gst::debug!(
            CAT,
            "Asked for {} buffers, driver granted {} (downstream holds up to {}){}",
            count,
            queue.len(),
            request.downstream_min,
            match request.io_mode {
                IoMode::Dmabuf => ", exported as DMABUF",
                IoMode::Userptr => ", of user memory",
                _ => "",
            }
        );
        let stream = self.stream_mut().ok_or_else(no_format)?;
        stream.readable_as_is = stream
            .framing
            .readable_as_is(&stream.info, request.video_meta);
        stream.video_meta = request.video_meta;
        stream.pool = Some(FramePool::new(
            queue.len(),
            dmabuf.then(gst_allocators::DmaBufAllocator::new),
        ));
        stream.queue = Some(queue);
        Ok(())
    }
}

fn no_format() -> gst::ErrorMessage {
    gst::error_msg!(
        gst::CoreError::Negotiation,
        ("Allocation was asked for before caps were negotiated")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_the_users_or_enough_for_driver_and_downstream() {
        assert_eq!(buffer_count(7, Some(3), 2, 32), 7);
        assert_eq!(buffer_count(40, None, 0, 32), 32);
        // Nobody says anything: the floor.
        assert_eq!(buffer_count(0, None, 0, 32), AUTO_MIN_BUFFERS);
        assert_eq!(buffer_count(0, Some(3), 2, 32), 6);
        assert_eq!(buffer_count(0, Some(30), 10, 32), 32);
        // Counts from a confused driver or downstream saturate instead of wrapping.
        assert_eq!(buffer_count(0, Some(u32::MAX), u32::MAX, 32), 32);
        assert_eq!(buffer_count(0, Some(1), 0, 2), AUTO_MIN_BUFFERS);
    }
}
