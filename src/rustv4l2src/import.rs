//! `io-mode=dmabuf-import`: the driver captures into the dmabufs of downstream's buffer pool
//! (an encoder's, a display's, another V4L2 device's), and each frame goes downstream in the
//! very buffer downstream allocated: zero-copy into memory the consumer chose.
//!
//! A driver slot (`v4l2::ImportQueue`) holds a pool buffer from `VIDIOC_QBUF` to `VIDIOC_DQBUF`;
//! the element keeps that buffer meanwhile, so its dmabufs stay open and nobody else gets it.
//! A frame pushed is downstream's to free: it goes back to downstream's pool, and the element
//! acquires buffers from the pool for the free slots before each wait, without waiting. When
//! downstream holds every buffer, the element asks the pool again every few milliseconds,
//! flushable and within `timeout`, as it waits for a frame.
//!
//! Downstream's pool is configured, activated and filled without the session's lock: it is
//! downstream's code, which may post to the bus.

use super::allocation::{Request, buffer_count};
use super::capture::{Capture, Decoration, Failure, GivenBack, decorate, fail};
use super::errors;
use super::session::Session;
use super::settings::TimeoutAction;
use super::shared::{CAT, lock};
use super::stats::FrameCounts;
use crate::caps;
use crate::v4l2::{self, Awaited, Device, ImportPlane, ImportQueue};
use gst::prelude::*;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the element asks downstream's pool again while downstream holds every buffer.
const POOL_RETRY: Duration = Duration::from_millis(10);

/// Slots the driver gets before `VIDIOC_STREAMON`: vb2 drivers commonly start only with two
/// queued (vivid among them).
const QUEUED_TO_START: usize = 2;

/// The pool downstream's allocation query offers first, which the element imports from.
#[derive(Debug, Clone)]
pub(super) struct DownstreamPool {
    pub pool: gst::BufferPool,
    pub size: u32,
    pub min: u32,
    pub max: u32,
}

impl DownstreamPool {
    pub(super) fn of(query: &gst::query::Allocation) -> Option<DownstreamPool> {
        query.allocation_pools().find_map(|(pool, size, min, max)| {
            Some(DownstreamPool {
                pool: pool?,
                size,
                min,
                max,
            })
        })
    }
}

/// What the frames must look like in downstream's buffers: the driver's layout of them.
#[derive(Clone)]
struct Shape {
    caps: gst::Caps,
    framing: caps::Framing,
    info: gst_video::VideoInfo,
    /// Downstream reads GstVideoMeta (its allocation query said so).
    video_meta: bool,
    /// The format's `sizeimage` per memory plane: the least each dmabuf must hold.
    sizes: Vec<u32>,
}

impl Shape {
    /// Whether downstream reads `buffer` as the driver writes it: a GstVideoMeta the pool put
    /// on it must say the driver's strides and offsets; without one, downstream reads
    /// GStreamer's default layout, or reads the meta the element adds.
    fn reads_as_driver(&self, buffer: &gst::BufferRef) -> bool {
        match &self.framing {
            caps::Framing::Video(layout) => match buffer.meta::<gst_video::VideoMeta>() {
                Some(meta) => {
                    let offsets =
                        caps::meta_offsets(layout, buffer.iter_memories().map(|m| m.size()));
                    let n = layout.n_planes;
                    meta.stride() == &layout.strides[..n] && meta.offset() == &offsets[..n]
                }
                None => self.video_meta || layout.matches_default(&self.info),
            },
            other => other.readable_as_is(&self.info, self.video_meta),
        }
    }
}

/// The driver's slots and the pool buffers queued in them.
pub(super) struct Import {
    // Declared before `slots`, so that dropping an `Import` ends the driver's stream (the
    // queue's `Drop`) before the buffers go back to the pool.
    queue: ImportQueue,
    pool: gst::BufferPool,
    /// Per slot, the buffer whose dmabufs the driver holds.
    slots: Vec<Option<gst::Buffer>>,
    /// Per slot, the dmabuf fd queued in it last: a buffer goes back to the slot it had, so
    /// vb2 keeps its attachment instead of mapping another dmabuf at every frame.
    last_fd: Vec<Option<RawFd>>,
    shape: Shape,
}

/// Why slots could not be filled.
enum Fill {
    /// The pool is flushing: the element is stopping or seeking.
    Flushing,
    /// What downstream offers cannot be captured into.
    Refused(gst::ErrorMessage),
    /// The device went away.
    Lost(v4l2::Error),
}

impl Import {
    /// `VIDIOC_REQBUFS(V4L2_MEMORY_DMABUF)` for `count` slots, downstream's pool configured for
    /// the caps (unless it is active for them already) and as many slots filled as it has
    /// buffers ready. A pool that gives memory the driver cannot fill is an error now, not at
    /// the first frame.
    fn start(
        device: &Arc<Device>,
        count: u32,
        downstream: DownstreamPool,
        shape: Shape,
    ) -> Result<Import, Fill> {
        let path = device.path().display().to_string();
        let total: u32 = shape.sizes.iter().fold(0, |a, &b| a.saturating_add(b));
        let count = match downstream.max {
            0 => count,
            max => count.min(max),
        };
        let pool = downstream.pool;
        let caps = &shape.caps;
        // Active already: downstream's, kept if it serves these caps, or the one this element
        // configured before a renegotiation, configured anew (which fails, clearly, while
        // downstream still holds buffers of it).
        let serves = |pool: &gst::BufferPool| {
            pool.config()
                .params()
                .is_some_and(|(had, size, ..)| had.as_ref() == Some(caps) && size >= total)
        };
        if pool.is_active() && !serves(&pool) && pool.set_active(false).is_err() {
            return Err(Fill::Refused(refused(
                &path,
                "its buffer pool is in use for other caps",
            )));
        }
        if !pool.is_active() {
            let size = total.max(downstream.size);
            let mut config = pool.config();
            config.set_params(Some(caps), size, count, downstream.max);
            // A pool may adjust what it was given (its own minimum, say) and say no: take its
            // adjustment when it still serves, as GstBaseSrc does.
            let configured = pool.set_config(config).or_else(|_| {
                let adjusted = pool.config();
                adjusted.validate_params(Some(caps), size, count, downstream.max)?;
                pool.set_config(adjusted)
            });
            configured
                .and_then(|()| pool.set_active(true))
                .map_err(|e| {
                    Fill::Refused(refused(
                        &path,
                        &format!("its buffer pool refused {caps}: {e}"),
                    ))
                })?;
        }
        let queue = ImportQueue::allocate(Arc::clone(device), count)
            .map_err(|e| driver_refused(&path, "cannot capture into imported DMABUFs", e))?;
        gst::debug!(
            CAT,
            "{}: {} slots (of {} asked) for downstream's DMABUFs of {} bytes",
            path,
            queue.len(),
            count,
            total
        );
        let mut import = Import {
            slots: vec![None; queue.len()],
            last_fd: vec![None; queue.len()],
            queue,
            pool,
            shape,
        };
        import.fill()?;
        Ok(import)
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Queues a buffer of the pool into each free slot, as long as the pool has one ready.
    fn fill(&mut self) -> Result<(), Fill> {
        while self.queue.free_slots().next().is_some() {
            match self.acquire_ready()? {
                Some(buffer) => self.put(buffer)?,
                None => break,
            }
        }
        Ok(())
    }

    /// A buffer of the pool, if it has one ready now.
    fn acquire_ready(&self) -> Result<Option<gst::Buffer>, Fill> {
        let ready = gst::BufferPoolAcquireParams::with_flags(gst::BufferPoolAcquireFlags::DONTWAIT);
        match self.pool.acquire_buffer(Some(&ready)) {
            Ok(buffer) => Ok(Some(buffer)),
            // DONTWAIT: the pool has none ready now.
            Err(gst::FlowError::Eos) => Ok(None),
            Err(gst::FlowError::Flushing) => Err(Fill::Flushing),
            Err(e) => {
                let path = self.queue.device().path().display().to_string();
                Err(Fill::Refused(refused(
                    &path,
                    &format!("its buffer pool gave no buffer ({e:?})"),
                )))
            }
        }
    }

    /// Queues `buffer`'s dmabufs into a free slot (the one it had last, if free), after
    /// checking the driver can fill them as downstream reads them: one dmabuf memory per plane
    /// of the format, from its start, each at least `sizeimage`, in the driver's layout.
    fn put(&mut self, buffer: gst::Buffer) -> Result<(), Fill> {
        let device = Arc::clone(self.queue.device());
        let path = device.path().display().to_string();
        let refuse = |why: String| Fill::Refused(refused(&path, &why));
        let sizes = &self.shape.sizes;
        if buffer.n_memory() != sizes.len() {
            return Err(refuse(format!(
                "its buffers have {} memories where the format has {} planes",
                buffer.n_memory(),
                sizes.len()
            )));
        }
        let mut planes = [ImportPlane { fd: -1, length: 0 }; 8];
        for ((memory, &needed), plane) in buffer.iter_memories().zip(sizes).zip(&mut planes) {
            let Some(dmabuf) = memory.downcast_memory_ref::<gst_allocators::DmaBufMemory>() else {
                let kind = memory
                    .allocator()
                    .map_or_else(|| "unknown".to_string(), |a| a.type_().name().to_string());
                return Err(refuse(format!(
                    "its buffer pool gives {kind} memory, not DMABUF"
                )));
            };
            let length = u32::try_from(memory.maxsize()).unwrap_or(u32::MAX);
            if memory.offset() != 0 || length < needed {
                return Err(refuse(format!(
                    "its buffers hold {} bytes from offset {} where the driver fills {} from 0",
                    memory.maxsize(),
                    memory.offset(),
                    needed
                )));
            }
            *plane = ImportPlane {
                fd: dmabuf.fd(),
                length,
            };
        }
        if !self.shape.reads_as_driver(&buffer) {
            return Err(refuse(format!(
                "its buffers' line layout (GstVideoMeta or GStreamer's default) is not the driver's for {}",
                self.shape.caps
            )));
        }
        let planes = &planes[..sizes.len()];
        let fd = planes[0].fd;
        let index = self
            .queue
            .free_slots()
            .find(|&i| self.last_fd[i as usize] == Some(fd))
            .or_else(|| self.queue.free_slots().next());
        let Some(index) = index else {
            // More buffers than slots: this one goes back to the pool.
            return Ok(());
        };
        self.queue
            .queue(index, planes)
            .map_err(|e| driver_refused(&path, "refused a DMABUF of downstream's", e))?;
        self.slots[index as usize] = Some(buffer);
        self.last_fd[index as usize] = Some(fd);
        Ok(())
    }

    /// STREAMOFF and free the slots, then give their buffers back to the pool: the driver no
    /// longer writes them.
    pub(super) fn stop(&mut self) {
        if let Err(e) = self.queue.stop() {
            gst::warning!(CAT, "Stopping the imported stream: {}", e);
        }
        self.slots.iter_mut().for_each(|slot| drop(slot.take()));
    }
}

/// What the driver's error `e` while importing means: a loss when the device went away, else
/// the device refusing `what`.
fn driver_refused(path: &str, what: &str, e: v4l2::Error) -> Fill {
    if e.is_disconnect() {
        return Fill::Lost(e);
    }
    Fill::Refused(gst::error_msg!(
        gst::ResourceError::Settings,
        (
            "Device '{}' {} (io-mode=dmabuf-import): {}. Use io-mode=dmabuf or mmap.",
            path,
            what,
            e
        )
    ))
}

fn refused(path: &str, why: &str) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Settings,
        (
            "io-mode=dmabuf-import on '{}': downstream cannot be imported from: {}. Use io-mode=dmabuf or mmap.",
            path,
            why
        )
    )
}

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
pub(super) fn allocate(
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
        let (pts, age) = self.frame_time(stream, frame);
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
    use crate::v4l2::{Fourcc, PixFormat, PlaneFormat};
    use gst_video::VideoFormat;

    /// The shape of YUY2 at 640x480 as a driver lays it out with `bytesperline`.
    fn yuy2(bytesperline: u32, video_meta: bool) -> Shape {
        gst::init().unwrap();
        let info = gst_video::VideoInfo::builder(VideoFormat::Yuy2, 640, 480)
            .build()
            .unwrap();
        let pix = PixFormat {
            width: 640,
            height: 480,
            fourcc: Fourcc::new(b"YUYV"),
            field: 1,
            colorspace: 0,
            ycbcr_enc: 0,
            quantization: 0,
            xfer_func: 0,
            planes: vec![PlaneFormat {
                bytesperline,
                sizeimage: bytesperline * 480,
            }],
        };
        Shape {
            caps: info.to_caps().unwrap(),
            framing: caps::Framing::Video(caps::Layout::new(&pix, &info).unwrap()),
            info,
            video_meta,
            sizes: vec![bytesperline * 480],
        }
    }

    fn buffer_with_meta(stride: Option<i32>) -> gst::Buffer {
        let mut buffer = gst::Buffer::with_size(1536 * 480).unwrap();
        if let Some(stride) = stride {
            gst_video::VideoMeta::add_full(
                buffer.get_mut().unwrap(),
                gst_video::VideoFrameFlags::empty(),
                VideoFormat::Yuy2,
                640,
                480,
                &[0],
                &[stride],
            )
            .unwrap();
        }
        buffer
    }

    #[test]
    fn a_pool_buffer_must_be_laid_out_as_the_driver_writes() {
        // The driver's rows are GStreamer's: a buffer without meta, or with a meta saying so.
        let packed = yuy2(1280, false);
        assert!(packed.reads_as_driver(&buffer_with_meta(None)));
        assert!(packed.reads_as_driver(&buffer_with_meta(Some(1280))));
        // A pool whose meta says other rows than the driver writes: never.
        assert!(!packed.reads_as_driver(&buffer_with_meta(Some(1536))));
        // Padded rows: only where the pool says them, or where downstream reads the element's
        // meta on a buffer without one.
        let padded = yuy2(1536, false);
        assert!(!padded.reads_as_driver(&buffer_with_meta(None)));
        assert!(padded.reads_as_driver(&buffer_with_meta(Some(1536))));
        assert!(yuy2(1536, true).reads_as_driver(&buffer_with_meta(None)));
        assert!(!yuy2(1536, true).reads_as_driver(&buffer_with_meta(Some(1280))));
    }

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
