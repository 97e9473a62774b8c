//! Handing a dequeued frame downstream beside the frame pool (`pool.rs`): its `GstVideoMeta`,
//! wrapping dmabufs, and, when lending would starve the driver or downstream cannot read the
//! driver's layout, a copy. The copy is the only place the element touches frame bytes.

use crate::caps;
use crate::v4l2;
use gst::glib;
use gst_allocators::prelude::DmaBufAllocatorExtManual as _;
use std::os::fd::OwnedFd;

/// A frame about to be copied, as a buffer of its mapped planes: the driver buffer goes back
/// when the buffer (the copy's source) is dropped. Allocates, as the copy does.
pub(super) fn wrap_for_copy(frame: v4l2::DqBuffer) -> Result<gst::Buffer, gst::FlowError> {
    let mut buffer = gst::Buffer::new();
    {
        let buffer = buffer.get_mut().ok_or(gst::FlowError::Error)?;
        for plane in frame.lend() {
            buffer.append_memory(gst::Memory::from_mut_slice(plane));
        }
    }
    Ok(buffer)
}

/// A frame the driver handed over again while downstream holds its buffer, as read-only
/// memories over the mapping, to be copied at once (`copy_out`): its bytes are the driver's to
/// change.
pub(super) fn wrap_reread(frame: &v4l2::Reread) -> Result<gst::Buffer, gst::FlowError> {
    let mut buffer = gst::Buffer::new();
    {
        let buffer = buffer.get_mut().ok_or(gst::FlowError::Error)?;
        for plane in frame.planes() {
            buffer.append_memory(gst::Memory::from_slice(plane));
        }
    }
    Ok(buffer)
}

/// Gives `buffer` a `GstVideoMeta` with these plane offsets and strides, keeping the one it
/// has when it says the same already (a recycled buffer: no allocation).
pub(super) fn set_video_meta(
    buffer: &mut gst::BufferRef,
    info: &gst_video::VideoInfo,
    offsets: &[usize],
    strides: &[i32],
) -> Result<(), gst::FlowError> {
    if let Some(meta) = buffer.meta::<gst_video::VideoMeta>()
        && meta.format() == info.format()
        && meta.width() == info.width()
        && meta.height() == info.field_height()
        && meta.offset() == offsets
        && meta.stride() == strides
    {
        return Ok(());
    }
    if let Some(meta) = buffer.meta_mut::<gst_video::VideoMeta>() {
        meta.remove().map_err(|_| gst::FlowError::Error)?;
    }
    gst_video::VideoMeta::add_full(
        buffer,
        gst_video::VideoFrameFlags::empty(),
        info.format(),
        info.width(),
        info.field_height(),
        offsets,
        strides,
    )
    .map_err(|_| gst::FlowError::Error)?;
    Ok(())
}

/// Unsafe outside `v4l2/` (as is `colorbalance.rs`): it needs GStreamer, which that layer must not
/// know.
pub(super) fn dmabuf_memory(
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
