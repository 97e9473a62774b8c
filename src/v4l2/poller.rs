//! Waiting for a frame: poll on the device plus an eventfd, so that another thread (the
//! element's `unlock`) can end a wait at once. The flushing flag and the eventfd are the only
//! things `unlock` touches; nothing here takes an element lock.

use super::deadline::timeout_until;
use super::error::{Error, Result};
use super::hotplug::{Hotplug, Uevent};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    /// A buffer is ready to dequeue.
    Ready,
    /// The driver has an event to dequeue (`POLLPRI`: a source change on a capture card's
    /// input, where subscribed); comes before `Ready` when both are true.
    Event,
    /// `set_flushing(true)` was called: stop waiting.
    Flushing,
    TimedOut,
    /// The device reports an error (`POLLERR`/`POLLHUP`): unplugged, or the stream broke.
    DeviceError,
}

/// What ended a wait for hot-plug events.
#[derive(Debug, PartialEq, Eq)]
pub enum Awaited {
    Flushing,
    TimedOut,
    /// The uevent socket had messages: these video4linux events among them (maybe none);
    /// `lost` says that some were dropped, so that any node may have changed.
    Events {
        events: Vec<Uevent>,
        lost: bool,
    },
}

pub struct Poller {
    waker: EventFd,
    flushing: AtomicBool,
}

impl Poller {
    pub fn new() -> Result<Poller> {
        let waker = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(|errno| Error::new("eventfd", "(poller)", errno))?;
        Ok(Poller {
            waker,
            flushing: AtomicBool::new(false),
        })
    }

    /// Wakes (true) any current and future wait until cleared (false).
    pub fn set_flushing(&self, flushing: bool) {
        self.flushing.store(flushing, Ordering::SeqCst);
        if flushing {
            let _ = self.waker.write(1);
        } else {
            // Drain the counter so the next wait blocks again; EAGAIN just means it was empty.
            let _ = self.waker.read();
        }
    }

    pub fn is_flushing(&self) -> bool {
        self.flushing.load(Ordering::SeqCst)
    }

    /// Waits until the device has a frame or an event, the poller is flushed, or `timeout`
    /// passes.
    pub fn wait(&self, device: impl AsFd, path: &Path, timeout: Option<Duration>) -> Result<Wait> {
        self.wait_for(
            device,
            path,
            timeout,
            PollFlags::POLLIN | PollFlags::POLLPRI,
        )
    }

    /// Waits until the device has an event (a source change), the poller is flushed, or
    /// `timeout` passes: for a device that is not streaming, which would report `POLLERR` to
    /// a wait for frames.
    pub fn wait_event(
        &self,
        device: impl AsFd,
        path: &Path,
        timeout: Option<Duration>,
    ) -> Result<Wait> {
        self.wait_for(device, path, timeout, PollFlags::POLLPRI)
    }

    fn wait_for(
        &self,
        device: impl AsFd,
        path: &Path,
        timeout: Option<Duration>,
        events: PollFlags,
    ) -> Result<Wait> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.is_flushing() {
                return Ok(Wait::Flushing);
            }
            let remaining = timeout_until(deadline);
            let mut fds = [
                PollFd::new(device.as_fd(), events),
                PollFd::new(self.waker.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, remaining) {
                Ok(0) => return Ok(Wait::TimedOut),
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(Error::new("poll", path, errno)),
            }
            let dev = fds[0].revents().unwrap_or(PollFlags::empty());
            let woken = fds[1].revents().unwrap_or(PollFlags::empty());
            if !woken.is_empty() && self.is_flushing() {
                return Ok(Wait::Flushing);
            }
            if dev.intersects(PollFlags::POLLPRI) {
                return Ok(Wait::Event);
            }
            if dev.intersects(PollFlags::POLLIN) {
                return Ok(Wait::Ready);
            }
            if dev.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                return Ok(Wait::DeviceError);
            }
            if !woken.is_empty() {
                // A stale wake from an earlier flush: drain it and wait again.
                let _ = self.waker.read();
            }
        }
    }
}

impl Poller {
    /// Waits until `hotplug` has events (when it listens for them: otherwise only the other
    /// two end the wait), the poller is flushed, or `timeout` passes. The element waits for a
    /// lost device so, and `set_flushing` ends that at once as it ends a wait for a frame.
    pub fn wait_hotplug(
        &self,
        hotplug: Option<&Hotplug>,
        timeout: Option<Duration>,
    ) -> Result<Awaited> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.is_flushing() {
                return Ok(Awaited::Flushing);
            }
            let remaining = timeout_until(deadline);
            let mut fds = vec![PollFd::new(self.waker.as_fd(), PollFlags::POLLIN)];
            if let Some(socket) = hotplug.and_then(Hotplug::socket) {
                fds.push(PollFd::new(socket, PollFlags::POLLIN));
            }
            match poll(&mut fds, remaining) {
                Ok(0) => return Ok(Awaited::TimedOut),
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(Error::new("poll", "(uevent socket)", errno)),
            }
            let woken = fds[0].revents().unwrap_or(PollFlags::empty());
            if !woken.is_empty() && self.is_flushing() {
                return Ok(Awaited::Flushing);
            }
            // POLLERR on a netlink socket is an overflow (ENOBUFS), which reading clears.
            if fds
                .get(1)
                .is_some_and(|fd| !fd.revents().unwrap_or(PollFlags::empty()).is_empty())
                && let Some(hotplug) = hotplug
            {
                let (events, lost) = hotplug.read_events()?;
                return Ok(Awaited::Events { events, lost });
            }
            if !woken.is_empty() {
                let _ = self.waker.read();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn flushing_ends_a_wait_from_another_thread_at_once() {
        let poller = Arc::new(Poller::new().unwrap());
        // A pipe's read end never becomes readable while its write end stays open and silent.
        let (rx, _tx) = nix::unistd::pipe().unwrap();
        let waker = Arc::clone(&poller);
        let started = Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.set_flushing(true);
        });
        let got = poller
            .wait(&rx, Path::new("pipe"), Some(Duration::from_secs(10)))
            .unwrap();
        t.join().unwrap();
        assert_eq!(got, Wait::Flushing);
        assert!(started.elapsed() < Duration::from_secs(2));

        poller.set_flushing(false);
        let got = poller
            .wait(&rx, Path::new("pipe"), Some(Duration::from_millis(30)))
            .unwrap();
        assert_eq!(got, Wait::TimedOut);
    }

    #[test]
    fn flushing_ends_a_wait_for_hotplug_events_at_once() {
        let poller = Arc::new(Poller::new().unwrap());
        let hotplug = Hotplug::timer().unwrap();
        let got = poller
            .wait_hotplug(Some(&hotplug), Some(Duration::from_millis(20)))
            .unwrap();
        assert_eq!(got, Awaited::TimedOut);
        let waker = Arc::clone(&poller);
        let started = Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.set_flushing(true);
        });
        let got = poller.wait_hotplug(None, None).unwrap();
        t.join().unwrap();
        assert_eq!(got, Awaited::Flushing);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
