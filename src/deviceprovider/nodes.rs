//! The scan of `/dev/video*`: which nodes are there, which came or went since the last scan,
//! and which nodes a hot-plug event announced that are still awaited.
//!
//! Each node is opened, probed and closed once (`examine`), when it first shows up (or shows up
//! as another device, with a different device number): it is never held open, and rescans only
//! list the folder. A node that could not be opened (no permission yet, a driver error) is tried
//! again on the next scan, since udev may still be setting it up. A node an event announces is
//! looked at again, at growing intervals, until it can be examined or `SETTLE_TIMEOUT` passes.
//! Knows nothing of threads or of the GObject: `monitor.rs` says when to rescan.

use super::examine::{Examined, examine};
use super::log::CAT;
use crate::v4l2::hotplug::{Action, Uevent};
use gst::prelude::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the capture nodes are.
pub(super) const DEV_DIR: &str = "/dev";
/// How long a node that a hot-plug event announced may take to become one that can be examined:
/// udev may still be making it, or giving it its group and permissions.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(3);
/// The first wait before looking again at such a node; each later wait is twice as long.
const FIRST_RETRY: Duration = Duration::from_millis(10);

/// N of a `videoN` name. Names with anything after the number are not nodes the kernel creates.
fn video_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("video")?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `/dev/videoN` character devices in `dir` with their device numbers, in the order of N.
fn list_nodes(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut nodes: Vec<(u64, PathBuf, u64)> = entries
        .flatten()
        .filter_map(|entry| {
            let number = video_number(entry.file_name().to_str()?)?;
            let path = entry.path();
            // Follows a symlink: what matters is the device it leads to.
            let meta = std::fs::metadata(&path).ok()?;
            meta.file_type()
                .is_char_device()
                .then(|| (number, path, meta.rdev()))
        })
        .collect();
    nodes.sort();
    nodes
        .into_iter()
        .map(|(_, path, rdev)| (path, rdev))
        .collect()
}

/// What changed between the nodes known (path -> device number) and those `present` now: the
/// paths that are gone and the nodes that are new. A path whose device number changed is both:
/// the old device went away and another took its place.
fn diff(
    known: &BTreeMap<PathBuf, u64>,
    present: &[(PathBuf, u64)],
) -> (Vec<PathBuf>, Vec<(PathBuf, u64)>) {
    let now: BTreeMap<&PathBuf, u64> = present.iter().map(|(p, r)| (p, *r)).collect();
    let gone = known
        .iter()
        .filter(|(path, rdev)| now.get(path) != Some(rdev))
        .map(|(path, _)| path.clone())
        .collect();
    let new = present
        .iter()
        .filter(|(path, rdev)| known.get(path) != Some(rdev))
        .cloned()
        .collect();
    (gone, new)
}

/// A node seen on the last scan that turned out to be a capture device or not one.
struct Node {
    rdev: u64,
    /// `None` for a node that is not a capture device this element can use.
    device: Option<super::RustV4l2Device>,
}

/// A node that a hot-plug event announced and that has not been examined yet.
struct Awaited {
    rdev: u64,
    announced: Instant,
    /// When to look again, and how long to wait after that.
    next: Instant,
    delay: Duration,
    /// Why the last look did not settle it.
    why: String,
}

/// The nodes of the last scan, and what each turned out to be.
pub(super) struct Nodes {
    dir: PathBuf,
    known: BTreeMap<PathBuf, Node>,
    /// Nodes that could not be examined, left out of `known` so that each scan tries them again.
    failing: BTreeMap<PathBuf, u64>,
    /// Announced nodes not settled yet: their failures are expected for a moment, not news.
    awaited: BTreeMap<PathBuf, Awaited>,
}

/// The devices a rescan found gone and new.
#[derive(Default)]
pub(super) struct Changes {
    pub(super) removed: Vec<super::RustV4l2Device>,
    pub(super) added: Vec<super::RustV4l2Device>,
}

impl Changes {
    pub(super) fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

impl Nodes {
    pub(super) fn new(dir: &Path) -> Self {
        Nodes {
            dir: dir.to_owned(),
            known: BTreeMap::new(),
            failing: BTreeMap::new(),
            awaited: BTreeMap::new(),
        }
    }

    /// Takes note of a hot-plug event; the caller rescans after it. A device the kernel says
    /// is gone is gone at once, under every path that leads to it, even where its node is
    /// left behind (a node made by hand, a udev slower than the event).
    pub(super) fn announced(&mut self, event: &Uevent, now: Instant) -> Vec<super::RustV4l2Device> {
        let path = self.dir.join(&event.devname);
        match event.action {
            Action::Add => {
                gst::debug!(CAT, "Hot-plug event: {} added", path.display());
                // Only videoN nodes are listed; v4l-subdevN, radioN and the like are not.
                if video_number(&event.devname).is_some() {
                    self.awaited.insert(
                        path,
                        Awaited {
                            rdev: event.rdev,
                            announced: now,
                            next: now,
                            delay: FIRST_RETRY,
                            why: "the node did not appear".into(),
                        },
                    );
                }
                Vec::new()
            }
            Action::Remove => {
                gst::debug!(CAT, "Hot-plug event: {} removed", path.display());
                self.awaited.retain(|_, awaited| awaited.rdev != event.rdev);
                let gone: Vec<PathBuf> = self
                    .known
                    .iter()
                    .filter(|(_, node)| node.rdev == event.rdev)
                    .map(|(path, _)| path.clone())
                    .collect();
                gone.iter().filter_map(|path| self.forget(path)).collect()
            }
        }
    }

    /// Drops a known node; the capture device it was, if it was one.
    fn forget(&mut self, path: &Path) -> Option<super::RustV4l2Device> {
        let device = self.known.remove(path)?.device?;
        gst::info!(CAT, "{} is gone", path.display());
        Some(device)
    }

    /// After a rescan: forgets the announced nodes that are now known, or that took too long,
    /// and says when to look at the others again.
    pub(super) fn settle(&mut self, now: Instant) {
        let known = &self.known;
        self.awaited.retain(|path, awaited| {
            if known
                .get(path)
                .is_some_and(|node| node.rdev == awaited.rdev)
            {
                gst::debug!(
                    CAT,
                    "{} settled {:?} after its event",
                    path.display(),
                    now.duration_since(awaited.announced)
                );
                return false;
            }
            if now.duration_since(awaited.announced) >= SETTLE_TIMEOUT {
                gst::warning!(
                    CAT,
                    "Cannot examine {}, announced {:?} ago: {}; it is looked at again on the next \
                     hot-plug event",
                    path.display(),
                    SETTLE_TIMEOUT,
                    awaited.why
                );
                return false;
            }
            // The last look comes at SETTLE_TIMEOUT itself, not a doubled wait after it.
            awaited.next = (now + awaited.delay).min(awaited.announced + SETTLE_TIMEOUT);
            awaited.delay *= 2;
            true
        });
    }

    /// When an announced node is due for another look, if any is.
    pub(super) fn next_look(&self) -> Option<Instant> {
        self.awaited.values().map(|awaited| awaited.next).min()
    }

    pub(super) fn rescan(&mut self) -> Changes {
        let present = list_nodes(&self.dir);
        let settled: BTreeMap<PathBuf, u64> = self
            .known
            .iter()
            .map(|(path, node)| (path.clone(), node.rdev))
            .collect();
        let (gone, new) = diff(&settled, &present);
        self.failing
            .retain(|path, rdev| present.iter().any(|(p, r)| p == path && r == rdev));
        let mut changes = Changes {
            removed: gone.iter().filter_map(|path| self.forget(path)).collect(),
            ..Changes::default()
        };
        for (path, rdev) in new {
            let device = match examine(&path) {
                Examined::Capture(device) => {
                    gst::info!(
                        CAT,
                        "{}: capture device '{}'",
                        path.display(),
                        device.display_name()
                    );
                    changes.added.push(device.clone());
                    Some(device)
                }
                Examined::Skipped(why) => {
                    gst::debug!(CAT, "Skipping {}: {}", path.display(), why);
                    None
                }
                Examined::Failed(why) => {
                    // Said once; the retries on every scan after that stay quiet. A node just
                    // announced is expected to fail for a moment: `settle` speaks for it.
                    let again = self.failing.insert(path.clone(), rdev).is_some();
                    if let Some(awaited) = self.awaited.get_mut(&path) {
                        gst::debug!(CAT, "{} not ready yet: {}", path.display(), why);
                        awaited.why = why;
                    } else if again {
                        gst::trace!(CAT, "Still cannot examine {}: {}", path.display(), why);
                    } else {
                        gst::warning!(CAT, "Cannot examine {}: {}", path.display(), why);
                    }
                    continue;
                }
            };
            self.failing.remove(&path);
            self.known.insert(path, Node { rdev, device });
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(entries: &[(&str, u64)]) -> BTreeMap<PathBuf, u64> {
        entries
            .iter()
            .map(|(p, r)| (PathBuf::from(p), *r))
            .collect()
    }

    fn present(entries: &[(&str, u64)]) -> Vec<(PathBuf, u64)> {
        entries
            .iter()
            .map(|(p, r)| (PathBuf::from(p), *r))
            .collect()
    }

    #[test]
    fn nothing_changed() {
        let (gone, new) = diff(
            &known(&[("/dev/video0", 1), ("/dev/video1", 2)]),
            &present(&[("/dev/video0", 1), ("/dev/video1", 2)]),
        );
        assert!(gone.is_empty());
        assert!(new.is_empty());
    }

    #[test]
    fn nodes_come_and_go() {
        let (gone, new) = diff(
            &known(&[("/dev/video0", 1), ("/dev/video1", 2)]),
            &present(&[("/dev/video0", 1), ("/dev/video2", 3)]),
        );
        assert_eq!(gone, vec![PathBuf::from("/dev/video1")]);
        assert_eq!(new, present(&[("/dev/video2", 3)]));
    }

    #[test]
    fn a_path_taken_by_another_device_is_gone_and_new() {
        let (gone, new) = diff(
            &known(&[("/dev/video0", 1)]),
            &present(&[("/dev/video0", 7)]),
        );
        assert_eq!(gone, vec![PathBuf::from("/dev/video0")]);
        assert_eq!(new, present(&[("/dev/video0", 7)]));
    }

    /// A scratch folder for `Nodes`, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("rustv4l2-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create a scratch folder");
            Scratch(dir)
        }

        /// A node in it: a symlink to /dev/null, a character device that is no V4L2 device.
        fn add(&self, name: &str) {
            std::os::unix::fs::symlink("/dev/null", self.0.join(name)).expect("symlink");
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn null_rdev() -> u64 {
        std::fs::metadata("/dev/null")
            .expect("stat /dev/null")
            .rdev()
    }

    fn event(action: Action, devname: &str) -> Uevent {
        Uevent {
            action,
            devname: devname.into(),
            rdev: null_rdev(),
        }
    }

    #[test]
    fn an_announced_node_is_looked_at_again_until_it_is_there() {
        gst::init().expect("GStreamer initialises");
        let dir = Scratch::new("awaited");
        let mut nodes = Nodes::new(&dir.0);
        let t0 = Instant::now();
        assert!(
            nodes
                .announced(&event(Action::Add, "video5"), t0)
                .is_empty()
        );
        assert_eq!(nodes.next_look(), Some(t0), "looked at at once");

        // Not there yet (udev has not made it): looked at again, each time after longer.
        nodes.rescan();
        nodes.settle(t0);
        assert_eq!(nodes.next_look(), Some(t0 + FIRST_RETRY));
        let t1 = t0 + FIRST_RETRY;
        nodes.rescan();
        nodes.settle(t1);
        assert_eq!(nodes.next_look(), Some(t1 + 2 * FIRST_RETRY));

        // There: examined (not a capture device, so no device), and no longer awaited.
        dir.add("video5");
        let changes = nodes.rescan();
        nodes.settle(t1 + 2 * FIRST_RETRY);
        assert!(changes.is_empty());
        assert_eq!(nodes.next_look(), None);
        assert!(nodes.known.contains_key(&dir.0.join("video5")));

        // Gone by the kernel's word, even though the node is left behind; and a later rescan
        // looks at the node afresh.
        assert!(
            nodes
                .announced(&event(Action::Remove, "video5"), t0)
                .is_empty()
        );
        assert!(nodes.known.is_empty());
        nodes.rescan();
        assert!(nodes.known.contains_key(&dir.0.join("video5")));
    }

    #[test]
    fn an_announced_node_that_never_comes_is_given_up() {
        gst::init().expect("GStreamer initialises");
        let dir = Scratch::new("given-up");
        let mut nodes = Nodes::new(&dir.0);
        let t0 = Instant::now();
        nodes.announced(&event(Action::Add, "video5"), t0);
        // Looks at growing intervals, the last one at SETTLE_TIMEOUT, then gives up.
        let mut now = t0;
        let mut looks = 0;
        while let Some(next) = nodes.next_look() {
            assert!(next <= t0 + SETTLE_TIMEOUT, "looks after the timeout");
            now = next;
            nodes.rescan();
            nodes.settle(now);
            looks += 1;
            assert!(looks < 20, "never gives up");
        }
        assert_eq!(now, t0 + SETTLE_TIMEOUT);
    }

    #[test]
    fn only_video_nodes_are_awaited_and_a_removal_ends_the_wait() {
        gst::init().expect("GStreamer initialises");
        let dir = Scratch::new("removal");
        let mut nodes = Nodes::new(&dir.0);
        let t0 = Instant::now();
        nodes.announced(&event(Action::Add, "v4l-subdev0"), t0);
        assert_eq!(nodes.next_look(), None);
        nodes.announced(&event(Action::Add, "video7"), t0);
        assert!(nodes.next_look().is_some());
        nodes.announced(&event(Action::Remove, "video7"), t0);
        assert_eq!(nodes.next_look(), None);
    }

    #[test]
    fn lists_only_video_character_devices_in_number_order() {
        let dir = std::env::temp_dir().join(format!("rustv4l2-nodes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a scratch folder");
        // Regular files and other names: none is a capture node.
        for name in ["video0", "video", "video1x", "video+2", "media0"] {
            std::fs::write(dir.join(name), b"").expect("create a scratch file");
        }
        // A character device under a video name, through a symlink to one that exists anywhere.
        std::os::unix::fs::symlink("/dev/null", dir.join("video10")).expect("symlink");
        std::os::unix::fs::symlink("/dev/null", dir.join("video9")).expect("symlink");
        std::os::unix::fs::symlink("/dev/null", dir.join("video+3")).expect("symlink");
        let nodes = list_nodes(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let names: Vec<_> = nodes
            .iter()
            .map(|(p, _)| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["video9", "video10"]);
    }
}
