//! Waiting for video4linux devices to come and go: the kernel's hot-plug events (uevents, read
//! from a `NETLINK_KOBJECT_UEVENT` socket) plus an eventfd, so that another thread can end a
//! wait at once. Knows nothing of GStreamer, and nothing of udev: these are the events the kernel
//! sends to udev itself, so they come with or without a udev daemon, but may come before udev
//! has made or set up the node (its permissions, its symlinks).
//!
//! An event only says that a node changed; it is not a description of the device. The caller
//! still looks at `/dev` and opens the node to learn what it is.

use super::error::{Error, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{
    AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recvfrom, socket,
};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The multicast group the kernel sends its uevents to (udev re-sends them, once it has
/// handled them, to group 2, in a format of its own).
const KERNEL_GROUP: u32 = 1;
/// What `Error::device` names for failures of the socket and the waker.
const NAME: &str = "(uevent socket)";
/// A kernel uevent is at most a 2048-byte environment plus its `ACTION@DEVPATH` header.
const MESSAGE_SIZE: usize = 8192;
/// Messages read per wake at most, so that a storm of other devices' events cannot keep a wait
/// from returning; the rest wake the next wait.
const MESSAGES_PER_WAKE: usize = 256;
/// The inode number of the initial user namespace (`PROC_USER_INIT_INO`), fixed by the kernel.
const INITIAL_USER_NS: u64 = 0xEFFF_FFFD;

/// Whether the kernel's uevents reach this process. Since Linux 4.18 they go only to network
/// namespaces of the initial user namespace, so in an unprivileged container or sandbox the
/// socket opens fine and then stays silent. Judged from this process's user namespace: a
/// process outside the initial one that still shares the host's network namespace would get
/// them, but is told no, which costs it only promptness. Where `/proc` cannot tell, no.
pub fn events_reach_this_process() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/user").is_ok_and(|ns| ns.ino() == INITIAL_USER_NS)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
}

/// A video4linux node that came or went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uevent {
    pub action: Action,
    /// The node's name under `/dev` (`video0`, `v4l-subdev2`, ...).
    pub devname: String,
    /// The device number, as `stat()` reports it in `st_rdev`.
    pub rdev: u64,
}

/// Reads a kernel uevent (`add@/devices/...\0ACTION=add\0SUBSYSTEM=video4linux\0...`): only
/// `add` and `remove` of video4linux device nodes are of interest, everything else is `None`.
pub fn parse(message: &[u8]) -> Option<Uevent> {
    let mut fields = message.split(|&b| b == 0).filter(|f| !f.is_empty());
    // The kernel's own messages start with ACTION@DEVPATH; udev's start with "libudev".
    if !fields.next()?.contains(&b'@') {
        return None;
    }
    let (mut action, mut subsystem, mut devname, mut major, mut minor) =
        (None, None, None, None, None);
    for field in fields {
        let field = std::str::from_utf8(field).ok()?;
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key {
            "ACTION" => action = Some(value),
            "SUBSYSTEM" => subsystem = Some(value),
            "DEVNAME" => devname = Some(value),
            "MAJOR" => major = value.parse::<u64>().ok(),
            "MINOR" => minor = value.parse::<u64>().ok(),
            _ => {}
        }
    }
    if subsystem? != "video4linux" {
        return None;
    }
    let action = match action? {
        "add" => Action::Add,
        "remove" => Action::Remove,
        _ => return None,
    };
    // DEVNAME is relative to /dev; a path of its own would be a node this crate does not list.
    let devname = devname?;
    if devname.is_empty() || devname.contains('/') {
        return None;
    }
    Some(Uevent {
        action,
        devname: devname.to_owned(),
        rdev: nix::sys::stat::makedev(major?, minor?),
    })
}

/// What ended a wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// `stop()` was called, now or before.
    Stopped,
    TimedOut,
    /// The socket had messages: these video4linux events among them (maybe none). `lost` says
    /// that the socket's buffer overflowed, so that events were dropped and any node may have
    /// changed.
    Events {
        events: Vec<Uevent>,
        lost: bool,
    },
}

/// A wait for video4linux uevents (or, without a socket, for a time) that another thread can
/// end with `stop()`. Only one thread waits; any may stop it.
pub struct Hotplug {
    uevents: Option<OwnedFd>,
    waker: EventFd,
    stopped: AtomicBool,
}

impl Hotplug {
    /// Subscribes to the kernel's uevents. Fails where netlink is not allowed (some sandboxes)
    /// or not there.
    pub fn kernel_events() -> Result<Hotplug> {
        let uevents = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .map_err(|errno| Error::new("socket", NAME, errno))?;
        // Port 0: the kernel picks a free one for this socket.
        bind(uevents.as_raw_fd(), &NetlinkAddr::new(0, KERNEL_GROUP))
            .map_err(|errno| Error::new("bind", NAME, errno))?;
        Ok(Hotplug {
            uevents: Some(uevents),
            ..Hotplug::timer()?
        })
    }

    /// No events: a wait only ends on `stop()` or when its time is up.
    pub fn timer() -> Result<Hotplug> {
        let waker = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(|errno| Error::new("eventfd", NAME, errno))?;
        Ok(Hotplug {
            uevents: None,
            waker,
            stopped: AtomicBool::new(false),
        })
    }

    pub fn has_events(&self) -> bool {
        self.uevents.is_some()
    }

    /// Ends the current wait and every later one at once.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = self.waker.write(1);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Waits until events come, `stop()` is called, or `timeout` (if any) passes.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Woken> {
        self.wait_on(self.uevents.as_ref(), timeout)
    }

    /// Waits until `stop()` is called or `timeout` passes, whatever events come meanwhile.
    pub fn sleep(&self, timeout: Duration) -> Result<Woken> {
        self.wait_on(None, Some(timeout))
    }

    fn wait_on(&self, uevents: Option<&OwnedFd>, timeout: Option<Duration>) -> Result<Woken> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.is_stopped() {
                return Ok(Woken::Stopped);
            }
            let left = super::deadline::timeout_until(deadline);
            let mut fds = vec![PollFd::new(self.waker.as_fd(), PollFlags::POLLIN)];
            if let Some(uevents) = uevents {
                fds.push(PollFd::new(uevents.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, left) {
                Ok(0) => return Ok(Woken::TimedOut),
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(Error::new("poll", NAME, errno)),
            }
            let readable = |fd: &PollFd| !fd.revents().unwrap_or(PollFlags::empty()).is_empty();
            if readable(&fds[0]) && self.is_stopped() {
                return Ok(Woken::Stopped);
            }
            if fds.get(1).is_some_and(readable) {
                return self
                    .read_events()
                    .map(|(events, lost)| Woken::Events { events, lost });
            }
        }
    }

    /// The uevent socket, for a caller that polls it together with fds of its own (the
    /// element's wait for a lost device); `read_events` when it is readable.
    pub fn socket(&self) -> Option<BorrowedFd<'_>> {
        self.uevents.as_ref().map(|fd| fd.as_fd())
    }

    /// Everything the socket holds now, kept to the video4linux events the kernel sent, and
    /// whether some were lost to an overflow. Never blocks.
    pub fn read_events(&self) -> Result<(Vec<Uevent>, bool)> {
        let Some(uevents) = &self.uevents else {
            return Ok((Vec::new(), false));
        };
        let mut buf = vec![0u8; MESSAGE_SIZE];
        let (mut events, mut lost) = (Vec::new(), false);
        for _ in 0..MESSAGES_PER_WAKE {
            match recvfrom::<NetlinkAddr>(uevents.as_raw_fd(), &mut buf) {
                // Only the kernel (port 0) speaks for the kernel: anything else sent to the
                // group is ignored.
                Ok((len, Some(from))) if from.pid() == 0 => {
                    events.extend(parse(&buf[..len.min(buf.len())]));
                }
                Ok(_) => {}
                Err(Errno::EAGAIN) => return Ok((events, lost)),
                Err(Errno::EINTR) => {}
                // The socket's buffer overflowed: some events are lost, later ones still come.
                Err(Errno::ENOBUFS) => lost = true,
                Err(errno) => return Err(Error::new("recvfrom", NAME, errno)),
            }
        }
        Ok((events, lost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(fields: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for field in fields {
            out.extend_from_slice(field.as_bytes());
            out.push(0);
        }
        out
    }

    const ADD: &[&str] = &[
        "add@/devices/platform/vivid.0/video4linux/video0",
        "ACTION=add",
        "DEVPATH=/devices/platform/vivid.0/video4linux/video0",
        "SUBSYSTEM=video4linux",
        "MAJOR=81",
        "MINOR=3",
        "DEVNAME=video0",
        "SEQNUM=2412",
    ];

    #[test]
    fn reads_an_add_and_a_remove() {
        assert_eq!(
            parse(&message(ADD)),
            Some(Uevent {
                action: Action::Add,
                devname: "video0".into(),
                rdev: nix::sys::stat::makedev(81, 3),
            })
        );
        let remove: Vec<String> = ADD.iter().map(|f| f.replace("add", "remove")).collect();
        let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
        assert_eq!(
            parse(&message(&remove)).map(|e| e.action),
            Some(Action::Remove)
        );
    }

    #[test]
    fn ignores_other_subsystems_actions_and_udevs_messages() {
        let other = |from: &str, to: &str| {
            let fields: Vec<String> = ADD.iter().map(|f| f.replace(from, to)).collect();
            parse(&message(
                &fields.iter().map(String::as_str).collect::<Vec<_>>(),
            ))
        };
        assert_eq!(other("SUBSYSTEM=video4linux", "SUBSYSTEM=usb"), None);
        assert_eq!(other("ACTION=add", "ACTION=change"), None);
        assert_eq!(other("add@", "libudev"), None);
        assert_eq!(other("DEVNAME=video0", "DEVNAME=v4l/video0"), None);
        assert_eq!(other("MAJOR=81", "MAJOR=x"), None);
        // A device without a node (no MAJOR/MINOR/DEVNAME) is nothing to look at.
        assert_eq!(parse(&message(&ADD[..4])), None);
        assert_eq!(parse(b""), None);
    }

    #[test]
    fn the_initial_user_namespace_is_recognised() {
        // Whatever namespace the tests run in, the answer must agree with what /proc shows.
        let link = std::fs::read_link("/proc/self/ns/user").unwrap();
        let initial = link.to_str() == Some(&format!("user:[{INITIAL_USER_NS}]"));
        assert_eq!(events_reach_this_process(), initial, "{}", link.display());
    }

    #[test]
    fn stop_ends_a_wait_from_another_thread_at_once() {
        let hotplug = std::sync::Arc::new(Hotplug::timer().unwrap());
        assert!(!hotplug.has_events());
        assert_eq!(
            hotplug.wait(Some(Duration::from_millis(20))).unwrap(),
            Woken::TimedOut
        );
        let stopper = std::sync::Arc::clone(&hotplug);
        let started = Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            stopper.stop();
        });
        assert_eq!(hotplug.wait(None).unwrap(), Woken::Stopped);
        t.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        // Stopped stays stopped.
        assert_eq!(hotplug.wait(None).unwrap(), Woken::Stopped);
    }
}
