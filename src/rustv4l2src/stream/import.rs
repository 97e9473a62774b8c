//! `io-mode=dmabuf-import`: the driver captures into the dmabufs of downstream's buffer pool
//! (an encoder's, a display's, another V4L2 device's), and each frame goes downstream in the
//! very buffer downstream allocated: zero-copy into memory the consumer chose.
//!
//! A driver slot (`slots.rs`, over `v4l2::ImportQueue`) holds a pool buffer from `VIDIOC_QBUF`
//! to `VIDIOC_DQBUF`; the element keeps that buffer meanwhile, so its dmabufs stay open and
//! nobody else gets it. A frame pushed is downstream's to free: it goes back to downstream's
//! pool, and the element acquires buffers from the pool for the free slots before each wait,
//! without waiting. When downstream holds every buffer, the element asks the pool again every
//! few milliseconds, flushable and within `timeout`, as it waits for a frame.
//!
//! Downstream's pool is configured, activated and filled without the session's lock: it is
//! downstream's code, which may post to the bus.

use super::allocation::{Request, buffer_count};
use super::capture::{Capture, Decoration, Failure, GivenBack, decorate, driver_stamp, fail};
use super::session::Session;
use super::slots::{DownstreamPool, Fill, Import, Shape};
use crate::caps;
use crate::rustv4l2src::face::errors;
use crate::rustv4l2src::face::settings::TimeoutAction;
use crate::rustv4l2src::face::stats::FrameCounts;
use crate::rustv4l2src::shared::{CAT, lock};
use crate::v4l2::{self, Awaited, Device};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the element asks downstream's pool again while downstream holds every buffer.
const POOL_RETRY: Duration = Duration::from_millis(10);

/// Slots the driver gets before `VIDIOC_STREAMON`: vb2 drivers commonly start only with two
/// queued (vivid among them).
const QUEUED_TO_START: usize = 2;

fn no_pool(path: &str) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Settings,
        (
            "io-mode=dmabuf-import on '{}': downstream offers no buffer pool to import DMABUFs from (an encoder, a display sink or v4l2sink io-mode=dmabuf does). Use io-mode=dmabuf or mmap.",
            path
        )
    )
}

/// Allocation for `io-mode=dmabuf-import`: slots for downstream's dmabufs, filled from its
/// pool, unless the ones there already serve. Returns the pool to leave in the allocation
/// query (GstBaseSrc then keeps it active for the stream); `Err(None)` when the pool was
/// flushing, which is no error to post.
pub(in crate::rustv4l2src) fn allocate(
    session: &Mutex<Session>,
    request: &Request,
) -> Result<DownstreamPool, Option<gst::ErrorMessage>> {
    let (device, count, shape, downstream) =
        {
            let mut session = lock(session);
            let Some(device) = session.device().cloned() else {
                return Err(Some(no_format()));
            };
            let path = device.path().display().to_string();
            let downstream = request
                .downstream_pool
                .clone()
                .ok_or_else(|| no_pool(&path))?;
            let stream = session.stream().ok_or_else(no_format)?;
            if stream.import.as_ref().is_some_and(|i| {
                i.pool == downstream.pool && i.shape.video_meta == request.video_meta
            }) {
                // A reconfigure that changed nothing: keep capturing into the same slots.
                return Ok(downstream);
            }
            let format = device
                .g_fmt()
                .map_err(|e| errors::device_error("reading the format", &e))?;
            let shape = Shape {
                caps: stream.caps.clone(),
                framing: stream.framing,
                info: stream.info.clone(),
                video_meta: request.video_meta,
                sizes: format.planes.iter().map(|p| p.sizeimage).collect(),
            };
            let count = buffer_count(
                request.wanted,
                device.min_buffers_for_capture(),
                request.downstream_min,
                request.max,
            );
            if stream.import.is_some() || stream.queue.is_some() {
                session.free_buffers();
            }
            (device, count, shape, downstream)
        };
    let caps = shape.caps.clone();
    let import = match Import::start(&device, count, downstream.clone(), shape) {
        Ok(import) => import,
        Err(Fill::Flushing) => return Err(None),
        Err(Fill::Refused(msg)) => return Err(Some(msg)),
        Err(Fill::Lost(e)) => return Err(Some(errors::device_error("asking for buffers", &e))),
    };
    let mut session = lock(session);
    let Some(stream) = session.stream_mut().filter(|s| s.caps == caps) else {
        // Renegotiated or stopped meanwhile: these slots are for nothing.
        drop(session);
        drop(import);
        return Err(None);
    };
    gst::debug!(
        CAT,
        "{} slots for downstream's DMABUFs, {} queued",
        import.len(),
        import.queue.queued()
    );
    stream.readable_as_is = true;
    stream.video_meta = request.video_meta;
    stream.import = Some(import);
    Ok(downstream)
}

fn no_format() -> gst::ErrorMessage {
    gst::error_msg!(
        gst::CoreError::Negotiation,
        ("Allocation was asked for before caps were negotiated")
    )
}

impl Capture<'_> {
    /// `io-mode=dmabuf-import`: fills the free slots, streams, waits for a frame and hands its
    /// buffer downstream.
    pub(super) fn import_frame(&self) -> Result<gst::Buffer, Failure> {
        let device = self.start_import()?;
        let dequeue = || -> v4l2::Result<Option<v4l2::Dequeued>> {
            let mut session = lock(self.session);
            match session.stream_mut().and_then(|s| s.import.as_mut()) {
                Some(import) => import.queue.dequeue(),
                None => Ok(None),
            }
        };
        let mut corrupted = GivenBack::new();
        let frame = self.next_good(&device, dequeue, |frame: v4l2::Dequeued| {
            corrupted.push(frame.sequence);
            self.requeue(&device, frame.index)
        })?;
        self.hand_over(&device, &frame, &corrupted)
    }

    /// What failing to fill slots means for this frame request.
    fn fill_failed(&self, device: &Device, failed: Fill) -> Failure {
        match failed {
            Fill::Flushing => gst::FlowError::Flushing.into(),
            Fill::Refused(msg) => fail(gst::FlowError::Error, msg),
            Fill::Lost(e) => self.disconnected(device, e),
        }
    }

    /// Fills the free slots and starts the stream once, with enough queued for the driver to
    /// run; while downstream holds every buffer, asks its pool again every `POOL_RETRY`.
    fn start_import(&self) -> Result<Arc<Device>, Failure> {
        let knobs = self.knobs;
        let timeout =
            (knobs.timeout_ms > 0).then(|| Duration::from_millis(knobs.timeout_ms.into()));
        let started = Instant::now();
        loop {
            let mut session = lock(self.session);
            let import = session
                .stream_mut()
                .and_then(|s| s.import.as_mut())
                .ok_or(gst::FlowError::Flushing)?;
            let device = Arc::clone(import.queue.device());
            import.fill().map_err(|f| self.fill_failed(&device, f))?;
            let queued = import.queue.queued();
            let enough = if import.queue.is_streaming() {
                queued > 0
            } else {
                queued >= QUEUED_TO_START.min(import.len())
            };
            if enough {
                if !import.queue.is_streaming() {
                    import.queue.start().map_err(|e| {
                        if e.is_disconnect() {
                            return self.disconnected(&device, e);
                        }
                        fail(
                            gst::FlowError::Error,
                            errors::device_error("starting capture", &e),
                        )
                    })?;
                    gst::debug!(
                        CAT,
                        obj = self.element,
                        "Streaming into downstream's DMABUFs"
                    );
                }
                session.mark_streaming();
                return Ok(device);
            }
            drop(session);
            // Downstream holds the buffers the driver needs: wait for one to come back.
            match self.poller.wait_hotplug(None, Some(POOL_RETRY)) {
                Ok(Awaited::Flushing) => return Err(gst::FlowError::Flushing.into()),
                Ok(_) => {}
                Err(e) => {
                    return Err(fail(
                        gst::FlowError::Error,
                        errors::device_error("waiting for downstream's buffers", &e),
                    ));
                }
            }
            if let Some(timeout) = timeout
                && started.elapsed() >= timeout
            {
                if knobs.timeout_action == TimeoutAction::Eos {
                    return Err(gst::FlowError::Eos.into());
                }
                let path = device.path().display().to_string();
                return Err(fail(
                    gst::FlowError::Error,
                    errors::timed_out(&path, knobs.timeout_ms),
                ));
            }
        }
    }

    /// Puts the buffer of slot `index` back into it: a frame the driver flagged corrupt.
    fn requeue(&self, device: &Device, index: u32) -> Result<(), Failure> {
        let mut session = lock(self.session);
        let Some(import) = session.stream_mut().and_then(|s| s.import.as_mut()) else {
            return Err(gst::FlowError::Flushing.into());
        };
        if let Some(buffer) = import.slots.get_mut(index as usize).and_then(Option::take) {
            import
                .put(buffer)
                .map_err(|f| self.fill_failed(device, f))?;
        }
        Ok(())
    }

    /// The buffer of a filled slot, sized to what the driver wrote, stamped and counted.
    fn hand_over(
        &self,
        device: &Device,
        frame: &v4l2::Dequeued,
        corrupted: &GivenBack,
    ) -> Result<gst::Buffer, Failure> {
        let mut session = lock(self.session);
        let Session::Streaming(_, stream) = &mut *session else {
            return Err(gst::FlowError::Flushing.into());
        };
        let (pts, age) = self.frame_time(stream, driver_stamp(frame));
        let lost = self.lost_before(stream, corrupted, &GivenBack::new(), frame.sequence);
        let offset = stream.sequence.offset(frame.sequence);
        let mut buffer = stream
            .import
            .as_mut()
            .and_then(|i| i.slots.get_mut(frame.index as usize)?.take())
            .ok_or(gst::FlowError::Flushing)?;
        {
            let out = buffer.get_mut().ok_or(gst::FlowError::Error)?;
            // A frame in one memory is what the driver wrote of it (for compressed formats,
            // less than the buffer); a frame of several keeps its planes' full sizes, which
            // the pool expects back.
            if out.n_memory() == 1
                && let Some(range) = written(frame)
                && let Ok(memory) = out.peek_memory_mut(0)
                && range.end <= memory.maxsize()
                && (memory.offset(), memory.size()) != (range.start, range.len())
            {
                memory.resize_maxsize(range);
            }
            let keyframe = match stream.framing {
                caps::Framing::Compressed {
                    syntax: Some(syntax),
                    ..
                } if !frame.has_frame_type() => out
                    .map_readable()
                    .ok()
                    .and_then(|map| syntax.is_keyframe(&map))
                    .unwrap_or(false),
                _ => frame.is_keyframe(),
            };
            decorate(
                out,
                stream,
                Decoration {
                    field: frame.field,
                    keyframe,
                    pts,
                    offset,
                },
            )?;
        }
        let duration = stream.frame_duration;
        drop(session);
        let counts = FrameCounts {
            lost,
            dropped: 0,
            corrupted: corrupted.count,
            copied: false,
            refused: 0,
        };
        self.report(device, &counts, age, frame.sequence, (pts, duration));
        Ok(buffer)
    }
}

/// The bytes of the first plane the driver wrote: `data_offset..bytesused` (`bytesused` 0: a
/// driver that does not say, the whole memory).
fn written(frame: &v4l2::Dequeued) -> Option<std::ops::Range<usize>> {
    let (bytesused, data_offset) = frame.planes[0];
    (bytesused > 0).then(|| (data_offset.min(bytesused) as usize)..bytesused as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_what_the_driver_wrote_of_it() {
        let mut frame = v4l2::Dequeued {
            index: 0,
            flags: 0,
            field: 1,
            sequence: 0,
            timestamp: Duration::ZERO,
            n_planes: 1,
            planes: [(0, 0); 8],
        };
        assert_eq!(written(&frame), None);
        frame.planes[0] = (4096, 0);
        assert_eq!(written(&frame), Some(0..4096));
        frame.planes[0] = (4096, 128);
        assert_eq!(written(&frame), Some(128..4096));
        // A data_offset past bytesused (a confused driver) is an empty frame, not a panic.
        frame.planes[0] = (100, 200);
        assert_eq!(written(&frame), Some(100..100));
    }
}
