//! The capture buffer queue: driver buffers mapped once into this process, queued to the driver,
//! and lent out one frame at a time.
//!
//! Ownership: a dequeued buffer is a move-only token, `DqBuffer` (after v4l2r's): whoever holds
//! it may read its planes; `Queue::requeue` consumes it, `Queue::lend` turns it into `Plane`s
//! that downstream may write, and dropping it (or the last of its planes), from whichever
//! thread, gives the buffer back to the driver (`VIDIOC_QBUF`), unless that stream has ended
//! meanwhile. No public function takes a buffer index, so safe code cannot queue a buffer that a
//! token or a plane still refers to. A token holds the `Queue` it came from through an `Arc`, and
//! the mappings live in the `Queue`, so they stay valid until the last token is gone, whatever
//! the element does.
//!
//! A queue may also export its buffers as dmabufs (`VIDIOC_EXPBUF`), once, at allocation. A lent
//! plane then hands out a duplicate of its dmabuf fd, which its consumer owns: the dmabuf stays
//! valid for as long as that fd is open, whatever happens to the queue or the frame.
//!
//! Or its buffers are memory of this process that the driver fills by address
//! (`V4L2_MEMORY_USERPTR`, `userptr.rs`): anonymous mappings, owned and lent just the same.

use super::buffer_ioctls::{Dequeued, DmaBufFd};
use super::device::Device;
use super::error::{Error, Result};
use super::mapping::Memory;
use super::mapping::{Mapping, frame_range};
use nix::errno::Errno;
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counters the element reports; atomics so the drop hook can bump them without a lock.
#[derive(Default)]
pub struct QueueCounters {
    /// `VIDIOC_QBUF` of a dequeued buffer that the driver refused, from `requeue` or from a drop
    /// hook. Such a buffer is lost to the stream (the driver fills one buffer fewer).
    pub requeue_failures: AtomicU64,
    /// Buffers `VIDIOC_DQBUF` named by an index the queue does not know: skipped (the next
    /// frame's sequence shows them lost).
    pub unknown_buffers: AtomicU64,
    /// Buffers `VIDIOC_DQBUF` handed over again while the queue still held them: see `Reread`.
    pub rereads: AtomicU64,
}

/// Where a queue is in its one life: allocated, streaming, ended. A queue never streams twice:
/// its buffers are freed when it stops, and a token of the ended stream must never reach another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Allocated,
    Streaming,
    Ended,
}

pub struct Queue {
    device: Arc<Device>,
    /// Per driver buffer, one mapping per memory plane.
    buffers: Vec<Vec<Mapping>>,
    /// Per driver buffer, one dmabuf per memory plane, when the queue was exported; else empty.
    /// The mappings stay too: copies and `DqBuffer::plane` read through them.
    exports: Vec<Vec<DmaBufFd>>,
    /// Whose memory the buffers are: the driver's, mapped (`mmap`), or this process's, handed
    /// over by address (`userptr`, see `userptr.rs`).
    memory: Memory,
    /// Guarded by a mutex (not an atomic) so that `stop` and a late `QBUF` from a drop hook
    /// cannot interleave: once `stop` holds it, no buffer can be queued into the ended stream.
    phase: Mutex<Phase>,
    /// Per driver buffer: whether a `DqBuffer` for it exists. The kernel never hands out a queued
    /// buffer twice; this makes sure of it, so that two tokens (and two writable `Plane`s) of
    /// one buffer cannot exist even with a broken driver.
    held: Vec<AtomicBool>,
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
            return Err(Error::new("VIDIOC_REQBUFS", device.path(), Errno::ENOMEM));
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
        Ok(Queue::from_parts(device, buffers, exports, Memory::Mmap))
    }

    /// A queue of buffers already granted by `VIDIOC_REQBUFS` for `memory`.
    pub(super) fn from_parts(
        device: Arc<Device>,
        buffers: Vec<Vec<Mapping>>,
        exports: Vec<Vec<DmaBufFd>>,
        memory: Memory,
    ) -> Arc<Queue> {
        Arc::new(Queue {
            device,
            held: buffers.iter().map(|_| AtomicBool::new(false)).collect(),
            buffers,
            exports,
            memory,
            phase: Mutex::new(Phase::Allocated),
            queued: AtomicUsize::new(0),
            counters: QueueCounters::default(),
        })
    }

    /// Whether the buffers are this process's memory (`io-mode=userptr`).
    pub fn is_userptr(&self) -> bool {
        self.memory == Memory::UserPtr
    }

    /// `VIDIOC_QBUF` of buffer `index`, by mmap index or by the address of its memory.
    fn qbuf(&self, index: u32) -> Result<()> {
        match self.memory {
            Memory::Mmap => self.device.qbuf(index),
            Memory::UserPtr => {
                let planes = usize::try_from(index)
                    .ok()
                    .and_then(|i| self.buffers.get(i))
                    .map_or(&[][..], Vec::as_slice);
                self.device.qbuf_userptr(index, planes)
            }
            // Imported dmabufs are `ImportQueue`'s, never a `Queue`'s.
            Memory::DmaBuf => Err(Error::new("VIDIOC_QBUF", self.device.path(), Errno::EINVAL)),
        }
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

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        // A panic elsewhere while holding it leaves a plain enum: still meaningful.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues every buffer and starts streaming. Only once: a queue that has stopped has freed
    /// its buffers (the error is the kernel's for that, `EINVAL` from `VIDIOC_QBUF`).
    pub fn start(&self) -> Result<()> {
        let mut phase = self.phase();
        if *phase != Phase::Allocated {
            return Err(Error::new("VIDIOC_QBUF", self.device.path(), Errno::EINVAL));
        }
        for (index, _) in (0u32..).zip(&self.buffers) {
            self.qbuf(index)?;
            self.queued.fetch_add(1, Ordering::AcqRel);
        }
        self.device.streamon()?;
        *phase = Phase::Streaming;
        Ok(())
    }

    /// Ends the stream: `VIDIOC_STREAMOFF` and `VIDIOC_REQBUFS(0)`. Frames still lent out stay
    /// readable (vb2 keeps mapped memory alive, "orphaned", until it is unmapped) and are not
    /// re-queued when dropped. Never waits for them.
    pub fn stop(&self) -> Result<()> {
        let mut phase = self.phase();
        let was = std::mem::replace(&mut *phase, Phase::Ended);
        self.queued.store(0, Ordering::Release);
        if was == Phase::Streaming {
            self.device.streamoff()?;
        }
        self.device.reqbufs_for(0, self.memory)?;
        Ok(())
    }

    /// Waits for nothing: `Ok(None)` when no buffer is ready, or when the driver named a buffer
    /// the queue does not know (counted in `QueueCounters::unknown_buffers`). A buffer the
    /// queue still holds comes as a `Taken::Reread`, never as a second token: two tokens would
    /// let two holders write it.
    pub fn dequeue(self: &Arc<Self>) -> Result<Option<Taken>> {
        let Some(mut info) = self.device.dqbuf()? else {
            return Ok(None);
        };
        let known = usize::try_from(info.index)
            .ok()
            .and_then(|index| Some((self.buffers.get(index)?, self.held.get(index)?)));
        let Some((maps, held)) = known else {
            self.counters
                .unknown_buffers
                .fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        info.n_planes = info.n_planes.min(maps.len());
        if held.swap(true, Ordering::AcqRel) {
            self.counters.rereads.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(Taken::Reread(Reread {
                queue: Arc::clone(self),
                info,
            })));
        }
        count_down(&self.queued);
        Ok(Some(Taken::Frame(DqBuffer {
            queue: Arc::clone(self),
            info,
            given_back: false,
        })))
    }

    /// Gives a dequeued buffer straight back to the driver (after copying it, or dropping it).
    /// A refused `VIDIOC_QBUF` is counted in `counters` and returned. Once the stream has ended
    /// this does nothing. A token of another queue is refused (`EXDEV`) and goes back to its
    /// own queue as it drops.
    pub fn requeue(&self, buf: DqBuffer) -> Result<()> {
        if !std::ptr::eq(self, Arc::as_ptr(&buf.queue)) {
            return Err(Error::new("VIDIOC_QBUF", self.device.path(), Errno::EXDEV));
        }
        buf.requeue()
    }

    /// The bytes of a dequeued frame's plane, for a copy: the same as `buf.plane(plane)`.
    pub fn frame_plane<'a>(&self, buf: &'a DqBuffer, plane: usize) -> &'a [u8] {
        buf.plane(plane)
    }

    /// Hands a dequeued buffer out as a frame, one `Plane` per memory plane; dropping the last
    /// of them re-queues it. An iterator rather than a collection: one allocation less per frame.
    /// The planes are those of `buf`'s own queue.
    pub fn lend(&self, buf: DqBuffer) -> impl Iterator<Item = Plane> + use<> {
        buf.lend()
    }

    /// `VIDIOC_QBUF` for the buffer of a token being given back, while the stream runs; a
    /// failure is counted. Never blocks beyond the short `phase` lock, never panics.
    fn give_back(&self, index: u32) -> Result<()> {
        let phase = self.phase();
        if *phase != Phase::Streaming {
            return Ok(());
        }
        // Cleared before the QBUF: once queued, another thread may dequeue it at once.
        if let Some(held) = usize::try_from(index).ok().and_then(|i| self.held.get(i)) {
            held.store(false, Ordering::Release);
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.qbuf(index).inspect_err(|_| {
            count_down(&self.queued);
            self.counters
                .requeue_failures
                .fetch_add(1, Ordering::Relaxed);
        })
    }

    /// The mappings of buffer `index` (empty for an index the queue does not know).
    pub(super) fn mappings(&self, index: u32) -> &[Mapping] {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.buffers.get(i))
            .map_or(&[], Vec::as_slice)
    }

    /// The dmabuf exports of buffer `index`, when the queue was exported.
    pub(super) fn exported(&self, index: u32) -> Option<&[DmaBufFd]> {
        let i = usize::try_from(index).ok()?;
        self.exports.get(i).map(Vec::as_slice)
    }

    /// Whether `ptr` lies inside one of this queue's mappings (for zero-copy checks).
    pub fn contains(&self, ptr: *const u8) -> bool {
        self.buffers.iter().flatten().any(|m| m.contains(ptr))
    }
}

/// What one `VIDIOC_DQBUF` gave.
#[derive(Debug)]
pub enum Taken {
    /// A buffer the driver filled and gave up: the queue's to lend or give back.
    Frame(DqBuffer),
    /// A buffer the queue still holds, handed over again: see `Reread`.
    Reread(Reread),
}

impl Taken {
    /// The driver's metadata for the buffer.
    pub fn info(&self) -> &Dequeued {
        match self {
            Taken::Frame(frame) => &frame.info,
            Taken::Reread(reread) => &reread.info,
        }
    }

    /// Gives the buffer back to the driver when it is this queue's to give; a reread's buffer
    /// goes back with its holder instead.
    pub fn requeue(self) -> Result<()> {
        match self {
            Taken::Frame(frame) => frame.requeue(),
            Taken::Reread(_) => Ok(()),
        }
    }
}

impl std::ops::Deref for Taken {
    type Target = Dequeued;

    fn deref(&self) -> &Dequeued {
        self.info()
    }
}

impl std::borrow::Borrow<Dequeued> for Taken {
    fn borrow(&self) -> &Dequeued {
        self.info()
    }
}

/// A buffer the driver handed over again while a token for it (or the frame it was lent as)
/// still exists: v4l2loopback does this, as it hands its reader the buffer its writer filled
/// last, whether or not the reader gave it back; its writer overwrites buffers whoever holds
/// them. A reread can only be read for a copy (`planes`), never lent, and goes back to nobody:
/// the buffer returns to the driver when its holder lets go.
pub struct Reread {
    queue: Arc<Queue>,
    /// `n_planes` no more than the buffer's mappings, `index` one of the queue's buffers: both
    /// checked by `Queue::dequeue`.
    info: Dequeued,
}

impl Reread {
    /// The driver's metadata for this buffer.
    pub fn info(&self) -> &Dequeued {
        &self.info
    }

    /// The frame's planes (`data_offset..bytesused` of each), readable only, to copy from.
    pub fn planes(&self) -> impl Iterator<Item = ReadPlane> + use<> {
        let queue = Arc::clone(&self.queue);
        let info = self.info;
        (0..info.n_planes).map(move |plane| {
            let (ptr, len) = match frame_bytes(&queue.buffers, &info, plane) {
                Some((map, range)) => (map.ptr_at(&range), range.len()),
                None => (NonNull::dangling(), 0),
            };
            ReadPlane {
                _queue: Arc::clone(&queue),
                ptr,
                len,
            }
        })
    }
}

impl std::fmt::Debug for Reread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reread")
            .field("info", &self.info)
            .field("device", &self.queue.device.path())
            .finish()
    }
}

/// One plane of a `Reread`: bytes of a mapping to copy from, kept alive by the queue.
pub struct ReadPlane {
    _queue: Arc<Queue>,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the pointer refers into a mapping kept alive by `_queue`; the plane only reads.
unsafe impl Send for ReadPlane {}

impl AsRef<[u8]> for ReadPlane {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` lies within a live mapping (`_queue` keeps it). Unlike a
        // token's planes these bytes may change while read: the driver that handed the buffer
        // over again writes it whoever holds it, and so may the holder of the frame lent from
        // it. That is why a reread is only ever copied, by GStreamer's C code through the
        // pointer of a `gst::Memory::from_slice` made from this plane, as bytes from any
        // mapping a device writes are, and no Rust code of this crate reads through the slice.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

/// A buffer dequeued from a `Queue`, out of the driver's hands for as long as this token (or
/// the `Plane`s it was lent as) exists. Move-only: `Queue::requeue` and `Queue::lend` consume
/// it. Dropped without either (a frame abandoned on an error path), it goes back to the driver
/// by itself. The driver's metadata (`sequence`, `flags`, `timestamp`, per-plane `bytesused`,
/// ...) reads through it as a `Dequeued`.
pub struct DqBuffer {
    queue: Arc<Queue>,
    /// `n_planes` no more than the buffer's mappings, `index` one of the queue's buffers: both
    /// checked by `Queue::dequeue`.
    info: Dequeued,
    /// Set by `requeue`, so that the drop hook does not queue the buffer twice.
    given_back: bool,
}

impl DqBuffer {
    /// The driver's metadata for this buffer.
    pub fn info(&self) -> &Dequeued {
        &self.info
    }

    /// Plane `plane`'s mapping and where the frame lies in it; `None` past the frame's planes.
    fn frame_bytes(&self, plane: usize) -> Option<(&Mapping, Range<usize>)> {
        if plane >= self.info.n_planes {
            return None;
        }
        frame_bytes(&self.queue.buffers, &self.info, plane)
    }

    /// The queue this buffer came from.
    pub(super) fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Where the frame lies in plane `plane`'s mapping (`data_offset..bytesused`); `None` past
    /// the frame's planes.
    pub fn plane_range(&self, plane: usize) -> Option<Range<usize>> {
        self.frame_bytes(plane).map(|(_, range)| range)
    }

    /// The bytes the driver wrote in plane `plane` (empty past the frame's planes).
    pub fn plane(&self, plane: usize) -> &[u8] {
        let Some((map, range)) = self.frame_bytes(plane) else {
            return &[];
        };
        // SAFETY: `range` lies within the mapping, kept alive by `self.queue` for as long as
        // `self` is borrowed. Nothing writes the bytes meanwhile: the driver does not (the
        // buffer is dequeued, and only this token's drop or consumption queues it again), and no
        // `Plane` of this buffer exists (lending consumes the token).
        unsafe { std::slice::from_raw_parts(map.ptr_at(&range).as_ptr(), range.len()) }
    }

    /// Gives the buffer back to the driver; see `Queue::requeue`.
    pub fn requeue(mut self) -> Result<()> {
        self.given_back = true;
        self.queue.give_back(self.info.index)
    }

    /// Lends the buffer as `Plane`s; see `Queue::lend`.
    pub fn lend(self) -> impl Iterator<Item = Plane> + use<> {
        let n_planes = self.info.n_planes;
        // A frame of one plane (most formats) is held by that plane alone, with no shared count
        // to allocate. With no plane at all, the token goes with the iterator: re-queued at once.
        let mut pending = Some(if n_planes > 1 {
            Holder::Shared(Arc::new(self))
        } else {
            Holder::Sole(self)
        });
        (0..n_planes).map(move |plane| {
            let holder = match &pending {
                Some(Holder::Shared(buf)) => Holder::Shared(Arc::clone(buf)),
                _ => pending.take().expect("one plane, lent once"),
            };
            let (ptr, range) = match holder.frame_bytes(plane) {
                Some((map, range)) => (map.ptr_at(&range), range),
                None => (NonNull::dangling(), 0..0),
            };
            Plane {
                index: plane,
                ptr,
                len: range.len(),
                offset: range.start,
                buf: holder,
            }
        })
    }
}

impl std::ops::Deref for DqBuffer {
    type Target = Dequeued;

    fn deref(&self) -> &Dequeued {
        &self.info
    }
}

/// A token reads as what `VIDIOC_DQBUF` said of its buffer, as a plain `Dequeued` does, so code
/// that only reads that takes either.
impl std::borrow::Borrow<Dequeued> for DqBuffer {
    fn borrow(&self) -> &Dequeued {
        &self.info
    }
}

impl std::fmt::Debug for DqBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DqBuffer")
            .field("info", &self.info)
            .field("device", &self.queue.device.path())
            .finish()
    }
}

/// The re-queue hook, for a token dropped unused and for the last `Plane` of a lent frame:
/// never blocks beyond the queue's short lock, never panics, does nothing once that stream has
/// ended. A refusal is counted in the queue's counters.
impl Drop for DqBuffer {
    fn drop(&mut self) {
        if !self.given_back {
            let _ = self.queue.give_back(self.info.index);
        }
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
    Some((map, frame_range(bytesused, data_offset, map.len())))
}

/// Lowers a count by one, stopping at 0: a count that races with `stop` never wraps.
fn count_down(count: &AtomicUsize) {
    let _ = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        Some(n.saturating_sub(1))
    });
}

/// How a plane holds its buffer: alone, or with the frame's other planes.
enum Holder {
    Sole(DqBuffer),
    Shared(Arc<DqBuffer>),
}

impl std::ops::Deref for Holder {
    type Target = DqBuffer;

    fn deref(&self) -> &DqBuffer {
        match self {
            Holder::Sole(buf) => buf,
            Holder::Shared(buf) => buf,
        }
    }
}

/// One plane of a lent frame: the bytes the driver wrote, inside the device mapping.
pub struct Plane {
    /// Private: handing out the token would let safe code read (`DqBuffer::plane`) what this
    /// plane's owner may write.
    buf: Holder,
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

// SAFETY: the pointer refers into a mapping kept alive by `buf` (through its `Queue`); the
// buffer is out of the driver's hands until `buf` drops, so the bytes can be used from any
// thread.
unsafe impl Send for Plane {}

impl Plane {
    /// The driver's metadata for the frame this plane belongs to.
    pub fn frame(&self) -> &Dequeued {
        &self.buf.info
    }

    /// This plane as a dmabuf, through a new descriptor that the caller owns (so the dmabuf
    /// stays valid after this `Plane`, the frame and the queue are gone); `None` when the queue
    /// was not exported. Fails only when the process is out of descriptors.
    pub fn dmabuf(&self) -> Result<Option<PlaneDmaBuf>> {
        let queue = &self.buf.queue;
        let index = self.buf.info.index as usize;
        let Some(fd) = queue.exports.get(index).and_then(|fds| fds.get(self.index)) else {
            return Ok(None);
        };
        let Some(map) = queue
            .buffers
            .get(index)
            .and_then(|maps| maps.get(self.index))
        else {
            return Ok(None);
        };
        let fd = fd
            .try_clone()
            .map_err(|errno| Error::new("dup", queue.device.path(), errno))?;
        Ok(Some(PlaneDmaBuf {
            fd,
            size: map.len(),
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
        // SAFETY: as for `as_ref`, and `ptr` derives from the mapping's own pointer, not from a
        // shared reference. Nothing else reaches these bytes: the driver does not (the buffer is
        // queued again only when the token in `buf` drops, after every `Plane`), no second token
        // of the buffer exists (`Queue::held`), the token itself is out of reach (private, and
        // consumed by `lend`), every other `Plane` covers another memory plane (another mapping),
        // and `&mut self` makes this the only access through this one.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::sys::VIDEO_MAX_PLANES;
    use super::*;
    use std::time::Duration;

    pub(in crate::v4l2) const LEN: usize = 4096;

    /// A queue of `buffers` buffers of `planes` planes each over `/dev/null`, in `phase`: every
    /// `VIDIOC_QBUF` it makes fails, which the counters show.
    pub(in crate::v4l2) fn queue(buffers: usize, planes: usize, phase: Phase) -> Arc<Queue> {
        let buffers: Vec<Vec<Mapping>> = (0..buffers)
            .map(|_| {
                (0..planes)
                    .map(|_| Mapping::anonymous(LEN).unwrap())
                    .collect()
            })
            .collect();
        Arc::new(Queue {
            device: Arc::new(Device::null()),
            held: buffers.iter().map(|_| AtomicBool::new(false)).collect(),
            buffers,
            exports: Vec::new(),
            memory: Memory::Mmap,
            phase: Mutex::new(phase),
            queued: AtomicUsize::new(0),
            counters: QueueCounters::default(),
        })
    }

    /// What `Queue::dequeue` makes of a DQBUF of buffer `index`, without the ioctl.
    pub(in crate::v4l2) fn token(
        queue: &Arc<Queue>,
        index: u32,
        planes: &[(u32, u32)],
    ) -> DqBuffer {
        let mut info = Dequeued {
            index,
            flags: 0,
            field: 0,
            sequence: 7,
            timestamp: Duration::ZERO,
            n_planes: planes.len(),
            planes: [(0, 0); VIDEO_MAX_PLANES],
        };
        info.planes[..planes.len()].copy_from_slice(planes);
        assert!(!queue.held[index as usize].swap(true, Ordering::AcqRel));
        DqBuffer {
            queue: Arc::clone(queue),
            info,
            given_back: false,
        }
    }

    pub(in crate::v4l2) fn failures(queue: &Queue) -> u64 {
        queue.counters.requeue_failures.load(Ordering::Relaxed)
    }

    #[test]
    fn a_token_dropped_unused_goes_back_to_the_driver() {
        let q = queue(2, 1, Phase::Streaming);
        let buf = token(&q, 1, &[(100, 0)]);
        assert_eq!(buf.sequence, 7);
        drop(buf);
        // The QBUF was made (and /dev/null refused it, which is counted).
        assert_eq!(failures(&q), 1);
        assert!(!q.held[1].load(Ordering::Acquire));
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn requeue_returns_the_error_and_queues_once() {
        let q = queue(2, 1, Phase::Streaming);
        let err = q.requeue(token(&q, 0, &[(100, 0)])).unwrap_err();
        assert_eq!((err.call, err.errno), ("VIDIOC_QBUF", Errno::ENOTTY));
        // Once by `requeue`, not again by the drop hook.
        assert_eq!(failures(&q), 1);
    }

    #[test]
    fn nothing_is_queued_once_the_stream_has_ended() {
        let q = queue(3, 1, Phase::Streaming);
        let kept = token(&q, 0, &[(100, 0)]);
        let planes: Vec<Plane> = q.lend(token(&q, 1, &[(100, 0)])).collect();
        let explicit = token(&q, 2, &[(100, 0)]);
        let _ = q.stop();
        assert_eq!(*q.phase(), Phase::Ended);
        drop(kept);
        drop(planes);
        assert!(q.requeue(explicit).is_ok());
        assert_eq!(failures(&q), 0);
        assert!(q.start().is_err());
    }

    #[test]
    fn a_token_of_another_queue_is_refused_and_goes_home() {
        let (a, b) = (queue(1, 1, Phase::Streaming), queue(1, 1, Phase::Streaming));
        let err = b.requeue(token(&a, 0, &[(100, 0)])).unwrap_err();
        assert_eq!(err.errno, Errno::EXDEV);
        assert_eq!((failures(&a), failures(&b)), (1, 0));
    }

    #[test]
    fn planes_are_the_frames_bytes_and_writable() {
        let q = queue(1, 2, Phase::Streaming);
        let buf = token(&q, 0, &[(100, 16), (0, 0)]);
        assert_eq!(buf.plane(0).len(), 84);
        assert_eq!(buf.plane(1).len(), LEN);
        assert!(buf.plane(2).is_empty());
        let map = q.buffers[0][0].base();
        let mut planes: Vec<Plane> = q.lend(buf).collect();
        assert_eq!(planes.len(), 2);
        assert_eq!(planes[0].as_ref().as_ptr(), map.wrapping_add(16));
        assert_eq!((planes[0].offset, planes[0].len), (16, 84));
        assert_eq!(planes[0].frame().sequence, 7);
        planes[0].as_mut()[0] = 0xab;
        planes[1].as_mut()[LEN - 1] = 0xcd;
        assert_eq!(planes[0].as_ref()[0], 0xab);
        assert!(q.contains(map.wrapping_add(16)));
        assert!(!q.contains(map.wrapping_add(2 * LEN)));
        // The buffer goes back once, with the last plane.
        drop(planes.pop());
        assert_eq!(failures(&q), 0);
        drop(planes);
        assert_eq!(failures(&q), 1);
    }

    #[test]
    fn a_reread_reads_the_held_buffer_and_queues_nothing() {
        let q = queue(1, 1, Phase::Streaming);
        let mut planes: Vec<Plane> = q.lend(token(&q, 0, &[(100, 16)])).collect();
        planes[0].as_mut()[..4].copy_from_slice(b"jpeg");
        let info = Dequeued {
            index: 0,
            flags: 0,
            field: 0,
            sequence: 8,
            timestamp: Duration::ZERO,
            n_planes: 1,
            planes: [(100, 16); VIDEO_MAX_PLANES],
        };
        let reread = Taken::Reread(Reread {
            queue: Arc::clone(&q),
            info,
        });
        assert_eq!(reread.sequence, 8);
        let Taken::Reread(inner) = &reread else {
            unreachable!()
        };
        let read: Vec<ReadPlane> = inner.planes().collect();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].as_ref().len(), 84);
        assert_eq!(&read[0].as_ref()[..4], b"jpeg");
        // Neither giving it back nor dropping its planes queues the buffer: its holder does.
        assert!(reread.requeue().is_ok());
        drop(read);
        assert_eq!(failures(&q), 0);
        assert!(q.held[0].load(Ordering::Acquire));
        drop(planes);
        assert_eq!(failures(&q), 1);
    }

    #[test]
    fn a_frame_without_planes_goes_back_at_once() {
        let q = queue(1, 1, Phase::Streaming);
        assert_eq!(q.lend(token(&q, 0, &[])).count(), 0);
        assert_eq!(failures(&q), 1);
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
