//! The capture buffer queue: driver buffers mapped once into this process, queued to the driver,
//! and lent out one frame at a time.
//!
//! Ownership: a `Queue` is shared through an `Arc` by the element and by every frame it has
//! lent. A lent frame gives its buffer back to the driver (`VIDIOC_QBUF`) when it is dropped,
//! from whichever thread drops it, unless that stream has ended meanwhile. The mappings live in
//! the `Queue`, so they stay valid until the last lent frame is gone, whatever the element does.
//!
//! A queue may also export its buffers as dmabufs (`VIDIOC_EXPBUF`), once, at allocation. A lent
//! plane then hands out a duplicate of its dmabuf fd, which its consumer owns: the dmabuf stays
//! valid for as long as that fd is open, whatever happens to the queue or the frame.

use super::device::{Dequeued, Device, DmaBufFd};
use super::error::{Error, Result};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ops::Range;
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
        let einval = || Error::new("mmap", device.path(), nix::errno::Errno::EINVAL);
        let len = usize::try_from(len).map_err(|_| einval())?;
        let size = NonZeroUsize::new(len).ok_or_else(einval)?;
        let offset = nix::libc::off_t::from(offset);
        // SAFETY: we map a fresh region chosen by the kernel (no address hint), so nothing
        // existing is replaced; the offset and length come from VIDIOC_QUERYBUF for this fd.
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                device,
                offset,
            )
        }
        .map_err(|errno| Error::new("mmap", device.path(), errno))?;
        Ok(Mapping { ptr, len })
    }

    /// Where the bytes at `range` of this mapping start. The pointer comes from mmap's own,
    /// never from a slice, so it may be written through.
    fn ptr_at(&self, range: &Range<usize>) -> NonNull<u8> {
        debug_assert!(range.start <= range.end && range.end <= self.len);
        let start = range.start.min(self.len);
        // SAFETY: `start <= len`: the result lies inside the mapping or one past its end, as
        // `add` requires.
        unsafe { self.ptr.cast::<u8>().add(start) }
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
    /// Per driver buffer, one dmabuf per memory plane, when the queue was exported; else empty.
    /// The mappings stay too: copies and `frame_plane` read through them.
    exports: Vec<Vec<DmaBufFd>>,
    /// True while the stream these buffers belong to runs. Guarded by a mutex (not an atomic
    /// flag) so that `stop` and a late `QBUF` from a drop hook cannot interleave: once `stop`
    /// holds it, no buffer can be queued into the ended stream.
    live: Mutex<bool>,
    /// Buffers currently owned by the driver.
    queued: AtomicUsize,
    pub counters: QueueCounters,
}

impl Queue {
    /// `VIDIOC_REQBUFS` + `VIDIOC_QUERYBUF` + `mmap` for each buffer, once, and with `export`
    /// also `VIDIOC_EXPBUF` for each plane of each buffer. The driver may grant a different count
    /// than asked; `len()` tells.
    pub fn allocate(device: Arc<Device>, count: u32, export: bool) -> Result<Arc<Queue>> {
        let granted = device.reqbufs(count)?;
        if granted == 0 {
            return Err(Error::new(
                "VIDIOC_REQBUFS",
                device.path(),
                nix::errno::Errno::ENOMEM,
            ));
        }
        let mut buffers = Vec::new();
        for index in 0..granted {
            let planes = device.querybuf(index)?;
            let maps = planes
                .planes
                .iter()
                .map(|&(offset, len)| Mapping::new(&device, offset, len))
                .collect::<Result<Vec<_>>>()?;
            buffers.push(maps);
        }
        let mut exports = Vec::new();
        if export {
            for (index, maps) in (0u32..).zip(&buffers) {
                let fds = (0u32..)
                    .zip(maps)
                    .map(|(plane, _)| device.expbuf(index, plane))
                    .collect::<Result<Vec<_>>>()?;
                exports.push(fds);
            }
        }
        Ok(Arc::new(Queue {
            device,
            buffers,
            exports,
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

    /// Whether the buffers were exported as dmabufs at allocation.
    pub fn is_exported(&self) -> bool {
        !self.exports.is_empty()
    }

    /// How many buffers the driver holds right now (can fill).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Queues every buffer and starts streaming.
    pub fn start(&self) -> Result<()> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for (index, _) in (0u32..).zip(&self.buffers) {
            self.device.qbuf(index)?;
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
            && self.buffers.get(frame.index as usize).is_some()
        {
            count_down(&self.queued);
        }
        Ok(frame)
    }

    /// Gives a dequeued buffer straight back to the driver (after copying it, or dropping it).
    pub fn requeue(&self, index: u32) -> Result<()> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if !*live {
            return Ok(());
        }
        // Counted before the QBUF: once queued, another thread may dequeue it at once.
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.device
            .qbuf(index)
            .inspect_err(|_| count_down(&self.queued))
    }

    /// The bytes of a dequeued frame's plane, for a copy. The caller must hold the buffer
    /// (dequeued and not yet re-queued).
    pub fn frame_plane(&self, frame: &Dequeued, plane: usize) -> &[u8] {
        let Some((map, range)) = frame_bytes(&self.buffers, frame, plane) else {
            return &[];
        };
        // SAFETY: `range` lies within the mapping, which lives as long as `self`. The buffer
        // is dequeued, so the driver does not write it while this slice lives.
        unsafe { std::slice::from_raw_parts(map.ptr_at(&range).as_ptr(), range.len()) }
    }

    /// Hands a dequeued buffer out as a frame, one `Plane` per memory plane; dropping the last
    /// of them re-queues it. An iterator rather than a collection: one allocation less per frame.
    pub fn lend(self: &Arc<Self>, frame: Dequeued) -> impl Iterator<Item = Plane> + use<> {
        let n_planes = frame
            .n_planes
            .min(self.buffers.get(frame.index as usize).map_or(0, Vec::len));
        let lent = Lent {
            queue: Arc::clone(self),
            frame,
        };
        // A frame of one plane (most formats) is held by that plane alone, with no shared count
        // to allocate. With no plane at all, `lent` goes with the iterator: re-queued at once.
        let mut pending = Some(if n_planes > 1 {
            Holder::Shared(Arc::new(lent))
        } else {
            Holder::Sole(lent)
        });
        (0..n_planes).map(move |plane| {
            let holder = match &pending {
                Some(Holder::Shared(lent)) => Holder::Shared(Arc::clone(lent)),
                _ => pending.take().expect("one plane, lent once"),
            };
            let (ptr, range) = match frame_bytes(&holder.queue.buffers, &frame, plane) {
                Some((map, range)) => (map.ptr_at(&range), range),
                None => (NonNull::dangling(), 0..0),
            };
            Plane {
                index: plane,
                ptr,
                len: range.len(),
                offset: range.start,
                lent: holder,
            }
        })
    }

    /// Whether `ptr` lies inside one of this queue's mappings (for zero-copy checks).
    pub fn contains(&self, ptr: *const u8) -> bool {
        self.buffers.iter().flatten().any(|m| {
            (ptr as usize)
                .checked_sub(m.ptr.as_ptr() as usize)
                .is_some_and(|offset| offset < m.len)
        })
    }
}

/// A dequeued frame's plane: its mapping, and where the frame lies in it.
fn frame_bytes<'a>(
    buffers: &'a [Vec<Mapping>],
    frame: &Dequeued,
    plane: usize,
) -> Option<(&'a Mapping, Range<usize>)> {
    let map = buffers.get(frame.index as usize)?.get(plane)?;
    let &(bytesused, data_offset) = frame.planes.get(plane)?;
    Some((map, frame_range(bytesused, data_offset, map.len)))
}

/// The bytes of a plane's mapping of `len` bytes that hold the frame, as offsets:
/// `data_offset..bytesused` (V4L2 counts the offset within `bytesused`), where a `bytesused` of 0
/// (a driver that leaves it unset) means the whole mapping. Both ends are clamped to the mapping,
/// so a confused driver cannot make us read past it.
fn frame_range(bytesused: u32, data_offset: u32, len: usize) -> Range<usize> {
    let end = match usize::try_from(bytesused) {
        Ok(0) => len,
        Ok(used) => used.min(len),
        Err(_) => len,
    };
    let start = usize::try_from(data_offset).map_or(end, |offset| offset.min(end));
    start..end
}

/// Lowers a count by one, stopping at 0: a count that races with `stop` never wraps.
fn count_down(count: &AtomicUsize) {
    let _ = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        Some(n.saturating_sub(1))
    });
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

/// How a plane holds its frame: alone, or with the frame's other planes.
enum Holder {
    Sole(Lent),
    Shared(Arc<Lent>),
}

impl std::ops::Deref for Holder {
    type Target = Lent;

    fn deref(&self) -> &Lent {
        match self {
            Holder::Sole(lent) => lent,
            Holder::Shared(lent) => lent,
        }
    }
}

/// One plane of a lent frame: the bytes the driver wrote, inside the device mapping.
pub struct Plane {
    lent: Holder,
    /// Which memory plane of the buffer.
    index: usize,
    /// Derived from the mapping's own pointer (`Mapping::ptr_at`), so `as_mut` may write.
    ptr: NonNull<u8>,
    len: usize,
    /// Where `ptr` lies in the plane's buffer (the driver's data_offset).
    offset: usize,
}

/// One plane of a lent frame as a dmabuf, with a descriptor of its own.
#[derive(Debug)]
pub struct PlaneDmaBuf {
    pub fd: DmaBufFd,
    /// Bytes in the whole dmabuf: the plane's buffer length.
    pub size: usize,
    /// Where the frame's bytes start in it (the driver's data_offset).
    pub offset: usize,
    /// How many bytes of the frame follow `offset` (what the driver filled).
    pub len: usize,
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

    /// This plane as a dmabuf, through a new descriptor that the caller owns (so the dmabuf
    /// stays valid after this `Plane`, the frame and the queue are gone); `None` when the queue
    /// was not exported. Fails only when the process is out of descriptors.
    pub fn dmabuf(&self) -> Result<Option<PlaneDmaBuf>> {
        let queue = &self.lent.queue;
        let index = self.lent.frame.index as usize;
        let Some(fd) = queue.exports.get(index).and_then(|fds| fds.get(self.index)) else {
            return Ok(None);
        };
        let fd = fd
            .try_clone()
            .map_err(|errno| Error::new("dup", queue.device.path(), errno))?;
        Ok(Some(PlaneDmaBuf {
            fd,
            size: queue.buffers[index][self.index].len,
            offset: self.offset,
            len: self.len,
        }))
    }
}

impl AsRef<[u8]> for Plane {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` lies within a live mapping (see `Send`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl AsMut<[u8]> for Plane {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_ref`; each `Plane` covers its own plane's bytes, disjoint from
        // every other `Plane`, and `&mut self` makes this the only access to them.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_data_offset_to_bytesused() {
        assert_eq!(frame_range(100, 0, 4096), 0..100);
        assert_eq!(frame_range(100, 16, 4096), 16..100);
        assert_eq!(frame_range(4096, 0, 4096), 0..4096);
    }

    #[test]
    fn bytesused_zero_means_the_whole_mapping() {
        assert_eq!(frame_range(0, 0, 4096), 0..4096);
        assert_eq!(frame_range(0, 16, 4096), 16..4096);
    }

    #[test]
    fn a_confused_driver_cannot_reach_past_the_mapping() {
        // bytesused beyond the buffer
        assert_eq!(frame_range(4097, 0, 4096), 0..4096);
        assert_eq!(frame_range(u32::MAX, 0, 4096), 0..4096);
        // data_offset beyond bytesused, or beyond the buffer: an empty frame at the end
        assert_eq!(frame_range(100, 200, 4096), 100..100);
        assert_eq!(frame_range(0, 5000, 4096), 4096..4096);
        assert_eq!(frame_range(u32::MAX, u32::MAX, 4096), 4096..4096);
        assert_eq!(frame_range(0, 0, 0), 0..0);
    }

    #[test]
    fn a_count_going_down_stops_at_zero() {
        let count = AtomicUsize::new(1);
        count_down(&count);
        assert_eq!(count.load(Ordering::Relaxed), 0);
        count_down(&count);
        assert_eq!(count.load(Ordering::Relaxed), 0);
    }
}
