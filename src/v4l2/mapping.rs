//! One plane of a driver buffer mapped into this process (`mmap` at the offset
//! `VIDIOC_QUERYBUF` gave), and which of its bytes hold a frame. Owned by `Queue`, which alone
//! knows who may touch a buffer's bytes when; knows nothing of GStreamer.

use super::device::Device;
use super::error::{Error, Result};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::ptr::NonNull;

/// One plane of one driver buffer, mapped shared and read-write.
pub(super) struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; moving the pointer between
// threads is sound. Who may write it at a given time is governed by the V4L2 buffer ownership
// (the driver while queued, the single holder of its `DqBuffer` or `Plane` otherwise).
unsafe impl Send for Mapping {}
// SAFETY: see `Send`; `Mapping` itself exposes no interior mutation.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub(super) fn new(device: &Device, offset: u32, len: u32) -> Result<Mapping> {
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

    /// Bytes mapped.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether `ptr` lies inside this mapping.
    pub(super) fn contains(&self, ptr: *const u8) -> bool {
        (ptr as usize)
            .checked_sub(self.ptr.as_ptr() as usize)
            .is_some_and(|offset| offset < self.len)
    }

    /// Where the bytes at `range` of this mapping start. The pointer comes from mmap's own,
    /// never from a slice, so it may be written through.
    pub(super) fn ptr_at(&self, range: &Range<usize>) -> NonNull<u8> {
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
        // no slice into it outlives this value: every `DqBuffer` (and so every `Plane`) holds
        // the `Queue` that owns it.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

/// The bytes of a plane's mapping of `len` bytes that hold the frame, as offsets:
/// `data_offset..bytesused` (V4L2 counts the offset within `bytesused`), where a `bytesused` of 0
/// (a driver that leaves it unset) means the whole mapping. Both ends are clamped to the mapping,
/// so a confused driver cannot make us read past it.
pub(crate) fn frame_range(bytesused: u32, data_offset: u32, len: usize) -> Range<usize> {
    let end = match usize::try_from(bytesused) {
        Ok(0) => len,
        Ok(used) => used.min(len),
        Err(_) => len,
    };
    let start = usize::try_from(data_offset).map_or(end, |offset| offset.min(end));
    start..end
}

impl Mapping {
    /// Fresh private anonymous memory of `len` bytes, page-aligned (mmap's own): a buffer this
    /// process owns, for the driver to fill through its address (`io-mode=userptr`).
    pub(super) fn anonymous(len: usize) -> Result<Mapping> {
        let size = NonZeroUsize::new(len)
            .ok_or_else(|| Error::new("mmap", "(anonymous)", nix::errno::Errno::EINVAL))?;
        // SAFETY: a fresh private anonymous region chosen by the kernel: it replaces nothing.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .map_err(|errno| Error::new("mmap", "(anonymous)", errno))?;
        Ok(Mapping { ptr, len })
    }

    /// Where the mapping starts, as the address `VIDIOC_QBUF` takes for user pointers.
    pub(super) fn address(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

/// Whose memory a queue's buffers are, as `v4l2_requestbuffers.memory` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Memory {
    /// The driver's, mapped into this process.
    Mmap,
    /// This process's, handed over by address.
    UserPtr,
    /// Someone's dmabufs, handed over by fd (`import.rs`).
    DmaBuf,
}

impl Memory {
    pub(super) fn raw(self) -> u32 {
        match self {
            Memory::Mmap => super::sys::V4L2_MEMORY_MMAP,
            Memory::UserPtr => super::sys::V4L2_MEMORY_USERPTR,
            Memory::DmaBuf => super::sys::V4L2_MEMORY_DMABUF,
        }
    }
}

#[cfg(test)]
impl Mapping {
    /// Where the mapping starts.
    pub(super) fn base(&self) -> *mut u8 {
        self.ptr.as_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::frame_range;

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
}
