//! The capture buffer queue: driver buffers mapped once into this process, queued to the driver,
//! and lent out one frame at a time.
//!
//! Ownership: a `Queue` is shared through an `Arc` by the element and by every frame it has
//! lent. A lent frame gives its buffer back to the driver (`VIDIOC_QBUF`) when it is dropped,
//! from whichever thread drops it, unless that stream has ended meanwhile. The mappings live in
//! the `Queue`, so they stay valid until the last lent frame is gone, whatever the element does.

use super::device::{Dequeued, Device};
use super::error::{Error, Result};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One plane of one driver buffer, mapped shared and read-write.
struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; moving the pointer between
// threads is sound. Who may write it at a given time is governed by the V4L2 buffer ownership
// (the driver while queued, the single holder of a `Lent` frame otherwise).
unsafe impl Send for Mapping {}
// SAFETY: see `Send`; `Mapping` itself exposes no interior mutation.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(device: &Device, offset: u32, len: u32) -> Result<Mapping> {
        let size = NonZeroUsize::new(len as usize)
            .ok_or_else(|| Error::new("mmap", device.path(), nix::errno::Errno::EINVAL))?;
        // SAFETY: we map a fresh region chosen by the kernel (no address hint), so nothing
        // existing is replaced; the offset and length come from VIDIOC_QUERYBUF for this fd.
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                device,
                offset as i64,
            )
        }
        .map_err(|errno| Error::new("mmap", device.path(), errno))?;
        Ok(Mapping {
            ptr,
            len: len as usize,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly one region returned by mmap, unmapped only here, and
        // no slice into it outlives this value: every `Lent` holds the `Queue` that owns it.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

/// Counters the element reports; atomics so the drop hook can bump them without a lock.
#[derive(Default)]
pub struct QueueCounters {
    /// `VIDIOC_QBUF` from a drop hook that the driver refused.
    pub requeue_failures: AtomicU64,
}

pub struct Queue {
    device: Arc<Device>,
    /// Per driver buffer, one mapping per memory plane.
    buffers: Vec<Vec<Mapping>>,
    /// True while the stream these buffers belong to runs. Guarded by a mutex (not an atomic
    /// flag) so that `stop` and a late `QBUF` from a drop hook cannot interleave: once `stop`
    /// holds it, no buffer can be queued into the ended stream.
    live: Mutex<bool>,
    /// Buffers currently owned by the driver.
    queued: AtomicUsize,
    pub counters: QueueCounters,
}

impl Queue {
    /// `VIDIOC_REQBUFS` + `VIDIOC_QUERYBUF` + `mmap` for each buffer, once. The driver may grant
    /// a different count than asked; `len()` tells.
    pub fn allocate(device: Arc<Device>, count: u32) -> Result<Arc<Queue>> {
        let granted = device.reqbufs(count)?;
        if granted == 0 {
            return Err(Error::new(
                "VIDIOC_REQBUFS",
                device.path(),
                nix::errno::Errno::ENOMEM,
            ));
        }
        let mut buffers = Vec::with_capacity(granted as usize);
        for index in 0..granted {
            let planes = device.querybuf(index)?;
            let maps = planes
                .planes
                .iter()
                .map(|&(offset, len)| Mapping::new(&device, offset, len))
                .collect::<Result<Vec<_>>>()?;
            buffers.push(maps);
        }
        Ok(Arc::new(Queue {
            device,
            buffers,
            live: Mutex::new(false),
            queued: AtomicUsize::new(0),
            counters: QueueCounters::default(),
        }))
    }

    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    /// How many buffers the driver holds right now (can fill).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Queues every buffer and starts streaming.
    pub fn start(&self) -> Result<()> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for index in 0..self.buffers.len() {
            self.device.qbuf(index as u32)?;
            self.queued.fetch_add(1, Ordering::AcqRel);
        }
        self.device.streamon()?;
        *live = true;
        Ok(())
    }

    /// Ends the stream: `VIDIOC_STREAMOFF` and `VIDIOC_REQBUFS(0)`. Frames still lent out stay
    /// readable (vb2 keeps mapped memory alive, "orphaned", until it is unmapped) and are not
    /// re-queued when dropped. Never waits for them.
    pub fn stop(&self) -> Result<()> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let was_live = std::mem::replace(&mut *live, false);
        self.queued.store(0, Ordering::Release);
        if was_live {
            self.device.streamoff()?;
        }
        self.device.reqbufs(0)?;
        Ok(())
    }

    /// Waits for nothing: `Ok(None)` when no buffer is ready.
    pub fn dequeue(&self) -> Result<Option<Dequeued>> {
        let frame = self.device.dqbuf()?;
        if let Some(frame) = &frame
            && (frame.index as usize) < self.buffers.len()
        {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(frame)
    }

    /// Gives a dequeued buffer straight back to the driver (after copying it, or dropping it).
    pub fn requeue(&self, index: u32) -> Result<()> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if !*live {
            return Ok(());
        }
        self.device.qbuf(index)?;
        self.queued.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// The bytes of a dequeued frame's plane, for a copy. The caller must hold the buffer
    /// (dequeued and not yet re-queued).
    pub fn frame_plane(&self, frame: &Dequeued, plane: usize) -> &[u8] {
        plane_slice(&self.buffers, frame, plane)
    }

    /// Hands a dequeued buffer out as a frame; dropping the last `Plane` of it re-queues it.
    pub fn lend(self: &Arc<Self>, frame: Dequeued) -> Vec<Plane> {
        let lent = Arc::new(Lent {
            queue: Arc::clone(self),
            frame,
        });
        (0..frame.n_planes.min(self.buffers[frame.index as usize].len()))
            .map(|plane| {
                let data = plane_slice(&self.buffers, &frame, plane);
                Plane {
                    lent: Arc::clone(&lent),
                    ptr: data.as_ptr() as *mut u8,
                    len: data.len(),
                }
            })
            .collect()
    }

    /// Whether `ptr` lies inside one of this queue's mappings (for zero-copy checks).
    pub fn contains(&self, ptr: *const u8) -> bool {
        self.buffers.iter().flatten().any(|m| {
            let start = m.ptr.as_ptr() as usize;
            (start..start + m.len).contains(&(ptr as usize))
        })
    }
}

/// The part of a plane's mapping that holds the frame: `data_offset..bytesused`, clamped to the
/// mapping so a confused driver cannot make us read past it.
fn plane_slice<'a>(buffers: &'a [Vec<Mapping>], frame: &Dequeued, plane: usize) -> &'a [u8] {
    let Some(map) = buffers.get(frame.index as usize).and_then(|b| b.get(plane)) else {
        return &[];
    };
    let (bytesused, data_offset) = frame.planes[plane];
    let used = if bytesused == 0 {
        map.len
    } else {
        (bytesused as usize).min(map.len)
    };
    let start = (data_offset as usize).min(used);
    // SAFETY: `start..used` lies within the mapping, which lives as long as `buffers` (borrowed
    // for 'a). The buffer is dequeued, so the driver does not write it while this slice lives.
    unsafe { std::slice::from_raw_parts((map.ptr.as_ptr() as *const u8).add(start), used - start) }
}

/// A dequeued frame lent downstream. Dropping it (when the last `Plane` goes) re-queues the
/// buffer: never blocks beyond the queue's short lock, never panics.
struct Lent {
    queue: Arc<Queue>,
    frame: Dequeued,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if self.queue.requeue(self.frame.index).is_err() {
            self.queue
                .counters
                .requeue_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One plane of a lent frame: the bytes the driver wrote, inside the device mapping.
pub struct Plane {
    lent: Arc<Lent>,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the pointer refers into a mapping kept alive by `lent` (through its `Queue`); the
// buffer is out of the driver's hands until `lent` drops, so the bytes can be used from any
// thread.
unsafe impl Send for Plane {}

impl Plane {
    /// The driver's metadata for the frame this plane belongs to.
    pub fn frame(&self) -> &Dequeued {
        &self.lent.frame
    }
}

impl AsRef<[u8]> for Plane {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` lies within a live mapping (see `Send`).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl AsMut<[u8]> for Plane {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_ref`; each `Plane` covers its own plane's bytes, disjoint from
        // every other `Plane`, and `&mut self` makes this the only access to them.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}
