//! The GObject subclass behind `rustv4l2deviceprovider`, and the scan of `/dev/video*` it
//! rests on.
//!
//! Each node is opened, probed and closed once, when it first shows up (or shows up as another
//! device, with a different device number): it is never held open, and rescans only list the
//! folder. A node that could not be opened (no permission yet, a driver error) is tried again on
//! the next scan, since udev may still be setting it up.
//!
//! Locks: `monitor` is the provider's only one, and the scan thread never takes it (the thread
//! owns its list of known nodes), so `stop()` cannot wait on a thread that waits on it.

use crate::caps;
use crate::v4l2::{self, Device, FrameIntervals, OpenError, ProbedSize};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rustv4l2deviceprovider",
        gst::DebugColorFlags::empty(),
        Some("V4L2 capture device provider for rustv4l2src"),
    )
});

/// Where the capture nodes are. Without udev, nothing tells us when one appears: we look.
const DEV_DIR: &str = "/dev";
/// How often a started provider looks again.
const SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// The running scan thread.
struct Monitor {
    /// Dropping it wakes the thread at once and tells it to end.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

#[derive(Default)]
pub struct RustV4l2DeviceProvider {
    monitor: Mutex<Option<Monitor>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later call into a panic too.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `/dev/videoN` character devices in `dir` with their device numbers, in the order of N.
/// Names with anything after the number are not nodes the kernel creates, so they are left out.
fn list_nodes(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut nodes: Vec<(u64, PathBuf, u64)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let digits = name.to_str()?.strip_prefix("video")?;
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let number = digits.parse::<u64>().ok()?;
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

/// Fills in the frame intervals of every listed size. A driver that enumerates none is asked for
/// its current rate, as the element does, so the device shows the caps the element will offer.
fn probe_intervals(device: &Device, formats: &mut [v4l2::ProbedFormat]) -> Result<(), v4l2::Error> {
    for format in formats {
        let fourcc = format.fourcc;
        for size in &mut format.sizes {
            let mut found = match device.probe_intervals(fourcc, size) {
                Ok(found) => found,
                Err(e) if e.is_disconnect() => return Err(e),
                Err(e) => {
                    gst::warning!(CAT, "Probing frame intervals of {}: {}", fourcc, e);
                    FrameIntervals::Unknown
                }
            };
            if found == FrameIntervals::Unknown
                && let Ok(Some(current)) = device.g_parm()
            {
                found = FrameIntervals::Discrete(vec![current]);
            }
            match size {
                ProbedSize::Discrete { intervals, .. } | ProbedSize::Range { intervals, .. } => {
                    *intervals = found
                }
            }
        }
    }
    Ok(())
}

/// What a node turned out to be.
enum Examined {
    Capture(super::RustV4l2Device),
    /// Not a capture node this element can use; it stays that as long as it keeps its number.
    Skipped(String),
    /// Could not tell (no permission, a driver error): try again on the next scan.
    Failed(String),
}

/// Opens the node, probes everything it can capture, and closes it again.
fn examine(path: &Path) -> Examined {
    let device = match Device::open(path) {
        Ok(device) => device,
        Err(OpenError::NotCapture { card, device_caps }) => {
            return Examined::Skipped(format!(
                "'{card}' cannot capture with streaming I/O (device caps {device_caps:#010x})"
            ));
        }
        Err(OpenError::NotV4l2) => return Examined::Skipped("not a V4L2 device".into()),
        Err(OpenError::NotADevice) => return Examined::Skipped("not a device file".into()),
        Err(OpenError::NotFound) => {
            return Examined::Failed("gone before it could be opened".into());
        }
        Err(OpenError::Io(e)) => return Examined::Failed(e.to_string()),
    };
    let mut formats = match device.list_formats(|fourcc| caps::entry(fourcc).is_some()) {
        Ok(formats) => formats,
        Err(e) => return Examined::Failed(e.to_string()),
    };
    if let Err(e) = probe_intervals(&device, &mut formats) {
        return Examined::Failed(e.to_string());
    }
    let caps = caps::probed_to_caps(&formats);
    if caps.is_empty() {
        return Examined::Skipped(format!(
            "'{}' offers no format rustv4l2src can capture",
            device.capability().card
        ));
    }
    let path = path.display().to_string();
    Examined::Capture(super::RustV4l2Device::new(&path, device.capability(), caps))
}

/// A node seen on the last scan that turned out to be a capture device or not one.
struct Node {
    rdev: u64,
    /// `None` for a node that is not a capture device this element can use.
    device: Option<super::RustV4l2Device>,
}

/// The nodes of the last scan, and what each turned out to be.
struct Nodes {
    dir: PathBuf,
    known: BTreeMap<PathBuf, Node>,
    /// Nodes that could not be examined, left out of `known` so that each scan tries them again.
    failing: BTreeMap<PathBuf, u64>,
}

/// The devices a rescan found gone and new.
#[derive(Default)]
struct Changes {
    removed: Vec<super::RustV4l2Device>,
    added: Vec<super::RustV4l2Device>,
}

impl Nodes {
    fn new(dir: &Path) -> Self {
        Nodes {
            dir: dir.to_owned(),
            known: BTreeMap::new(),
            failing: BTreeMap::new(),
        }
    }

    fn rescan(&mut self) -> Changes {
        let present = list_nodes(&self.dir);
        let settled: BTreeMap<PathBuf, u64> = self
            .known
            .iter()
            .map(|(path, node)| (path.clone(), node.rdev))
            .collect();
        let (gone, new) = diff(&settled, &present);
        self.failing
            .retain(|path, rdev| present.iter().any(|(p, r)| p == path && r == rdev));
        let mut changes = Changes::default();
        for path in gone {
            if let Some(Node {
                device: Some(device),
                ..
            }) = self.known.remove(&path)
            {
                gst::info!(CAT, "{} is gone", path.display());
                changes.removed.push(device);
            }
        }
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
                    // Said once; the retries on every scan after that stay quiet.
                    if self.failing.insert(path.clone(), rdev).is_some() {
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

/// Rescans every `SCAN_INTERVAL` until `stop` says so (or is dropped) or the provider is gone.
fn run_monitor(
    provider: glib::WeakRef<super::RustV4l2DeviceProvider>,
    mut nodes: Nodes,
    stop: mpsc::Receiver<()>,
) {
    // Anything but a timeout (a message, or the sender dropped) means stop.
    'scan: while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(SCAN_INTERVAL) {
        let changes = nodes.rescan();
        let Some(provider) = provider.upgrade() else {
            break 'scan;
        };
        // Checked before each: stop() may have come in meanwhile, even from inside the last
        // post (an application handling device-added synchronously), and a stopped provider
        // must not gain devices.
        let stopping = || !matches!(stop.try_recv(), Err(TryRecvError::Empty));
        for device in changes.removed {
            if stopping() {
                break 'scan;
            }
            provider.device_remove(&device);
        }
        for device in changes.added {
            if stopping() {
                break 'scan;
            }
            provider.device_add(&device);
        }
    }
    gst::debug!(CAT, "Monitor thread ends");
}

#[glib::object_subclass]
impl ObjectSubclass for RustV4l2DeviceProvider {
    const NAME: &'static str = "GstRustV4l2DeviceProvider";
    type Type = super::RustV4l2DeviceProvider;
    type ParentType = gst::DeviceProvider;
}

impl ObjectImpl for RustV4l2DeviceProvider {}

impl GstObjectImpl for RustV4l2DeviceProvider {}

impl DeviceProviderImpl for RustV4l2DeviceProvider {
    fn metadata() -> Option<&'static gst::subclass::DeviceProviderMetadata> {
        static METADATA: LazyLock<gst::subclass::DeviceProviderMetadata> = LazyLock::new(|| {
            gst::subclass::DeviceProviderMetadata::new(
                "V4L2 capture device provider (rustv4l2src)",
                "Source/Video",
                "Lists and monitors V4L2 capture devices, to capture from with rustv4l2src",
                "rustv4l2src developers",
            )
        });
        Some(&*METADATA)
    }

    fn probe(&self) -> Vec<gst::Device> {
        let changes = Nodes::new(Path::new(DEV_DIR)).rescan();
        gst::debug!(CAT, imp = self, "Probed {} devices", changes.added.len());
        changes.added.into_iter().map(|d| d.upcast()).collect()
    }

    fn start(&self) -> Result<(), gst::LoggableError> {
        let mut monitor = lock(&self.monitor);
        if monitor.is_some() {
            // GstDeviceProvider counts starts itself; this would be a second thread.
            return Ok(());
        }
        // The devices present at start are announced before start() returns, as the device
        // monitor expects; the thread then reports only changes.
        let mut nodes = Nodes::new(Path::new(DEV_DIR));
        let changes = nodes.rescan();
        gst::info!(
            CAT,
            imp = self,
            "Started with {} devices; rescanning {}/video* every {:?}",
            changes.added.len(),
            DEV_DIR,
            SCAN_INTERVAL
        );
        for device in changes.added {
            self.obj().device_add(&device);
        }
        let (stop, stopped) = mpsc::channel();
        let provider = self.obj().downgrade();
        let thread = thread::Builder::new()
            .name("rustv4l2-devmon".into())
            .spawn(move || run_monitor(provider, nodes, stopped))
            .map_err(|e| gst::loggable_error!(CAT, "Could not start the monitor thread: {}", e))?;
        *monitor = Some(Monitor { stop, thread });
        Ok(())
    }

    fn stop(&self) {
        let Some(Monitor { stop, thread }) = lock(&self.monitor).take() else {
            return;
        };
        drop(stop);
        // stop() may be reached from the thread itself (an application handling device-added
        // synchronously): it must not wait for itself, and it ends on its own right after.
        if thread.thread().id() != thread::current().id() && thread.join().is_err() {
            gst::error!(CAT, imp = self, "The monitor thread panicked");
        }
        gst::info!(CAT, imp = self, "Stopped");
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
