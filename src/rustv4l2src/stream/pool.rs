//! The frame pool: one GstBuffer per driver buffer, made the first time that buffer is
//! dequeued (its memories wrapping the buffer's mapping, or its dmabufs exported once) and
//! handed out again for each of its frames, as C v4l2src's buffer pool does. Per frame nothing
//! is allocated: the frame's token goes into the buffer's `Lease`, the memories' windows are
//! set to the bytes the driver wrote, and when downstream drops the buffer it comes back here
//! (GStreamer's pool release), is reset, and its driver buffer is re-queued.
//!
//! A buffer that comes back while something else still reads its memory (a copy of it, a part
//! of it shared, or its memory put into another buffer: all lock the memory, so it is no longer
//! writable) is not reused: the pool lets go of it and of its `Lease`, and the driver buffer goes
//! back when the last holder is gone (the memories hold the lease in mmap mode; in dmabuf mode a
//! `GstParentBufferMeta`, which copies take along, does). The next frame of that driver buffer
//! gets a new GstBuffer. As in C v4l2src, a bare reference to a memory (outside any buffer)
//! locks nothing and does not hold the driver buffer: it may read a later frame, never freed
//! memory (the mapping lives as long as the memory). Knows nothing of formats or metas beyond
//! keeping `GstVideoMeta`, which the capture loop sets.

use super::lend;
use crate::rustv4l2src::shared::{CAT, lock};
use crate::v4l2::lease::{MAX_PLANES, frame_windows};
use crate::v4l2::{DqBuffer, Lease};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::ops::ControlFlow;
use std::sync::Arc;

glib::wrapper! {
    pub struct FramePool(ObjectSubclass<imp::FramePool>)
        @extends gst::BufferPool, gst::Object;
}

impl FramePool {
    /// A pool for a queue of `buffers` driver buffers; with `dmabuf`, their memories are
    /// dmabufs wrapped by that allocator, else the mappings.
    pub(super) fn new(buffers: usize, dmabuf: Option<gst_allocators::DmaBufAllocator>) -> Self {
        let pool: Self = glib::Object::new();
        {
            let imp = pool.imp();
            *lock(&imp.slots) = (0..buffers).map(|_| imp::Slot::default()).collect();
            *lock(&imp.dmabuf) = dmabuf;
        }
        let mut config = pool.config();
        config.set_params(None, 0, 0, 0);
        if pool.set_config(config).is_err() || pool.set_active(true).is_err() {
            gst::warning!(CAT, obj = &pool, "Could not activate the frame pool");
        }
        pool
    }

    /// Whether the pool hands out dmabuf memory.
    pub(super) fn is_dmabuf(&self) -> bool {
        lock(&self.imp().dmabuf).is_some()
    }

    /// Hands `frame` out as its driver buffer's GstBuffer, with one memory per plane whose
    /// window is the frame's bytes; the driver buffer goes back when the GstBuffer comes back
    /// to the pool. Flags, timestamps and metas other than `GstVideoMeta` are unset. On failure
    /// the frame goes back to the driver and the error says why.
    pub(super) fn lend(&self, frame: DqBuffer) -> Result<gst::Buffer, String> {
        let imp = self.imp();
        *lock(&imp.handing) = Some(frame);
        match self.acquire_buffer(None) {
            Ok(buffer) => Ok(buffer),
            Err(flow) => {
                drop(lock(&imp.handing).take());
                Err(lock(&imp.failure)
                    .take()
                    .unwrap_or_else(|| format!("the buffer pool refused ({flow:?})")))
            }
        }
    }
}

mod imp {
    use super::*;
    use std::sync::Mutex;

    /// What must come back for a buffer to be reused: the buffer and its memories, by address.
    #[derive(Default)]
    pub(super) struct Ids {
        buffer: usize,
        memories: [usize; MAX_PLANES],
        n: usize,
    }

    impl Ids {
        fn of(buffer: &gst::BufferRef) -> Ids {
            let mut ids = Ids {
                buffer: buffer.as_ptr() as usize,
                n: buffer.n_memory().min(MAX_PLANES),
                ..Ids::default()
            };
            for (id, memory) in ids.memories.iter_mut().zip(buffer.iter_memories()) {
                *id = memory.as_ptr() as usize;
            }
            ids
        }

        /// `buffer` is this slot's, with its own memories, none of them shared.
        fn intact(&self, buffer: &gst::BufferRef) -> bool {
            buffer.n_memory() == self.n
                && buffer
                    .iter_memories()
                    .zip(&self.memories)
                    .all(|(memory, &id)| memory.as_ptr() as usize == id)
                && buffer.is_all_memory_writable()
        }
    }

    /// One driver buffer: its lease, and its GstBuffer while that is in the pool.
    #[derive(Default)]
    pub(super) struct Slot {
        lease: Option<Arc<Lease>>,
        buffer: Option<gst::Buffer>,
        ids: Option<Ids>,
    }

    #[derive(Default)]
    pub struct FramePool {
        /// Per driver buffer, by index; made once.
        pub(super) slots: Mutex<Vec<Slot>>,
        pub(super) dmabuf: Mutex<Option<gst_allocators::DmaBufAllocator>>,
        /// The frame `lend` hands over to `acquire_buffer`.
        pub(super) handing: Mutex<Option<DqBuffer>>,
        /// Why `acquire_buffer` failed, for `lend` to say.
        pub(super) failure: Mutex<Option<String>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for FramePool {
        const NAME: &'static str = "GstRustV4l2FramePool";
        type Type = super::FramePool;
        type ParentType = gst::BufferPool;
    }

    impl ObjectImpl for FramePool {}
    impl GstObjectImpl for FramePool {}

    impl FramePool {
        /// The GstBuffer of a driver buffer, the first time it is dequeued: its memories wrap
        /// the mapping (or dmabufs exported once), full size.
        fn build(&self, lease: &Arc<Lease>) -> Result<gst::Buffer, String> {
            let mut buffer = gst::Buffer::new();
            let b = buffer.get_mut().ok_or("a new buffer is not writable")?;
            match &*lock(&self.dmabuf) {
                Some(allocator) => {
                    let fds = lease
                        .dmabufs()
                        .map_err(|e| e.to_string())?
                        .ok_or("the buffers were not exported")?;
                    for fd in fds {
                        let (fd, size) = fd.map_err(|e| e.to_string())?;
                        let memory = lend::dmabuf_memory(allocator, fd, size)
                            .map_err(|e| format!("the dmabuf allocator refused the fd: {e}"))?;
                        b.append_memory(memory);
                    }
                    // Copies of the buffer take this meta along: the lease, and so the driver
                    // buffer, stays out of the driver's hands until they are gone too.
                    let holder = gst::Buffer::from_slice(LeaseHolder {
                        _lease: Arc::clone(lease),
                    });
                    gst::ParentBufferMeta::add(b, &holder);
                }
                None => {
                    for plane in lease.planes() {
                        b.append_memory(gst::Memory::from_mut_slice(plane));
                    }
                }
            }
            gst::debug!(
                CAT,
                imp = self,
                "Made the buffer for driver buffer {}",
                lease.index()
            );
            Ok(buffer)
        }

        fn fail(&self, why: String) -> gst::FlowError {
            *lock(&self.failure) = Some(why);
            gst::FlowError::Error
        }
    }

    impl BufferPoolImpl for FramePool {
        fn start(&self) -> bool {
            true
        }

        fn stop(&self) -> bool {
            true
        }

        fn acquire_buffer(
            &self,
            _params: Option<&gst::BufferPoolAcquireParams>,
        ) -> Result<gst::Buffer, gst::FlowError> {
            let frame = lock(&self.handing)
                .take()
                .ok_or_else(|| self.fail("no frame to hand out".into()))?;
            let windows = frame_windows(&frame);
            let mut slots = lock(&self.slots);
            let Some(slot) = slots.get_mut(frame.index as usize) else {
                return Err(self.fail(format!("no buffer {} in the pool", frame.index)));
            };
            let reused = match (slot.buffer.take(), &slot.lease) {
                (Some(buffer), Some(lease)) => match lease.hold(frame) {
                    Ok(()) => Ok(buffer),
                    // Of another queue (a frame of a stream rebuilt meanwhile), or a lease
                    // that somehow still holds a token: start over with a new buffer.
                    Err(frame) => Err(frame),
                },
                _ => Err(frame),
            };
            let mut buffer = match reused {
                Ok(buffer) => buffer,
                Err(frame) => {
                    let lease = Lease::new(frame);
                    let buffer = self.build(&lease).map_err(|e| self.fail(e))?;
                    slot.ids = Some(Ids::of(&buffer));
                    slot.lease = Some(lease);
                    buffer
                }
            };
            let windowed = buffer.get_mut().is_some_and(|b| {
                (0..b.n_memory()).all(|i| match b.peek_memory_mut(i) {
                    Ok(memory) => {
                        let window = windows.get(i).cloned().unwrap_or(0..0);
                        memory.resize_maxsize(
                            window.start.min(memory.maxsize())..window.end.min(memory.maxsize()),
                        );
                        true
                    }
                    Err(_) => false,
                })
            });
            if !windowed {
                // Not ours alone after all: let it go, and the driver buffer with it.
                slot.lease = None;
                slot.ids = None;
                drop(slots);
                drop(buffer);
                return Err(self.fail("a pooled buffer was not writable".into()));
            }
            Ok(buffer)
        }

        fn reset_buffer(&self, buffer: &mut gst::BufferRef) {
            // Every flag, the video ones (fields) too, which `BufferFlags::all()` leaves out.
            buffer.unset_flags(gst::BufferFlags::from_bits_retain(u32::MAX));
            buffer.set_pts(None);
            buffer.set_dts(None);
            buffer.set_duration(None);
            buffer.set_offset(u64::MAX);
            buffer.set_offset_end(u64::MAX);
            let keep = [
                gst_video::VideoMeta::meta_api(),
                gst::ParentBufferMeta::meta_api(),
            ];
            buffer.foreach_meta_mut(|meta| {
                ControlFlow::Continue(if keep.contains(&meta.api()) {
                    gst::buffer::BufferMetaForeachAction::Keep
                } else {
                    gst::buffer::BufferMetaForeachAction::Remove
                })
            });
        }

        fn release_buffer(&self, buffer: gst::Buffer) {
            let id = buffer.as_ptr() as usize;
            let mut slots = lock(&self.slots);
            let Some(slot) = slots
                .iter_mut()
                .find(|slot| slot.ids.as_ref().is_some_and(|ids| ids.buffer == id))
            else {
                return;
            };
            let intact = slot.ids.as_ref().is_some_and(|ids| ids.intact(&buffer));
            if intact && let Some(lease) = slot.lease.clone() {
                slot.buffer = Some(buffer);
                drop(slots);
                // Stored first: once queued, the driver buffer may come back at once.
                lease.give_back();
                return;
            }
            slot.lease = None;
            slot.ids = None;
            drop(slots);
            gst::debug!(
                gst::CAT_PERFORMANCE,
                imp = self,
                "A buffer came back while its memory is still in use: not reused"
            );
            drop(buffer);
        }
    }

    /// A frame's lease, as the (empty) content of the holder buffer its `GstParentBufferMeta`
    /// refers to.
    struct LeaseHolder {
        _lease: Arc<Lease>,
    }

    impl AsRef<[u8]> for LeaseHolder {
        fn as_ref(&self) -> &[u8] {
            &[]
        }
    }
}
