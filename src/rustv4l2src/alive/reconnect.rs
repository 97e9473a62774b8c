//! Unplug and replug (`reconnect`): saying that the device went away, waiting for the same
//! device to come back while GAP events keep downstream going, and bringing it back.
//!
//! The wait runs in `create()`, on the streaming thread: it polls the kernel's hot-plug events
//! together with the element's poller, so `unlock()` ends it at once, and wakes otherwise only
//! when a GAP event is due (none before the first caps: there is no stream to pace yet) or
//! `reconnect-timeout` passes. Which node is the device is `Finder`'s business: the target of a
//! stable `/dev/v4l/...` link, else a node whose identity matches the one saved at open.
//! Reopening goes through `Session::open` and renegotiation through BaseSrc's `negotiate()`,
//! which runs the element's negotiation and allocation, as at start.
//!
//! Nothing is posted while a lock is held.

use crate::rustv4l2src::face::settings::Settings;
use crate::rustv4l2src::face::stats::Stats;
use crate::rustv4l2src::knobs::controls::{self, Which};
use crate::rustv4l2src::shared::{CAT, lock, post_element_message};
use crate::rustv4l2src::stream::session::{Gone, Session};
use crate::rustv4l2src::stream::timeline::{self, GapStep, Gaps};
use crate::v4l2::hotplug::{self, Action, Uevent};
use crate::v4l2::{Awaited, Device, Hotplug, Identity, Poller};
use gst::prelude::*;
use gst_base::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where capture nodes are.
const DEV_DIR: &str = "/dev";
/// Where udev makes the stable links to them.
const STABLE_LINKS: &str = "/dev/v4l/";
/// How long after a hot-plug event a node (or udev's link to it) may take to become usable,
/// looked at again at growing intervals from `FIRST_RETRY`.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(3);
const FIRST_RETRY: Duration = Duration::from_millis(10);
/// Without hot-plug events (a sandbox, a container), how often to look for the device.
const LOOK_WITHOUT_EVENTS: Duration = Duration::from_secs(1);
/// The GAP length when the lost stream had no fixed frame rate.
const DEFAULT_GAP: gst::ClockTime = gst::ClockTime::from_mseconds(100);

/// Says on the bus that the device at `path` went away (`reason`: what the kernel answered):
/// one warning and `rustv4l2src-device-lost`, and counts it.
pub(in crate::rustv4l2src) fn announce_lost(
    element: &gst::Element,
    stats: &Mutex<Stats>,
    session: &Mutex<Session>,
    path: &str,
    reason: &str,
) {
    {
        let since = lock(session).lost().map(|gone| gone.since);
        let mut stats = lock(stats);
        stats.disconnects = stats.disconnects.saturating_add(1);
        stats.begin_wait(since.unwrap_or_else(Instant::now));
    }
    gst::element_warning!(
        element,
        gst::ResourceError::NotFound,
        (
            "Device '{}' was disconnected ({}). Waiting for it to come back (reconnect=true); \
             GAP events are sent meanwhile.",
            path,
            reason
        )
    );
    post_element_message(
        element,
        gst::Structure::builder("rustv4l2src-device-lost")
            .field("device", path)
            .field("reason", reason)
            .build(),
    );
}

/// The device at `path` went away outside the capture loop's wait for a frame (as its stream
/// starts, or while its signal is away): the session lets go of it, keeping `error` to post
/// should it not come back in time, and the loss is said as `announce_lost` says it, unless the
/// device is being brought back from a loss already told.
pub(in crate::rustv4l2src) fn lose(
    element: &gst::Element,
    stats: &Mutex<Stats>,
    session: &Mutex<Session>,
    path: &str,
    reason: &str,
    error: gst::ErrorMessage,
) {
    lock(session).lose(error);
    if lock(stats).waiting_since.is_none() {
        announce_lost(element, stats, session, path, reason);
    }
}

/// Says once that the device at `path` is not there at start and will be waited for.
pub(in crate::rustv4l2src) fn announce_absent(element: &gst::Element, path: &str) {
    gst::element_warning!(
        element,
        gst::ResourceError::NotFound,
        (
            "Device '{}' is not there. Waiting for it to appear (reconnect=true).",
            path
        )
    );
}

/// What the wait needs of the element.
pub(in crate::rustv4l2src) struct Reconnect<'a> {
    pub element: &'a gst_base::BaseSrc,
    pub session: &'a Mutex<Session>,
    pub stats: &'a Mutex<Stats>,
    pub poller: Arc<Poller>,
    pub settings: &'a Mutex<Settings>,
}

impl Reconnect<'_> {
    /// Waits until the lost device is back, open and negotiated, sending GAP events meanwhile.
    /// `Flushing` when `unlock()` ends the wait (it goes on at the next `create()`), an error
    /// (posted) once `reconnect-timeout` has passed.
    pub fn wait(&self) -> Result<(), gst::FlowError> {
        let Some(gone) = lock(self.session).lost().cloned() else {
            return Ok(());
        };
        lock(self.stats).begin_wait(gone.since);
        // Copied only now that there is a device to wait for: never on the way to a frame.
        let settings = lock(self.settings).clone();
        let element = self.element.upcast_ref::<gst::Element>();
        // Listen first, then look: a device that came back in between is found by the look.
        let hotplug = listen();
        let mut finder = Finder::new(&settings.device, gone.identity.clone());
        let timeout = (settings.reconnect_timeout_s > 0)
            .then(|| Duration::from_secs(settings.reconnect_timeout_s.into()));
        let mut gaps = self.gaps(&gone);
        gst::debug!(
            CAT,
            obj = element,
            "Waiting for {} ({}), GAP events {:?}",
            gone.path,
            finder.describe(),
            gaps.map(|g| g.duration())
        );
        loop {
            if let Some(found) = finder.look() {
                match self.reopen(&found, &gone, &settings) {
                    Ok(()) => return Ok(()),
                    Err(Retry::Later) => finder.retry(&found),
                    Err(Retry::Stop(flow)) => return Err(flow),
                }
            }
            let now = Instant::now();
            let mut wait = finder.next_look(now);
            if let Some(timeout) = timeout {
                let left = timeout.saturating_sub(gone.since.elapsed());
                if left.is_zero() {
                    return Err(self.give_up(&gone, timeout));
                }
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
            if let Some(g) = gaps.as_mut() {
                let due = self.push_due_gaps(g);
                wait = Some(wait.map_or(due, |w| w.min(due)));
            }
            if hotplug.is_none() {
                wait = Some(wait.map_or(LOOK_WITHOUT_EVENTS, |w| w.min(LOOK_WITHOUT_EVENTS)));
            }
            match self.poller.wait_hotplug(hotplug.as_ref(), wait) {
                Ok(Awaited::Flushing) => return Err(gst::FlowError::Flushing),
                Ok(Awaited::TimedOut) => {
                    if hotplug.is_none() {
                        finder.look_everywhere();
                    }
                }
                Ok(Awaited::Events { events, lost }) => finder.note(&events, lost, Instant::now()),
                Err(e) => {
                    gst::warning!(CAT, obj = element, "Waiting for hot-plug events: {}", e);
                    // Poll once more after a pause rather than spin on a broken socket.
                    std::thread::sleep(LOOK_WITHOUT_EVENTS);
                    finder.look_everywhere();
                }
            }
        }
    }

    fn gaps(&self, gone: &Gone) -> Option<Gaps> {
        timeline::gaps_after(
            self.element,
            gone.last_pts,
            gone.frame_duration,
            DEFAULT_GAP,
        )
    }

    fn running_time(&self) -> Option<gst::ClockTime> {
        timeline::running_time(self.element)
    }

    /// Sends the GAP events whose time has come; returns how long until the next is due.
    fn push_due_gaps(&self, gaps: &mut Gaps) -> Duration {
        let Some(now) = self.running_time() else {
            return gaps.duration().into();
        };
        loop {
            match gaps.step(now) {
                GapStep::Push(ts) => {
                    gst::trace!(CAT, obj = self.element, "GAP at {}", ts);
                    timeline::push_gap(self.element, ts, gaps.duration());
                    // The next stream's PTS come after it.
                    if let Session::Lost(gone) = &mut *lock(self.session) {
                        gone.last_pts = Some(ts);
                    }
                }
                GapStep::Wait(due) => return due.into(),
            }
        }
    }

    /// Past `reconnect-timeout`: the error an unplug posts without `reconnect`.
    fn give_up(&self, gone: &Gone, timeout: Duration) -> gst::FlowError {
        gst::info!(
            CAT,
            obj = self.element,
            "{} did not come back within {:?}",
            gone.path,
            timeout
        );
        lock(self.stats).end_wait();
        self.element.post_error_message(gone.error.clone());
        gst::FlowError::Error
    }

    /// Opens the device found at `path`, applies the control properties, renegotiates and
    /// says it is back.
    fn reopen(&self, path: &Path, gone: &Gone, settings: &Settings) -> Result<(), Retry> {
        let element = self.element.upcast_ref::<gst::Element>();
        let path_str = path.to_string_lossy().into_owned();
        let mut opened = match Session::open(&path_str, settings) {
            Ok(opened) => opened,
            Err(unopened) => {
                // Not ready yet (udev still setting it up), or gone again: keep waiting.
                gst::debug!(
                    CAT,
                    obj = element,
                    "{} is not usable yet: {:?}",
                    path_str,
                    unopened.error
                );
                return Err(Retry::Later);
            }
        };
        if let Some(identity) = &gone.identity
            && !opened.identity.same_device(identity)
        {
            gst::debug!(
                CAT,
                obj = element,
                "{} is {}, not {}",
                path_str,
                opened.identity,
                identity
            );
            return Err(Retry::Later);
        }
        opened.caps_before = gone.asked.clone();
        let warnings = controls::apply_controls(&opened.device, settings, Which::All).warnings;
        let floor = {
            let mut session = lock(self.session);
            let Some(now_gone) = session.lost() else {
                // Stopped meanwhile: what was found is not wanted any more.
                return Err(Retry::Stop(gst::FlowError::Flushing));
            };
            // The GAP events sent meanwhile moved it on.
            let floor = now_gone.last_pts;
            *session = Session::Open(opened);
            floor
        };
        for warning in warnings {
            gst::element_warning!(element, gst::ResourceError::Settings, ("{}", warning));
        }
        let before = self.element.src_pad().current_caps();
        if !self.element.negotiate() {
            gst::warning!(
                CAT,
                obj = element,
                "Renegotiation after the reconnect failed"
            );
            return Err(Retry::Stop(gst::FlowError::NotNegotiated));
        }
        {
            let mut session = lock(self.session);
            if session.lost().is_some() {
                // Gone again while negotiating (the element said so): wait on, for the stream
                // as it was.
                gst::info!(CAT, obj = element, "{} went away again", path_str);
                *session = Session::Lost(Gone {
                    last_pts: floor,
                    ..gone.clone()
                });
                return Err(Retry::Later);
            }
        }
        let latency_changed = {
            let mut session = lock(self.session);
            match session.stream_mut() {
                Some(stream) => {
                    if let Some(floor) = floor {
                        stream.pts.raise_to(floor);
                    }
                    gone.frame_duration.is_some() && stream.frame_duration != gone.frame_duration
                }
                None => false,
            }
        };
        let away = gone.since.elapsed();
        lock(self.stats).end_wait();
        gst::info!(
            CAT,
            obj = element,
            "{} is back at {} after {:?}",
            gone.path,
            path_str,
            away
        );
        let caps = self.element.src_pad().current_caps();
        if latency_changed {
            let _ = element.post_message(gst::message::Latency::builder().src(element).build());
        }
        post_element_message(
            element,
            gst::Structure::builder("rustv4l2src-device-restored")
                .field("device", &path_str)
                .field("seconds-away", away.as_secs_f64())
                .field("caps-changed", before.is_some() && before != caps)
                .build(),
        );
        Ok(())
    }
}

/// Why a found device was not brought back.
enum Retry {
    /// Not usable, or not the device: keep waiting.
    Later,
    /// Stop waiting with this flow return.
    Stop(gst::FlowError),
}

/// The kernel's hot-plug events, or, where they do not reach this process, none (the wait then
/// looks for the device every `LOOK_WITHOUT_EVENTS`).
fn listen() -> Option<Hotplug> {
    if !hotplug::events_reach_this_process() {
        gst::info!(
            CAT,
            "Hot-plug events do not reach this process (a user namespace): looking for the \
             device every {:?}",
            LOOK_WITHOUT_EVENTS
        );
        return None;
    }
    Hotplug::kernel_events()
        .map_err(|e| {
            gst::info!(
                CAT,
                "No hot-plug events ({}): looking for the device every {:?}",
                e,
                LOOK_WITHOUT_EVENTS
            );
        })
        .ok()
}

/// Where to look for the lost device, and when.
struct Finder {
    /// The `device` property.
    configured: PathBuf,
    /// It is a stable link: the device is wherever it points.
    link: bool,
    /// Who the device is; `None` for one never opened, which only the configured node can be.
    identity: Option<Identity>,
    /// Look at every node (first, and after lost events); else only at `announced` ones.
    everywhere: bool,
    /// Nodes that hot-plug events announced, looked at until they settle.
    announced: Vec<PathBuf>,
    /// Until when, and when next, to look at announced nodes (or the link) again.
    settle_until: Option<Instant>,
    next_retry: Option<(Instant, Duration)>,
}

impl Finder {
    fn new(configured: &str, identity: Option<Identity>) -> Finder {
        let configured = PathBuf::from(configured);
        let link = configured.starts_with(STABLE_LINKS)
            || std::fs::symlink_metadata(&configured).is_ok_and(|m| m.file_type().is_symlink());
        Finder {
            configured,
            link,
            identity,
            everywhere: true,
            announced: Vec::new(),
            settle_until: None,
            next_retry: None,
        }
    }

    fn describe(&self) -> String {
        match (&self.identity, self.link) {
            (_, true) => format!("following the link {}", self.configured.display()),
            (Some(identity), false) => format!("any node that is {identity}"),
            (None, false) => format!("at {}", self.configured.display()),
        }
    }

    /// Look at every node at the next `look()` (no events to tell which).
    fn look_everywhere(&mut self) {
        self.everywhere = true;
    }

    /// Takes in hot-plug events: video4linux nodes added are looked at next.
    fn note(&mut self, events: &[Uevent], lost: bool, now: Instant) {
        let added: Vec<PathBuf> = events
            .iter()
            .filter(|e| e.action == Action::Add)
            .map(|e| Path::new(DEV_DIR).join(&e.devname))
            .collect();
        if lost {
            self.everywhere = true;
        }
        if added.is_empty() && !lost {
            return;
        }
        for node in added {
            if !self.announced.contains(&node) {
                self.announced.push(node);
            }
        }
        self.settle_until = Some(now + SETTLE_TIMEOUT);
        self.next_retry = Some((now, FIRST_RETRY));
    }

    /// A node that was found but could not be used yet: look at it again later, while it
    /// settles.
    fn retry(&mut self, node: &Path) {
        if self.announced.iter().all(|n| n != node) {
            self.announced.push(node.to_owned());
        }
        if self.settle_until.is_none() {
            self.settle_until = Some(Instant::now() + SETTLE_TIMEOUT);
            self.next_retry = Some((Instant::now(), FIRST_RETRY));
        }
    }

    /// How long until announced nodes are to be looked at again, if any are.
    fn next_look(&mut self, now: Instant) -> Option<Duration> {
        if self.settle_until.is_some_and(|until| now >= until) {
            self.settle_until = None;
            self.next_retry = None;
            self.announced.clear();
        }
        self.next_retry
            .map(|(at, _)| at.saturating_duration_since(now))
    }

    /// The node the device is at now, if it is there; looks only where something may have
    /// changed since the last look.
    fn look(&mut self) -> Option<PathBuf> {
        let now = Instant::now();
        let due = self.next_retry.is_some_and(|(at, _)| now >= at);
        if due && let Some((_, step)) = self.next_retry {
            self.next_retry = Some((now + step, step.saturating_mul(2)));
        }
        let everywhere = std::mem::take(&mut self.everywhere);
        if !(everywhere || due) {
            return None;
        }
        if self.link {
            let target = std::fs::canonicalize(&self.configured).ok()?;
            return Some(target);
        }
        let Some(identity) = &self.identity else {
            return self.configured.exists().then(|| self.configured.clone());
        };
        let mut candidates = vec![self.configured.clone()];
        if everywhere {
            candidates.extend(video_nodes());
        } else {
            candidates.extend(self.announced.iter().cloned());
        }
        candidates.dedup();
        let found = candidates.into_iter().find(|node| {
            Device::open(node).is_ok_and(|device| Identity::of(&device).same_device(identity))
        });
        if let Some(found) = &found {
            self.announced.retain(|n| n != found);
        }
        found
    }
}

/// `/dev/videoN`, in the order of N.
fn video_nodes() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(DEV_DIR) else {
        return Vec::new();
    };
    let mut nodes: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let n = name.to_str()?.strip_prefix("video")?.parse().ok()?;
            Some((n, entry.path()))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, path)| path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(devname: &str) -> Uevent {
        Uevent {
            action: Action::Add,
            devname: devname.into(),
            rdev: 0,
        }
    }

    #[test]
    fn the_finder_looks_everywhere_first_then_where_events_point() {
        let mut finder = Finder::new("/nonexistent/video0", None);
        assert!(!finder.link);
        // A device never opened is only looked for at its configured node.
        assert_eq!(finder.look(), None);
        assert_eq!(finder.look(), None);
        assert_eq!(finder.next_look(Instant::now()), None);
        let now = Instant::now();
        finder.note(
            &[Uevent {
                action: Action::Remove,
                ..added("video3")
            }],
            false,
            now,
        );
        assert_eq!(finder.next_look(now), None);
        finder.note(&[added("video3")], false, now);
        assert_eq!(finder.announced, vec![PathBuf::from("/dev/video3")]);
        assert_eq!(finder.next_look(now), Some(Duration::ZERO));
        assert_eq!(finder.look(), None);
        // Looked at again at growing intervals, until the settle time is over.
        let next = finder.next_look(Instant::now()).unwrap();
        assert!(next <= FIRST_RETRY, "{next:?}");
        assert_eq!(finder.next_look(now + SETTLE_TIMEOUT), None);
        assert!(finder.announced.is_empty());
    }

    #[test]
    fn stable_links_are_followed() {
        let finder = Finder::new("/dev/v4l/by-id/usb-Cam_A1B2-video-index0", None);
        assert!(finder.link);
        assert!(finder.describe().contains("following the link"));
    }
}
