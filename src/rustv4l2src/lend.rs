//! Handing a dequeued frame downstream: as the driver's mapped memory, as dmabuf memory
//! (`io-mode=dmabuf`), or, when lending would starve the driver or downstream cannot read the
//! driver's layout, as a copy. The copy is the only place the element touches frame bytes.

use crate::caps;
use crate::v4l2;
use gst::glib;
use gst_allocators::prelude::DmaBufAllocatorExtManual as _;
use std::os::fd::OwnedFd;

/// Wraps each plane of a lent frame as dmabuf memory (the frame's bytes of it, from
/// `data_offset`), and ties the frame to `buffer` so the driver buffer is re-queued when
/// `buffer` is freed.
///
/// The frame's `Plane` guards ride in a small holder buffer attached with a `GstParentBufferMeta`:
/// they drop, re-queuing, when the outgoing buffer and every copy of it (copies take the meta
/// along) are gone, the moment C v4l2src re-queues (the buffer back in its pool). A memory taken
/// out of the buffer alone does not hold the V4L2 buffer, as with v4l2src: the driver may fill it
/// again while such a memory is still read. That is a stale picture, never a dangling one: each
/// memory owns its own duplicate of the dmabuf fd, which keeps the exported buffer allocated.
pub(super) fn lend_as_dmabuf(
    buffer: &mut gst::BufferRef,
    allocator: &gst_allocators::DmaBufAllocator,
    planes: impl Iterator<Item = v4l2::Plane>,
) -> Result<(), String> {
    let planes: Vec<_> = planes.collect();
    for plane in &planes {
        let dmabuf = plane
            .dmabuf()
            .map_err(|e| e.to_string())?
            .ok_or("the buffers were not exported")?;
        let mut memory = dmabuf_memory(allocator, dmabuf.fd, dmabuf.size)
            .map_err(|e| format!("the dmabuf allocator refused the fd: {e}"))?;
        memory
            .get_mut()
            .ok_or("a new memory is not writable")?
            .resize(dmabuf.offset..dmabuf.offset + dmabuf.len);
        buffer.append_memory(memory);
    }
    let holder = gst::Buffer::from_slice(LentFrame { _guards: planes });
    gst::ParentBufferMeta::add(buffer, &holder);
    Ok(())
}

/// Unsafe outside `v4l2/` (as is `colorbalance.rs`): it needs GStreamer, which that layer must not
/// know.
fn dmabuf_memory(
    allocator: &gst_allocators::DmaBufAllocator,
    fd: v4l2::DmaBufFd,
    size: usize,
) -> Result<gst::Memory, glib::BoolError> {
    // SAFETY: `alloc_dmabuf` needs a dmabuf fd that the new memory may own and close, of at least
    // `size` bytes (it maps that many). Only VIDIOC_EXPBUF makes a `DmaBufFd`, or a dup of one,
    // so `fd` is a dmabuf; it is moved in, so the memory is its sole owner; `size` is the plane's
    // length from VIDIOC_QUERYBUF, and vb2 exports the whole (page-rounded) plane.
    unsafe { allocator.alloc_dmabuf(OwnedFd::from(fd), size) }
}

/// The `Plane` guards of a frame lent as dmabuf memory, as the (empty) content of its holder
/// buffer: held only to be dropped with it.
struct LentFrame {
    _guards: Vec<v4l2::Plane>,
}

impl AsRef<[u8]> for LentFrame {
    fn as_ref(&self) -> &[u8] {
        &[]
    }
}

/// Copies a lent frame into a system-memory buffer of GStreamer's default layout, from `pool`
/// (made on first need); the driver buffer goes back to the driver as soon as `lent` is dropped.
pub(super) fn copy_out(
    lent: gst::Buffer,
    info: &gst_video::VideoInfo,
    framing: &caps::Framing,
    caps: &gst::Caps,
    pool: &mut Option<gst::BufferPool>,
) -> Result<gst::Buffer, gst::FlowError> {
    use gst::prelude::*;
    let Some(frame_size) = framing.frame_size(info) else {
        // Compressed: the bytes as they are, flags and timestamps with them.
        return lent.copy_deep().map_err(|_| gst::FlowError::Error);
    };
    let pool = match pool {
        Some(pool) => pool.clone(),
        None => {
            let new = gst::BufferPool::new();
            let mut config = new.config();
            let size = u32::try_from(frame_size).map_err(|_| gst::FlowError::Error)?;
            config.set_params(Some(caps), size, 0, 0);
            new.set_config(config).map_err(|_| gst::FlowError::Error)?;
            new.set_active(true).map_err(|_| gst::FlowError::Error)?;
            *pool = Some(new.clone());
            new
        }
    };
    let out = pool.acquire_buffer(None)?;
    let mut out = if let caps::Framing::Bayer {
        height,
        stride,
        packed_stride,
    } = *framing
    {
        // Row by row, into rows as long as bayer2rgb expects.
        let mut out = out;
        {
            let src = lent.map_readable().map_err(|_| gst::FlowError::Error)?;
            let out = out.get_mut().ok_or(gst::FlowError::Error)?;
            let mut dst = out.map_writable().map_err(|_| gst::FlowError::Error)?;
            let row = stride.min(packed_stride);
            for (y, dst_row) in dst.chunks_exact_mut(packed_stride).take(height).enumerate() {
                let from = &src[y.saturating_mul(stride).min(src.len())..];
                let n = row.min(from.len());
                dst_row[..n].copy_from_slice(&from[..n]);
            }
        }
        out
    } else {
        let src = gst_video::VideoFrame::from_buffer_readable(lent.clone(), info)
            .map_err(|_| gst::FlowError::Error)?;
        let mut dst = gst_video::VideoFrame::from_buffer_writable(out, info)
            .map_err(|_| gst::FlowError::Error)?;
        src.copy(&mut dst).map_err(|_| gst::FlowError::Error)?;
        dst.into_buffer()
    };
    {
        let out = out.get_mut().ok_or(gst::FlowError::Error)?;
        // Timestamps, offsets and every flag, the video ones (fields) included, which
        // `BufferRef::flags()` would drop.
        lent.copy_into(
            out,
            gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS,
            ..,
        )
        .map_err(|_| gst::FlowError::Error)?;
    }
    Ok(out)
}
