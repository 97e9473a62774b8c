//! `io-mode=rw`: frames by `read()`, for drivers with `V4L2_CAP_READWRITE`. vb2 runs its own
//! buffers behind `read()` (its "file I/O emulator"), started by the first `poll()` or `read()`
//! and ended only when the file that started it is closed: `VIDIOC_STREAMOFF` and
//! `VIDIOC_REQBUFS(0)` answer `EBUSY` meanwhile, and the format cannot change. So a `Reader`
//! opens the node a second time and reads through that file alone; dropping it closes the file,
//! which stops the driver and frees its buffers, and the device (the element's first file) can
//! take another format. Knows nothing of GStreamer.

use super::device::{Device, OpenError};
use super::error::{Error, Result};
use super::sys::V4L2_CAP_READWRITE;
use nix::errno::Errno;
use std::os::fd::{AsFd, BorrowedFd};

impl Device {
    /// Whether the driver says it supports `read()` (`V4L2_CAP_READWRITE`).
    pub fn can_read(&self) -> bool {
        self.capability().device_caps & V4L2_CAP_READWRITE != 0
    }
}

/// A file of its own on a capture node, for `read()`.
pub struct Reader {
    file: Device,
}

impl Reader {
    /// Opens `device`'s node again, non-blocking, for reading frames of its current format.
    pub fn open(device: &Device) -> Result<Reader> {
        let path = device.path();
        let file = Device::open(path).map_err(|e| match e {
            OpenError::Io(e) => e,
            OpenError::NotFound => Error::new("open", path, Errno::ENOENT),
            _ => Error::new("open", path, Errno::ENODEV),
        })?;
        Ok(Reader { file })
    }

    /// The file frames are read from, to wait on.
    pub fn file(&self) -> &Device {
        &self.file
    }

    /// One `read()` of at most `dst.len()` bytes: vb2 hands out one frame per call when `dst`
    /// holds a whole frame. `Ok(None)`: no frame is ready (`EAGAIN`).
    pub fn read(&self, dst: &mut [u8]) -> Result<Option<usize>> {
        loop {
            match nix::unistd::read(self.file.as_fd(), dst) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(None),
                Err(errno) => return Err(Error::new("read", self.file.path(), errno)),
            }
        }
    }
}

impl AsFd for Reader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
