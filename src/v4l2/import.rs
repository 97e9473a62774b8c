//! `V4L2_MEMORY_DMABUF` capture (`io-mode=dmabuf-import`): the driver fills dmabufs that
//! someone else allocated (a display, an encoder, another V4L2 device), handed over by fd at
//! each `VIDIOC_QBUF`. The queue only knows which of its slots the driver holds; whoever queues
//! a dmabuf keeps it (and what it belongs to) until the slot comes back from `VIDIOC_DQBUF`.
//!
//! Nothing here maps or touches the dmabufs: vb2 takes a reference of its own on each one at
//! `QBUF` and drops it when the buffer is freed or another dmabuf takes the slot, so a dmabuf
//! closed by its owner while queued is not freed under the driver. Knows nothing of GStreamer.

use super::buffer_ioctls::Dequeued;
use super::device::{Device, retry};
use super::error::{Error, Result};
use super::mapping::Memory;
use super::sys::*;
use nix::errno::Errno;
use std::os::fd::RawFd;
use std::sync::Arc;

/// One memory plane of a dmabuf to capture into: its fd, open in this process for as long as
/// it is queued, and how many bytes of it, from its start, the driver may fill. A number that
/// names no dmabuf is refused by the kernel (`EBADF`, `EINVAL`), so a plain fd serves: the fds
/// belong to GStreamer memories, which own and close them.
#[derive(Clone, Copy, Debug)]
pub struct ImportPlane {
    pub fd: RawFd,
    pub length: u32,
}

/// The slots of a `V4L2_MEMORY_DMABUF` queue, from `VIDIOC_REQBUFS` to its end (`stop`, or
/// drop): which the driver holds, and whether it streams.
pub struct ImportQueue {
    device: Arc<Device>,
    /// Per slot: whether a dmabuf is queued in it.
    queued: Vec<bool>,
    streaming: bool,
    ended: bool,
}

impl ImportQueue {
    /// `VIDIOC_REQBUFS(V4L2_MEMORY_DMABUF)`: `count` slots asked, as many as the driver grants.
    pub fn allocate(device: Arc<Device>, count: u32) -> Result<ImportQueue> {
        let granted = device.reqbufs_for(count, Memory::DmaBuf)?;
        if granted == 0 {
            return Err(Error::new("VIDIOC_REQBUFS", device.path(), Errno::ENOMEM));
        }
        Ok(ImportQueue {
            device,
            queued: vec![false; granted as usize],
            streaming: false,
            ended: false,
        })
    }

    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// How many slots the driver granted.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// How many slots the driver holds.
    pub fn queued(&self) -> usize {
        self.queued.iter().filter(|q| **q).count()
    }

    /// Slots with nothing queued in them, to be filled with `queue`.
    pub fn free_slots(&self) -> impl Iterator<Item = u32> + '_ {
        (0u32..)
            .zip(&self.queued)
            .filter(|(_, queued)| !**queued)
            .map(|(index, _)| index)
    }

    /// `VIDIOC_QBUF` of `planes` into free slot `index`. The caller keeps the dmabufs (and
    /// what they belong to) until `dequeue` hands the slot back or the queue stops.
    pub fn queue(&mut self, index: u32, planes: &[ImportPlane]) -> Result<()> {
        let einval = |device: &Device| device.err("VIDIOC_QBUF", Errno::EINVAL);
        if self.ended || self.queued.get(index as usize) != Some(&false) {
            return Err(einval(&self.device));
        }
        let mut raw_planes = [v4l2_plane::default(); VIDEO_MAX_PLANES];
        let mut raw = self.device.buffer_for(index, &mut raw_planes);
        raw.memory = V4L2_MEMORY_DMABUF;
        if self.device.is_multiplanar() {
            if planes.is_empty() || planes.len() > VIDEO_MAX_PLANES {
                return Err(einval(&self.device));
            }
            for (dst, plane) in raw_planes.iter_mut().zip(planes) {
                dst.m.fd = plane.fd;
                dst.length = plane.length;
            }
            raw.length = planes.len() as u32;
        } else {
            let [plane] = planes else {
                return Err(einval(&self.device));
            };
            raw.m.fd = plane.fd;
            raw.length = plane.length;
        }
        // SAFETY: `raw` is valid; for multi-planar nodes `raw.m.planes` points at `raw_planes`,
        // which outlive the call. The kernel resolves each fd to a dmabuf (or fails), takes a
        // reference of its own on it, and writes no memory of this process but `raw`.
        retry(|| unsafe { vidioc_qbuf(self.device.raw(), &mut raw) })
            .map_err(|e| self.device.err("VIDIOC_QBUF", e))?;
        self.queued[index as usize] = true;
        Ok(())
    }

    /// `VIDIOC_STREAMON`, once.
    pub fn start(&mut self) -> Result<()> {
        if !self.streaming {
            self.device.streamon()?;
            self.streaming = true;
        }
        Ok(())
    }

    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// `VIDIOC_DQBUF`, non-blocking: a filled slot, now free again; `Ok(None)` when none is
    /// ready. A slot the queue does not hold (a confused driver) is an error, never handed out.
    pub fn dequeue(&mut self) -> Result<Option<Dequeued>> {
        let Some(done) = self.device.dqbuf()? else {
            return Ok(None);
        };
        match self.queued.get_mut(done.index as usize) {
            Some(queued) if *queued => {
                *queued = false;
                Ok(Some(done))
            }
            _ => Err(self.device.err("VIDIOC_DQBUF", Errno::EXDEV)),
        }
    }

    /// `VIDIOC_STREAMOFF` and `VIDIOC_REQBUFS(0)`: every slot comes back (and vb2 drops its
    /// references to the dmabufs); the queue is over.
    pub fn stop(&mut self) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        self.queued.fill(false);
        let off = if self.streaming {
            self.streaming = false;
            self.device.streamoff()
        } else {
            Ok(())
        };
        let freed = self.device.reqbufs_for(0, Memory::DmaBuf);
        off.and(freed.map(|_| ()))
    }
}

impl Drop for ImportQueue {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
