//! `io-mode=dmabuf-import`: the driver captures into the dmabufs of downstream's buffer pool
//! (an encoder's, a display's, another V4L2 device's), and each frame goes downstream in the
//! very buffer downstream allocated: zero-copy into memory the consumer chose.
//!
//! A driver slot (`v4l2::ImportQueue`) holds a pool buffer from `VIDIOC_QBUF` to `VIDIOC_DQBUF`;
//! the element keeps that buffer meanwhile, so its dmabufs stay open and nobody else gets it.
//! A frame pushed is downstream's to free: it goes back to downstream's pool, and the element
//! acquires buffers from the pool for the free slots before each wait. With every buffer held
//! downstream it waits in the pool, which GstBaseSrc sets flushing on a flush or stop.

use super::capture::{Capture, Decoration, Failure, decorate, fail};
use super::errors;
use super::session::Session;
use super::shared::{CAT, lock};
use super::stats::FrameCounts;
use crate::caps;
use crate::v4l2::{self, Device, ImportPlane, ImportQueue};
use gst::prelude::*;
use std::sync::Arc;

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

/// The driver's slots and the pool buffers queued in them.
pub(super) struct Import {
    queue: ImportQueue,
    pool: gst::BufferPool,
    /// Per slot, the buffer whose dmabufs the driver holds.
    slots: Vec<Option<gst::Buffer>>,
    /// The format's `sizeimage` per memory plane: the least each dmabuf must hold.
    sizes: Vec<u32>,
}

impl Import {
    /// `VIDIOC_REQBUFS(V4L2_MEMORY_DMABUF)` for `count` slots, downstream's pool configured for
    /// `caps` (unless downstream activated it already) and as many slots filled as it has
    /// buffers ready. A pool that gives memory the driver cannot fill is an error now, not at
    /// the first frame.
    pub(super) fn start(
        device: &Arc<Device>,
        caps: &gst::Caps,
        count: u32,
        downstream: DownstreamPool,
    ) -> Result<Import, gst::ErrorMessage> {
        let path = device.path().display().to_string();
        let format = device
            .g_fmt()
            .map_err(|e| errors::device_error("reading the format", &e))?;
        let sizes: Vec<u32> = format.planes.iter().map(|p| p.sizeimage).collect();
        let total: u32 = sizes.iter().fold(0, |a, &b| a.saturating_add(b));
        let count = match downstream.max {
            0 => count,
            max => count.min(max),
        };
        let pool = downstream.pool;
        // Active already: downstream's (left as it is, if it serves these caps), or the one
        // this element configured for other caps before a renegotiation (configured anew).
        let serves = |pool: &gst::BufferPool| {
            pool.config()
                .params()
                .is_some_and(|(had, size, ..)| had.as_ref() == Some(caps) && size >= total)
        };
        if pool.is_active() && !serves(&pool) {
            let _ = pool.set_active(false);
        }
        if !pool.is_active() {
            let mut config = pool.config();
            config.set_params(
                Some(caps),
                total.max(downstream.size),
                count,
                downstream.max,
            );
            pool.set_config(config)
                .and_then(|()| pool.set_active(true))
                .map_err(|e| refused(&path, &format!("its buffer pool refused {caps}: {e}")))?;
        }
        let queue = ImportQueue::allocate(Arc::clone(device), count).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "Device '{}' cannot capture into imported DMABUFs (io-mode=dmabuf-import): {}. Use io-mode=dmabuf or mmap.",
                    path,
                    e
                )
            )
        })?;
        gst::debug!(
            CAT,
            "{}: {} slots for downstream's DMABUFs of {} bytes",
            path,
            queue.len(),
            total
        );
        let mut import = Import {
            slots: vec![None; queue.len()],
            queue,
            pool,
            sizes,
        };
        import.fill().map_err(|failure| match failure {
            Fill::Refused(msg) => msg,
            Fill::Flushing => refused(&path, "its buffer pool is flushing"),
        })?;
        Ok(import)
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Queues a buffer of the pool into each free slot, as long as the pool has one ready.
    fn fill(&mut self) -> Result<(), Fill> {
        let ready = gst::BufferPoolAcquireParams::with_flags(gst::BufferPoolAcquireFlags::DONTWAIT);
        while self.queue.free_slots().next().is_some() {
            match self.pool.acquire_buffer(Some(&ready)) {
                Ok(buffer) => self.put(buffer)?,
                // DONTWAIT: the pool has none ready now.
                Err(gst::FlowError::Eos) => break,
                Err(gst::FlowError::Flushing) => return Err(Fill::Flushing),
                Err(e) => {
                    let path = self.queue.device().path().display().to_string();
                    return Err(Fill::Refused(refused(
                        &path,
                        &format!("its buffer pool gave no buffer ({e:?})"),
                    )));
                }
            }
        }
        Ok(())
    }

    /// Queues `buffer`'s dmabufs into a free slot, after checking the driver can fill them: one
    /// dmabuf memory per plane of the format, from its start, each at least `sizeimage`.
    fn put(&mut self, buffer: gst::Buffer) -> Result<(), Fill> {
        let device = Arc::clone(self.queue.device());
        let path = device.path().display().to_string();
        let refuse = |why: String| Fill::Refused(refused(&path, &why));
        if buffer.n_memory() != self.sizes.len() {
            return Err(refuse(format!(
                "its buffers have {} memories where the format has {} planes",
                buffer.n_memory(),
                self.sizes.len()
            )));
        }
        let mut planes = Vec::with_capacity(self.sizes.len());
        for (memory, &needed) in buffer.iter_memories().zip(&self.sizes) {
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
            planes.push(ImportPlane {
                fd: dmabuf.fd(),
                length,
            });
        }
        let Some(index) = self.queue.free_slots().next() else {
            // More buffers than slots: this one goes back to the pool.
            return Ok(());
        };
        self.queue.queue(index, &planes).map_err(|e| {
            Fill::Refused(gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "Device '{}' refused a DMABUF of downstream's (io-mode=dmabuf-import): {}. Use io-mode=dmabuf or mmap.",
                    path,
                    e
                )
            ))
        })?;
        self.slots[index as usize] = Some(buffer);
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

/// Why slots could not be filled.
enum Fill {
    /// The pool is flushing: the element is stopping or seeking.
    Flushing,
    /// What downstream offers cannot be captured into.
    Refused(gst::ErrorMessage),
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

/// What the element says when downstream offers no pool at all.
pub(super) fn no_pool(path: &str) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Settings,
        (
            "io-mode=dmabuf-import on '{}': downstream offers no buffer pool to import DMABUFs from (an encoder, a display sink or v4l2sink io-mode=dmabuf does). Use io-mode=dmabuf or mmap.",
            path
        )
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
        let mut corrupted = 0u64;
        let frame = self.next_good(&device, dequeue, |frame: v4l2::Dequeued| {
            corrupted += 1;
            self.requeue(frame.index)
        })?;
        self.hand_over(&device, &frame, corrupted)
    }

    /// Fills the free slots (waiting in downstream's pool when it holds every buffer) and
    /// starts the stream once.
    fn start_import(&self) -> Result<Arc<Device>, Failure> {
        loop {
            let mut session = lock(self.session);
            let import = session
                .stream_mut()
                .and_then(|s| s.import.as_mut())
                .ok_or(gst::FlowError::Flushing)?;
            match import.fill() {
                Ok(()) => {}
                Err(Fill::Flushing) => return Err(gst::FlowError::Flushing.into()),
                Err(Fill::Refused(msg)) => return Err(fail(gst::FlowError::Error, msg)),
            }
            if import.queue.queued() == 0 {
                // Downstream holds every buffer: wait for one without the session's lock.
                let pool = import.pool.clone();
                drop(session);
                let buffer = pool.acquire_buffer(None)?;
                let mut session = lock(self.session);
                let import = session
                    .stream_mut()
                    .and_then(|s| s.import.as_mut())
                    .ok_or(gst::FlowError::Flushing)?;
                if let Err(Fill::Refused(msg)) = import.put(buffer) {
                    return Err(fail(gst::FlowError::Error, msg));
                }
                continue;
            }
            let device = Arc::clone(import.queue.device());
            if !import.queue.is_streaming() {
                import.queue.start().map_err(|e| {
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
    }

    /// Puts the buffer of slot `index` back into it: a frame the driver flagged corrupt.
    fn requeue(&self, index: u32) -> Result<(), Failure> {
        let mut session = lock(self.session);
        let Some(import) = session.stream_mut().and_then(|s| s.import.as_mut()) else {
            return Err(gst::FlowError::Flushing.into());
        };
        if let Some(buffer) = import.slots.get_mut(index as usize).and_then(Option::take) {
            match import.put(buffer) {
                Ok(()) => {}
                Err(Fill::Flushing) => return Err(gst::FlowError::Flushing.into()),
                Err(Fill::Refused(msg)) => return Err(fail(gst::FlowError::Error, msg)),
            }
        }
        Ok(())
    }

    /// The buffer of a filled slot, sized to what the driver wrote, stamped and counted.
    fn hand_over(
        &self,
        device: &Device,
        frame: &v4l2::Dequeued,
        corrupted: u64,
    ) -> Result<gst::Buffer, Failure> {
        let mut session = lock(self.session);
        let Session::Streaming(_, stream) = &mut *session else {
            return Err(gst::FlowError::Flushing.into());
        };
        let (pts, age) = self.frame_time(stream, frame);
        let lost = u64::from(stream.sequence.note(frame.sequence));
        let offset = stream.sequence.offset(frame.sequence);
        let mut buffer = stream
            .import
            .as_mut()
            .and_then(|i| i.slots.get_mut(frame.index as usize)?.take())
            .ok_or(gst::FlowError::Flushing)?;
        {
            let out = buffer.get_mut().ok_or(gst::FlowError::Error)?;
            let planes = frame.n_planes.min(out.n_memory());
            for (i, &(bytesused, _)) in frame.planes[..planes].iter().enumerate() {
                // A driver's `bytesused` past the memory would be a driver bug: clamped.
                let used = (bytesused as usize).min(out.peek_memory(i).maxsize());
                if used > 0
                    && let Ok(memory) = out.peek_memory_mut(i)
                    && memory.size() != used
                {
                    memory.resize_maxsize(..used);
                }
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
            corrupted,
            copied: false,
            refused: 0,
        };
        self.report(device, &counts, age, frame.sequence, (pts, duration));
        Ok(buffer)
    }
}
