//! One driver buffer lent out frame after frame through wrappers made once: a buffer pool keeps
//! a `Lease` per driver buffer, wraps its planes once (`Lease::planes`, or `Lease::dmabufs` for
//! an exported queue), and per frame only moves the buffer's token in (`hold`) and, when the
//! frame comes back, out again to the driver (`give_back`). Nothing here allocates per frame.
//!
//! Whoever holds an `Arc<Lease>` (the pool, each `LeasedPlane`) keeps the token it holds: when
//! the last of them goes, the token drops and the buffer goes back to the driver by itself,
//! unless that stream has ended. So a pool that cannot reuse a frame (a copy of it still reads
//! its memory) drops its own handle and the buffer is re-queued once the copy is gone.

use super::buffer_ioctls::DmaBufFd;
use super::error::{Error, Result};
use super::queue::{DqBuffer, Queue};
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

/// One driver buffer of a queue, and its token while it is out of the driver's hands.
pub struct Lease {
    queue: Arc<Queue>,
    index: u32,
    /// `Some` from `hold` to `give_back`: the buffer is dequeued, and its bytes are this
    /// lease's holder's to read and write.
    token: Mutex<Option<DqBuffer>>,
}

impl Lease {
    /// A lease on the buffer of `buf`, holding it.
    pub fn new(buf: DqBuffer) -> Arc<Lease> {
        Arc::new(Lease {
            queue: Arc::clone(buf.queue()),
            index: buf.index,
            token: Mutex::new(Some(buf)),
        })
    }

    /// Which driver buffer this is.
    pub fn index(&self) -> u32 {
        self.index
    }

    fn token(&self) -> MutexGuard<'_, Option<DqBuffer>> {
        // A panic elsewhere while holding it leaves a plain Option: still meaningful.
        self.token.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a new token of this lease's buffer (its next frame). Hands it back when it is of
    /// another buffer or queue, or when the lease still holds one (the kernel never hands out a
    /// queued buffer twice, so that would be a bug); dropping it then re-queues it.
    pub fn hold(&self, buf: DqBuffer) -> std::result::Result<(), DqBuffer> {
        if buf.index != self.index || !Arc::ptr_eq(buf.queue(), &self.queue) {
            return Err(buf);
        }
        let mut token = self.token();
        if token.is_some() {
            return Err(buf);
        }
        *token = Some(buf);
        Ok(())
    }

    /// Gives the buffer back to the driver (`VIDIOC_QBUF`, through the token's drop hook: a
    /// refusal is counted in the queue's counters), if the lease holds it. Does nothing once the
    /// stream has ended. Never blocks beyond two short locks, never panics.
    pub fn give_back(&self) {
        let token = self.token().take();
        drop(token);
    }

    /// Whether the lease holds its buffer's token.
    pub fn is_held(&self) -> bool {
        self.token().is_some()
    }

    /// Each memory plane of the buffer, whole, to be wrapped once and reused for every frame
    /// of it (see `LeasedPlane`).
    pub fn planes(self: &Arc<Self>) -> impl Iterator<Item = LeasedPlane> + use<> {
        let lease = Arc::clone(self);
        let n = self.queue.mappings(self.index).len();
        (0..n).map(move |plane| {
            let map = &lease.queue.mappings(lease.index)[plane];
            LeasedPlane {
                ptr: map.ptr_at(&(0..map.len())),
                len: map.len(),
                lease: Arc::clone(&lease),
            }
        })
    }

    /// Each memory plane of the buffer as a dmabuf: a new descriptor of its export, which the
    /// caller owns, and the plane's length. Made once per lease, not per frame. `Ok(None)` when
    /// the queue was not exported.
    pub fn dmabufs(&self) -> Result<Option<impl Iterator<Item = Result<(DmaBufFd, usize)>> + '_>> {
        let Some(fds) = self.queue.exported(self.index) else {
            return Ok(None);
        };
        let maps = self.queue.mappings(self.index);
        Ok(Some(fds.iter().zip(maps).map(|(fd, map)| {
            fd.try_clone()
                .map(|fd| (fd, map.len()))
                .map_err(|errno| Error::new("dup", self.queue.device().path(), errno))
        })))
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("index", &self.index)
            .field("device", &self.queue.device().path())
            .finish()
    }
}

/// One memory plane of a leased buffer, the whole mapping, for a `GstMemory` to wrap once.
/// Its bytes are read through `AsRef`/`AsMut` only while the lease holds the buffer (else
/// they are empty). A wrapper that keeps the pointer (as GStreamer's memory does) hands the
/// memory out only with the buffer's token, and gives the buffer back only once no one else
/// uses the memory as far as it can tell; one it cannot see (GStreamer: a bare memory
/// reference) may then read bytes the driver is refilling, which is a stale picture, never
/// freed memory: the mapping stays valid for as long as this value exists, whatever happens to
/// the queue.
pub struct LeasedPlane {
    lease: Arc<Lease>,
    /// The mapping's own pointer (`Mapping::ptr_at`), so `as_mut` may write.
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the pointer refers into a mapping kept alive by `lease` (through its `Queue`); who may
// touch the bytes is the lease's holder while the lease holds the buffer, from any thread.
unsafe impl Send for LeasedPlane {}

impl LeasedPlane {
    /// The bytes, or none when the driver owns the buffer.
    fn range(&self) -> usize {
        if self.lease.is_held() { self.len } else { 0 }
    }
}

impl AsRef<[u8]> for LeasedPlane {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is one whole live mapping (see `Send`), and `range` gives its
        // bytes only while the lease holds the buffer: out of the driver's hands.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.range()) }
    }
}

impl AsMut<[u8]> for LeasedPlane {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_ref`; `ptr` derives from the mapping's own pointer, not from a
        // shared reference, and every other `LeasedPlane` of the lease covers another mapping.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.range()) }
    }
}

/// The most memory planes a V4L2 buffer has.
pub const MAX_PLANES: usize = super::sys::VIDEO_MAX_PLANES;

/// Where a dequeued frame lies in each mapping of its buffer (`data_offset..bytesused`),
/// `0..0` past its planes: what each reused memory's window is set to for this frame.
pub fn frame_windows(buf: &DqBuffer) -> [Range<usize>; MAX_PLANES] {
    std::array::from_fn(|plane| buf.plane_range(plane).unwrap_or(0..0))
}

#[cfg(test)]
mod tests {
    use super::super::queue::Phase;
    use super::super::queue::tests::{LEN, failures, queue, token};
    use super::*;

    #[test]
    fn a_lease_gives_its_buffer_back_once_per_frame() {
        let q = queue(2, 1, Phase::Streaming);
        let lease = Lease::new(token(&q, 1, &[(100, 0)]));
        assert!(lease.is_held());
        lease.give_back();
        // The QBUF was made (and /dev/null refused it, which is counted), once.
        assert_eq!(failures(&q), 1);
        assert!(!lease.is_held());
        lease.give_back();
        assert_eq!(failures(&q), 1);
        // The next frame of the same buffer goes in; one of another buffer does not.
        assert!(lease.hold(token(&q, 1, &[(100, 0)])).is_ok());
        let other = lease.hold(token(&q, 0, &[(100, 0)])).unwrap_err();
        assert_eq!(other.index, 0);
        drop(other);
        assert_eq!(failures(&q), 2);
        // Dropped while holding a frame: that frame goes back too.
        drop(lease);
        assert_eq!(failures(&q), 3);
    }

    #[test]
    fn a_frame_of_another_queue_is_not_taken() {
        let (a, b) = (queue(1, 1, Phase::Streaming), queue(1, 1, Phase::Streaming));
        let lease = Lease::new(token(&a, 0, &[(100, 0)]));
        lease.give_back();
        assert!(lease.hold(token(&b, 0, &[(100, 0)])).is_err());
        assert!(!lease.is_held());
    }

    #[test]
    fn leased_planes_are_whole_mappings_readable_only_while_held() {
        let q = queue(1, 2, Phase::Streaming);
        let lease = Lease::new(token(&q, 0, &[(100, 16), (50, 0)]));
        let mut planes: Vec<LeasedPlane> = lease.planes().collect();
        assert_eq!(planes.len(), 2);
        assert_eq!(planes[0].as_ref().len(), LEN);
        planes[1].as_mut()[LEN - 1] = 0xcd;
        assert_eq!(planes[1].as_ref()[LEN - 1], 0xcd);
        lease.give_back();
        assert!(planes[0].as_ref().is_empty());
        assert!(planes[1].as_mut().is_empty());
        // Planes keep the lease: the last of them to go gives back a frame held meanwhile.
        assert!(lease.hold(token(&q, 0, &[(100, 0)])).is_ok());
        drop(lease);
        assert_eq!(failures(&q), 1);
        drop(planes);
        assert_eq!(failures(&q), 2);
    }

    #[test]
    fn windows_are_the_frames_bytes_of_each_plane() {
        let q = queue(1, 2, Phase::Streaming);
        let buf = token(&q, 0, &[(100, 16), (0, 0)]);
        let windows = frame_windows(&buf);
        assert_eq!(windows[0], 16..100);
        assert_eq!(windows[1], 0..LEN);
        assert_eq!(windows[2], 0..0);
    }

    #[test]
    fn an_unexported_queue_has_no_dmabufs() {
        let q = queue(1, 1, Phase::Streaming);
        let lease = Lease::new(token(&q, 0, &[(100, 0)]));
        assert!(lease.dmabufs().unwrap().is_none());
    }
}
