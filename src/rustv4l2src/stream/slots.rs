//! The slots of `io-mode=dmabuf-import` (`import.rs`): the driver's `V4L2_MEMORY_DMABUF` slots
//! (`v4l2::ImportQueue`) and the buffers of downstream's pool queued in them, what a pool
//! buffer must be for the driver to fill it, and the pool's configuration. Knows nothing of the
//! session or the capture loop, which hold an `Import` and drive it.

use crate::caps;
use crate::rustv4l2src::shared::CAT;
use crate::v4l2::{self, Device, ImportPlane, ImportQueue};
use gst::prelude::*;
use std::os::fd::RawFd;
use std::sync::Arc;

/// The pool downstream's allocation query offers first, which the element imports from.
#[derive(Debug, Clone)]
pub(in crate::rustv4l2src) struct DownstreamPool {
    pub pool: gst::BufferPool,
    pub size: u32,
    pub min: u32,
    pub max: u32,
}

impl DownstreamPool {
    pub(in crate::rustv4l2src) fn of(query: &gst::query::Allocation) -> Option<DownstreamPool> {
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
pub(in crate::rustv4l2src) struct Shape {
    pub caps: gst::Caps,
    pub framing: caps::Framing,
    pub info: gst_video::VideoInfo,
    /// Downstream reads GstVideoMeta (its allocation query said so).
    pub video_meta: bool,
    /// The format's `sizeimage` per memory plane: the least each dmabuf must hold.
    pub sizes: Vec<u32>,
}

impl Shape {
    /// Whether downstream reads `buffer` as the driver writes it: a GstVideoMeta the pool put
    /// on it must say the driver's strides and offsets; without one, downstream reads
    /// GStreamer's default layout, or reads the meta the element adds.
    pub(super) fn reads_as_driver(&self, buffer: &gst::BufferRef) -> bool {
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
pub(in crate::rustv4l2src) struct Import {
    // Declared before `slots`, so that dropping an `Import` ends the driver's stream (the
    // queue's `Drop`) before the buffers go back to the pool.
    pub queue: ImportQueue,
    pub pool: gst::BufferPool,
    /// Per slot, the buffer whose dmabufs the driver holds.
    pub slots: Vec<Option<gst::Buffer>>,
    /// Per slot, the dmabuf fd queued in it last: a buffer goes back to the slot it had, so
    /// vb2 keeps its attachment instead of mapping another dmabuf at every frame.
    pub last_fd: Vec<Option<RawFd>>,
    pub shape: Shape,
}

/// Why slots could not be filled.
pub(super) enum Fill {
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
    pub(super) fn start(
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

    pub(in crate::rustv4l2src) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Queues a buffer of the pool into each free slot, as long as the pool has one ready.
    pub(super) fn fill(&mut self) -> Result<(), Fill> {
        while self.queue.free_slots().next().is_some() {
            match self.acquire_ready()? {
                Some(buffer) => self.put(buffer)?,
                None => break,
            }
        }
        Ok(())
    }

    /// A buffer of the pool, if it has one ready now.
    pub(super) fn acquire_ready(&self) -> Result<Option<gst::Buffer>, Fill> {
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
    pub(super) fn put(&mut self, buffer: gst::Buffer) -> Result<(), Fill> {
        // The device's path is spelled out only for an error: this runs for every frame.
        let device = Arc::clone(self.queue.device());
        let path = || device.path().display().to_string();
        let refuse = |why: String| Fill::Refused(refused(&path(), &why));
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
            .map_err(|e| driver_refused(&path(), "refused a DMABUF of downstream's", e))?;
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

pub(super) fn refused(path: &str, why: &str) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Settings,
        (
            "io-mode=dmabuf-import on '{}': downstream cannot be imported from: {}. Use io-mode=dmabuf or mmap.",
            path,
            why
        )
    )
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
}
