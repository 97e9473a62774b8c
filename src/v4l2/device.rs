//! An open V4L2 capture node and one safe function per ioctl, named after it.
//! Each wraps exactly one kernel call (repeated when a signal interrupts it) and returns `Error`
//! naming that call and the device.
//!
//! This file is the node itself: opening it, `VIDIOC_QUERYCAP`, and the helpers every ioctl
//! function uses. The ioctls themselves are grouped by concern in sibling files, each adding an
//! `impl Device` block: `format_ioctls.rs` (formats, sizes, rates), `crop_ioctls.rs`
//! (cropping), `buffer_ioctls.rs` (buffers and streaming, for `Queue` alone), `controls.rs`
//! (controls).

use super::error::Error;
use super::sys::*;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::stat::{Mode, SFlag, fstat, stat};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

// Their home moved to the sibling files; `v4l2::device::*` paths keep working.
pub use super::buffer_ioctls::{Dequeued, DmaBufFd};
pub use super::controls::ControlInfo;
pub use super::format_ioctls::FormatDesc;

/// Why a path could not be opened as a capture device; each is a different user mistake.
#[derive(Debug)]
pub enum OpenError {
    /// Nothing at that path.
    NotFound,
    /// The path exists but is not a character device (a regular file, a folder).
    NotADevice,
    /// A character device that does not answer `VIDIOC_QUERYCAP` (`/dev/null`, a tty).
    NotV4l2,
    /// A V4L2 node that cannot capture video with streaming I/O (an output node, a radio...).
    NotCapture { card: String, device_caps: u32 },
    /// Opening or querying failed for another reason (permissions, a driver error).
    Io(Error),
}

/// What `VIDIOC_QUERYCAP` tells about the node.
#[derive(Clone, Debug)]
pub struct Capability {
    pub driver: String,
    pub card: String,
    pub bus_info: String,
    /// The node's own capabilities (`device_caps` when the driver reports them).
    pub device_caps: u32,
}

#[derive(Debug)]
pub struct Device {
    fd: OwnedFd,
    path: PathBuf,
    capability: Capability,
    buf_type: u32,
    /// For a device made from an application's descriptor (`from_fd`): the file status flags
    /// it had before this made it non-blocking, put back when this closes its duplicate. The
    /// flags belong to the open file, which the application's descriptor shares.
    restore_flags: Option<OFlag>,
}

/// Runs a system call again for as long as a signal interrupts it (`EINTR`): a signal
/// delivered to the capturing thread (a profiler's, a debugger's, the application's own) says
/// nothing about the device, and every call here is safe to repeat when it did not happen.
pub(super) fn retry<T>(mut call: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match call() {
            Err(Errno::EINTR) => continue,
            done => return done,
        }
    }
}

pub(super) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Device {
    /// Opens a capture node non-blocking (the element waits in poll, never in DQBUF) and checks
    /// that it can stream video in.
    pub fn open(path: &Path) -> std::result::Result<Device, OpenError> {
        let st = match stat(path) {
            Ok(st) => st,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Err(OpenError::NotFound),
            Err(errno) => return Err(OpenError::Io(Error::new("stat", path, errno))),
        };
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR {
            return Err(OpenError::NotADevice);
        }
        let fd = retry(|| {
            open(
                path,
                OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        })
        .map_err(|errno| OpenError::Io(Error::new("open", path, errno)))?;
        Device::from_owned(fd, path.to_owned(), None)
    }

    /// Opens the capture node an application already opened, as `fd`: works on a duplicate
    /// (`F_DUPFD_CLOEXEC`), so the application's descriptor is never closed here and stays
    /// usable. The node's path, for messages, is what `/proc/self/fd` says of it. The open file
    /// is made non-blocking while this uses it (the element waits in poll, never in DQBUF), and
    /// its flags are put back when this closes.
    pub fn from_fd(fd: RawFd) -> std::result::Result<Device, OpenError> {
        let label = PathBuf::from(format!("/proc/self/fd/{fd}"));
        // SAFETY: fcntl() reads no memory of ours; on a number that is not an open descriptor
        // it fails with EBADF (a raw call, as nix's wants a `BorrowedFd`, which promises an
        // open one).
        let dup = match retry(|| {
            Errno::result(unsafe { nix::libc::fcntl(fd, nix::libc::F_DUPFD_CLOEXEC, 0) })
        }) {
            Err(errno) => return Err(OpenError::Io(Error::new("F_DUPFD_CLOEXEC", label, errno))),
            // SAFETY: a descriptor fcntl() just made for this process: nothing else owns it.
            Ok(new) => unsafe { OwnedFd::from_raw_fd(new) },
        };
        let path = nix::fcntl::readlink(format!("/proc/self/fd/{}", dup.as_raw_fd()).as_str())
            .map(PathBuf::from)
            .unwrap_or(label);
        let st = fstat(&dup).map_err(|errno| OpenError::Io(Error::new("fstat", &path, errno)))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR {
            return Err(OpenError::NotADevice);
        }
        let mut device = Device::from_owned(dup, path, None)?;
        let flags = fcntl(&device.fd, FcntlArg::F_GETFL)
            .map(OFlag::from_bits_retain)
            .map_err(|errno| OpenError::Io(device.err("F_GETFL", errno)))?;
        if !flags.contains(OFlag::O_NONBLOCK) {
            fcntl(&device.fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))
                .map_err(|errno| OpenError::Io(device.err("F_SETFL", errno)))?;
            device.restore_flags = Some(flags);
        }
        Ok(device)
    }

    /// Checks that an open node can capture video with streaming I/O (`VIDIOC_QUERYCAP`).
    fn from_owned(
        fd: OwnedFd,
        path: PathBuf,
        restore_flags: Option<OFlag>,
    ) -> std::result::Result<Device, OpenError> {
        let path = path.as_path();
        let mut raw = v4l2_capability::default();
        // SAFETY: `raw` is a correctly sized, writable v4l2_capability; the fd is open.
        match retry(|| unsafe { vidioc_querycap(fd.as_raw_fd(), &mut raw) }) {
            Ok(_) => {}
            Err(Errno::ENOTTY) | Err(Errno::EINVAL) => return Err(OpenError::NotV4l2),
            Err(errno) => return Err(OpenError::Io(Error::new("VIDIOC_QUERYCAP", path, errno))),
        }
        let device_caps = if raw.capabilities & V4L2_CAP_DEVICE_CAPS != 0 {
            raw.device_caps
        } else {
            raw.capabilities
        };
        let capability = Capability {
            driver: c_string(&raw.driver),
            card: c_string(&raw.card),
            bus_info: c_string(&raw.bus_info),
            device_caps,
        };
        let buf_type = if device_caps & V4L2_CAP_VIDEO_CAPTURE != 0 {
            V4L2_BUF_TYPE_VIDEO_CAPTURE
        } else if device_caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0 {
            V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
        } else {
            return Err(OpenError::NotCapture {
                card: capability.card,
                device_caps,
            });
        };
        if device_caps & V4L2_CAP_STREAMING == 0 {
            return Err(OpenError::NotCapture {
                card: capability.card,
                device_caps,
            });
        }
        Ok(Device {
            fd,
            path: path.to_owned(),
            capability,
            buf_type,
            restore_flags,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn capability(&self) -> &Capability {
        &self.capability
    }

    /// Whether the device behind this open node went away (`VIDIOC_QUERYCAP` answers with a
    /// disconnect errno), as opposed to refusing a request of its own will.
    pub fn is_disconnected(&self) -> bool {
        let mut raw = v4l2_capability::default();
        // SAFETY: `raw` is a correctly sized, writable v4l2_capability; the fd is open.
        match retry(|| unsafe { vidioc_querycap(self.fd.as_raw_fd(), &mut raw) }) {
            Ok(_) => false,
            Err(errno) => self.err("VIDIOC_QUERYCAP", errno).is_disconnect(),
        }
    }

    pub fn is_multiplanar(&self) -> bool {
        self.buf_type == V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
    }

    pub fn buf_type(&self) -> u32 {
        self.buf_type
    }

    pub(super) fn err(&self, call: &'static str, errno: Errno) -> Error {
        Error::new(call, &self.path, errno)
    }

    pub(super) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
impl Device {
    /// A single-planar capture "device" on `/dev/null`, for tests of the layers above the
    /// ioctls without a driver: every ioctl on it fails with `ENOTTY`.
    pub(super) fn null() -> Device {
        let path = Path::new("/dev/null");
        let fd = open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).expect("/dev/null");
        Device {
            fd,
            path: path.to_owned(),
            capability: Capability {
                driver: "null".to_owned(),
                card: "null".to_owned(),
                bus_info: String::new(),
                device_caps: V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING,
            },
            buf_type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
            restore_flags: None,
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if let Some(flags) = self.restore_flags {
            // Best effort: the application's descriptor shares these flags, and a failure
            // here (the device is gone) leaves nothing to put back.
            let _ = fcntl(&self.fd, FcntlArg::F_SETFL(flags));
        }
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Now on `CLOCK_MONOTONIC`, the clock of `V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC` buffer timestamps.
pub fn monotonic_now() -> Duration {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => Duration::new(
            ts.tv_sec().max(0) as u64,
            ts.tv_nsec().clamp(0, 999_999_999) as u32,
        ),
        Err(_) => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::retry;
    use nix::errno::Errno;

    #[test]
    fn retry_repeats_only_interrupted_calls() {
        let mut calls = 0;
        let got = retry(|| {
            calls += 1;
            if calls < 3 {
                Err(Errno::EINTR)
            } else {
                Ok(calls)
            }
        });
        assert_eq!((got, calls), (Ok(3), 3));

        let mut calls = 0;
        let got: nix::Result<()> = retry(|| {
            calls += 1;
            Err(Errno::EAGAIN)
        });
        assert_eq!((got, calls), (Err(Errno::EAGAIN), 1));

        let mut calls = 0;
        assert_eq!(
            retry(|| {
                calls += 1;
                Ok::<_, Errno>(7)
            }),
            Ok(7)
        );
        assert_eq!(calls, 1);
    }
}
