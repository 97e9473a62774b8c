//! The error every kernel call returns: which call failed, on which device, and the errno,
//! so the element can tell "busy" from "unplugged" from "not a V4L2 device".

use nix::errno::Errno;
use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The ioctl or system call, named as in the kernel headers (`VIDIOC_DQBUF`, `open`, `mmap`).
    pub call: &'static str,
    pub device: PathBuf,
    pub errno: Errno,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(call: &'static str, device: impl Into<PathBuf>, errno: Errno) -> Self {
        Error {
            call,
            device: device.into(),
            errno,
        }
    }

    /// The device went away (unplugged, driver unbound, vivid's Disconnect).
    pub fn is_disconnect(&self) -> bool {
        matches!(self.errno, Errno::ENODEV | Errno::ENXIO | Errno::EPIPE)
    }

    /// The driver declared the stream failed (vb2's queue error: `VIDIOC_DQBUF` and
    /// `VIDIOC_QBUF` answer EIO until the stream is stopped), or an I/O error of its own.
    pub fn is_stream_failure(&self) -> bool {
        self.errno == Errno::EIO
    }

    pub fn is_busy(&self) -> bool {
        self.errno == Errno::EBUSY
    }

    /// The driver does not implement this ioctl: a gap to work around, not a failure.
    pub fn is_unsupported(&self) -> bool {
        matches!(self.errno, Errno::ENOTTY | Errno::EINVAL | Errno::ENOSYS)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} failed: {} ({})",
            self.call,
            self.device.display(),
            self.errno.desc(),
            self.errno
        )
    }
}

impl std::error::Error for Error {}
