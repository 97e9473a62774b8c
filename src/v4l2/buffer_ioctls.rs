//! The buffer ioctls of a capture node (`VIDIOC_REQBUFS`, `VIDIOC_QUERYBUF`, `VIDIOC_QBUF`,
//! `VIDIOC_DQBUF`, `VIDIOC_EXPBUF`, `VIDIOC_STREAMON`, `VIDIOC_STREAMOFF`) and what they hand
//! back: a `Dequeued` buffer's metadata, an exported `DmaBufFd`. The ioctls are for `Queue`
//! alone (`pub(super)`), which owns the buffers they name by index; nothing here maps memory or
//! knows of GStreamer.

use super::device::{Device, retry};
use super::error::Result;
use super::sys::*;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Where each plane of a driver buffer lives in the device's mmap space (`VIDIOC_QUERYBUF`).
#[derive(Clone, Debug)]
pub(super) struct BufferPlanes {
    /// (mmap offset, length) for each memory plane.
    pub planes: Vec<(u32, u32)>,
}

/// What `VIDIOC_DQBUF` said about a buffer: plain data that gives no access to the buffer
/// (the `DqBuffer` token of `Queue::dequeue` does, and reads as one of these).
#[derive(Clone, Copy, Debug)]
pub struct Dequeued {
    pub index: u32,
    pub flags: u32,
    pub field: u32,
    pub sequence: u32,
    /// The driver's capture time; on `V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC` buffers it is
    /// `CLOCK_MONOTONIC`.
    pub timestamp: Duration,
    pub n_planes: usize,
    /// (bytesused, data_offset) per memory plane.
    pub planes: [(u32, u32); VIDEO_MAX_PLANES],
}

impl Dequeued {
    pub fn has_monotonic_timestamp(&self) -> bool {
        self.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC
    }

    /// Whether the timestamp marks the start of the frame's exposure (UVC) rather than the end
    /// of the frame (`V4L2_BUF_FLAG_TSTAMP_SRC_EOF`, the default: vivid, most CSI and PCI
    /// drivers).
    pub fn stamped_at_start(&self) -> bool {
        self.flags & V4L2_BUF_FLAG_TSTAMP_SRC_MASK == V4L2_BUF_FLAG_TSTAMP_SRC_SOE
    }

    pub fn is_error(&self) -> bool {
        self.flags & V4L2_BUF_FLAG_ERROR != 0
    }

    pub fn is_keyframe(&self) -> bool {
        self.flags & V4L2_BUF_FLAG_KEYFRAME != 0
    }

    /// Whether the driver says what kind of frame this is (key, P or B). Many don't
    /// (uvcvideo, v4l2loopback), and then no flag means nothing.
    pub fn has_frame_type(&self) -> bool {
        self.flags & (V4L2_BUF_FLAG_KEYFRAME | V4L2_BUF_FLAG_PFRAME | V4L2_BUF_FLAG_BFRAME) != 0
    }
}

/// A dmabuf fd exported by `VIDIOC_EXPBUF`. Only `Device::expbuf` makes one, and a duplicate of
/// it (`try_clone`) refers to the same dmabuf, so holding a `DmaBufFd` proves the fd is a dmabuf:
/// what a dmabuf allocator requires of the fds it wraps.
///
/// The exported buffer stays allocated for as long as any fd refers to it, even after the queue
/// was freed (`VIDIOC_REQBUFS(0)`): vb2 keeps the memory of exported buffers alive.
#[derive(Debug)]
pub struct DmaBufFd(OwnedFd);

impl DmaBufFd {
    /// A new fd (close-on-exec) for the same dmabuf, owned by the caller.
    pub fn try_clone(&self) -> std::result::Result<DmaBufFd, Errno> {
        self.0
            .try_clone()
            .map(DmaBufFd)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)))
    }
}

impl AsFd for DmaBufFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl From<DmaBufFd> for OwnedFd {
    fn from(fd: DmaBufFd) -> OwnedFd {
        fd.0
    }
}

/// A driver's `timeval` as a `Duration`: a negative time (a driver bug) is 0, and microseconds
/// out of 0..1_000_000 are clamped, so nothing wraps or panics.
fn timeval_duration(sec: i64, usec: i64) -> Duration {
    let nanos = usec.clamp(0, 999_999).saturating_mul(1000);
    Duration::new(
        u64::try_from(sec).unwrap_or(0),
        u32::try_from(nanos).unwrap_or(0),
    )
}

impl Device {
    // The buffer ioctls below are for `Queue` alone (`pub(super)`): with a buffer index in hand,
    // safe code elsewhere could queue a buffer that a `DqBuffer` or a lent `Plane` still reads or
    // writes, or free and reallocate the buffers under a running queue.

    /// `VIDIOC_REQBUFS` with mmap memory; returns the count the driver granted. Zero frees.
    pub(super) fn reqbufs(&self, count: u32) -> Result<u32> {
        let mut raw = v4l2_requestbuffers {
            count,
            type_: self.buf_type(),
            memory: V4L2_MEMORY_MMAP,
            ..Default::default()
        };
        // SAFETY: `raw` is a valid v4l2_requestbuffers.
        retry(|| unsafe { vidioc_reqbufs(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_REQBUFS", e))?;
        Ok(raw.count)
    }

    /// Fills a v4l2_buffer for `index`, pointing multi-planar buffers at `planes`.
    pub(super) fn buffer_for(
        &self,
        index: u32,
        planes: &mut [v4l2_plane; VIDEO_MAX_PLANES],
    ) -> v4l2_buffer {
        let mut raw = v4l2_buffer {
            index,
            type_: self.buf_type(),
            memory: V4L2_MEMORY_MMAP,
            ..Default::default()
        };
        if self.is_multiplanar() {
            raw.m.planes = planes.as_mut_ptr();
            raw.length = VIDEO_MAX_PLANES as u32;
        }
        raw
    }

    /// `VIDIOC_QUERYBUF`: where buffer `index` lives in the mmap space.
    pub(super) fn querybuf(&self, index: u32) -> Result<BufferPlanes> {
        let mut planes = [v4l2_plane::default(); VIDEO_MAX_PLANES];
        let mut raw = self.buffer_for(index, &mut planes);
        // SAFETY: `raw` is valid; for multi-planar nodes `raw.m.planes` points at `planes`,
        // VIDEO_MAX_PLANES entries that outlive the call.
        retry(|| unsafe { vidioc_querybuf(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_QUERYBUF", e))?;
        let planes = if self.is_multiplanar() {
            let n = (raw.length as usize).min(VIDEO_MAX_PLANES);
            // SAFETY: for MMAP memory the kernel fills `mem_offset` of each plane.
            planes[..n]
                .iter()
                .map(|p| (unsafe { p.m.mem_offset }, p.length))
                .collect()
        } else {
            // SAFETY: for MMAP memory the kernel fills `offset`.
            vec![(unsafe { raw.m.offset }, raw.length)]
        };
        Ok(BufferPlanes { planes })
    }

    /// `VIDIOC_QBUF`: gives buffer `index` back to the driver to fill.
    pub(super) fn qbuf(&self, index: u32) -> Result<()> {
        let mut planes = [v4l2_plane::default(); VIDEO_MAX_PLANES];
        let mut raw = self.buffer_for(index, &mut planes);
        // SAFETY: as for `querybuf`.
        retry(|| unsafe { vidioc_qbuf(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_QBUF", e))?;
        Ok(())
    }

    /// `VIDIOC_EXPBUF`: plane `plane` of buffer `index` as a new dmabuf fd. Read-write as
    /// v4l2src asks for it, so that a consumer may map it as it could map the mmap'd plane.
    pub(super) fn expbuf(&self, index: u32, plane: u32) -> Result<DmaBufFd> {
        let mut raw = v4l2_exportbuffer {
            type_: self.buf_type(),
            index,
            plane,
            flags: (OFlag::O_CLOEXEC | OFlag::O_RDWR).bits() as u32,
            ..Default::default()
        };
        // SAFETY: `raw` is a valid, initialised v4l2_exportbuffer the kernel fills in place.
        retry(|| unsafe { vidioc_expbuf(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_EXPBUF", e))?;
        if raw.fd < 0 {
            return Err(self.err("VIDIOC_EXPBUF", Errno::EBADF));
        }
        // SAFETY: on success the kernel installed `raw.fd` as a new descriptor in this process's
        // table; nothing else knows it, so it is ours to own and close.
        Ok(DmaBufFd(unsafe { OwnedFd::from_raw_fd(raw.fd) }))
    }

    /// `VIDIOC_DQBUF`, non-blocking: `Ok(None)` when no buffer is ready (`EAGAIN`).
    pub(super) fn dqbuf(&self) -> Result<Option<Dequeued>> {
        let mut planes = [v4l2_plane::default(); VIDEO_MAX_PLANES];
        let mut raw = self.buffer_for(0, &mut planes);
        // SAFETY: as for `querybuf`.
        match retry(|| unsafe { vidioc_dqbuf(self.raw(), &mut raw) }) {
            Ok(_) => {}
            Err(Errno::EAGAIN) => return Ok(None),
            Err(errno) => return Err(self.err("VIDIOC_DQBUF", errno)),
        }
        let mut out = Dequeued {
            index: raw.index,
            flags: raw.flags,
            field: raw.field,
            sequence: raw.sequence,
            timestamp: timeval_duration(raw.timestamp.tv_sec, raw.timestamp.tv_usec),
            n_planes: 1,
            planes: [(0, 0); VIDEO_MAX_PLANES],
        };
        if self.is_multiplanar() {
            out.n_planes = (raw.length as usize).clamp(1, VIDEO_MAX_PLANES);
            for (dst, p) in out.planes.iter_mut().zip(&planes[..out.n_planes]) {
                *dst = (p.bytesused, p.data_offset);
            }
        } else {
            out.planes[0] = (raw.bytesused, 0);
        }
        Ok(Some(out))
    }

    /// `VIDIOC_STREAMON`
    pub(super) fn streamon(&self) -> Result<()> {
        let type_ = self.buf_type() as i32;
        // SAFETY: the kernel reads one int.
        retry(|| unsafe { vidioc_streamon(self.raw(), &type_) })
            .map_err(|e| self.err("VIDIOC_STREAMON", e))?;
        Ok(())
    }

    /// `VIDIOC_STREAMOFF`: also takes back every queued buffer.
    pub(super) fn streamoff(&self) -> Result<()> {
        let type_ = self.buf_type() as i32;
        // SAFETY: the kernel reads one int.
        retry(|| unsafe { vidioc_streamoff(self.raw(), &type_) })
            .map_err(|e| self.err("VIDIOC_STREAMOFF", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::timeval_duration;
    use std::time::Duration;

    #[test]
    fn timevals_never_wrap() {
        assert_eq!(timeval_duration(3, 250_000), Duration::from_millis(3250));
        assert_eq!(timeval_duration(-1, 5), Duration::from_micros(5));
        assert_eq!(timeval_duration(1, -5), Duration::from_secs(1));
        assert_eq!(
            timeval_duration(i64::MAX, i64::MAX),
            Duration::new(i64::MAX as u64, 999_999_000)
        );
    }
}
