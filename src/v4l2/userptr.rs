//! `io-mode=userptr`: capture buffers this process allocates (private anonymous mappings, so
//! page-aligned) and hands the driver by address (`V4L2_MEMORY_USERPTR`). The `Queue` owns
//! them as it owns the mappings of driver buffers, so the lending rules are the same: a frame
//! lent downstream keeps its memory alive for as long as it is held, after the stream ended
//! too (vb2 unpins the pages at `VIDIOC_REQBUFS(0)`; they stay ours until the last frame of
//! them is gone), and a buffer of an ended stream is never queued again. Knows nothing of
//! GStreamer.

use super::device::{Device, retry};
use super::error::{Error, Result};
use super::mapping::{Mapping, Memory};
use super::queue::Queue;
use super::sys::*;
use nix::errno::Errno;
use std::sync::Arc;

/// `len` rounded up to whole pages: vb2 pins whole pages, and v4l2src aligns its user memory
/// the same way.
pub(super) fn page_rounded(len: u32) -> usize {
    // SAFETY: sysconf reads a constant of the system; it touches no memory of ours.
    let page = unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) };
    let page = usize::try_from(page)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096);
    usize::try_from(len)
        .unwrap_or(usize::MAX)
        .saturating_add(page - 1)
        & !(page - 1)
}

impl Device {
    /// `VIDIOC_REQBUFS` for `memory`; returns the count the driver granted. Zero frees.
    pub(super) fn reqbufs_for(&self, count: u32, memory: Memory) -> Result<u32> {
        let mut raw = v4l2_requestbuffers {
            count,
            type_: self.buf_type(),
            memory: memory.raw(),
            ..Default::default()
        };
        // SAFETY: `raw` is a valid v4l2_requestbuffers.
        retry(|| unsafe { vidioc_reqbufs(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_REQBUFS", e))?;
        Ok(raw.count)
    }

    /// `VIDIOC_QBUF` of user-pointer buffer `index`, whose memory planes are `planes`.
    pub(super) fn qbuf_userptr(&self, index: u32, planes: &[Mapping]) -> Result<()> {
        let mut raw_planes = [v4l2_plane::default(); VIDEO_MAX_PLANES];
        let mut raw = self.buffer_for(index, &mut raw_planes);
        raw.memory = V4L2_MEMORY_USERPTR;
        let length = |m: &Mapping| u32::try_from(m.len()).map_err(|_| Errno::EINVAL);
        if self.is_multiplanar() {
            if planes.is_empty() || planes.len() > VIDEO_MAX_PLANES {
                return Err(self.err("VIDIOC_QBUF", Errno::EINVAL));
            }
            for (dst, map) in raw_planes.iter_mut().zip(planes) {
                dst.m.userptr = map.address();
                dst.length = length(map).map_err(|e| self.err("VIDIOC_QBUF", e))?;
            }
            raw.length = planes.len() as u32;
        } else {
            let map = planes
                .first()
                .ok_or_else(|| self.err("VIDIOC_QBUF", Errno::EINVAL))?;
            raw.m.userptr = map.address();
            raw.length = length(map).map_err(|e| self.err("VIDIOC_QBUF", e))?;
        }
        // SAFETY: `raw` is valid; for multi-planar nodes `raw.m.planes` points at `raw_planes`,
        // which outlive the call. The addresses are of mappings the queue owns for at least as
        // long as the driver may write them: it unpins them at `VIDIOC_REQBUFS(0)` (`Queue::stop`),
        // and the queue, which holds the mappings, outlives that.
        retry(|| unsafe { vidioc_qbuf(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_QBUF", e))?;
        Ok(())
    }
}

impl Queue {
    /// `VIDIOC_REQBUFS(V4L2_MEMORY_USERPTR)` and, for each buffer granted, one page-aligned
    /// allocation per memory plane of `plane_sizes` bytes (each rounded up to whole pages): the
    /// current format's `sizeimage`s.
    pub fn allocate_userptr(
        device: Arc<Device>,
        count: u32,
        plane_sizes: &[u32],
    ) -> Result<Arc<Queue>> {
        if plane_sizes.is_empty() || plane_sizes.contains(&0) {
            return Err(Error::new("VIDIOC_REQBUFS", device.path(), Errno::EINVAL));
        }
        let granted = device.reqbufs_for(count, Memory::UserPtr)?;
        if granted == 0 {
            return Err(Error::new("VIDIOC_REQBUFS", device.path(), Errno::ENOMEM));
        }
        let buffers = (0..granted)
            .map(|_| {
                plane_sizes
                    .iter()
                    .map(|&size| Mapping::anonymous(page_rounded(size)))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>();
        let buffers = match buffers {
            Ok(buffers) => buffers,
            Err(e) => {
                let _ = device.reqbufs_for(0, Memory::UserPtr);
                return Err(e);
            }
        };
        Ok(Queue::from_parts(
            device,
            buffers,
            Vec::new(),
            Memory::UserPtr,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::page_rounded;

    #[test]
    fn user_memory_is_whole_pages() {
        assert_eq!(page_rounded(1), 4096);
        assert_eq!(page_rounded(4096), 4096);
        assert_eq!(page_rounded(460_800), 462_848);
        assert_eq!(page_rounded(u32::MAX), (u32::MAX as usize + 1));
    }
}
