//! The GObject subclass behind `rustv4l2deviceprovider`: GObject glue around the scan. `probe()`
//! scans `/dev/video*` once (`nodes.rs`, `examine.rs`); `start()` announces the devices present
//! and hands the scan to a monitor thread (`monitor.rs`); `stop()` ends that thread.
//!
//! Locks: `monitor` is the provider's only one, and the monitor thread never takes it (the
//! thread owns its list of known nodes), so `stop()` cannot wait on a thread that waits on it.
//! `stop()` reaches the thread through the `Hotplug`'s eventfd alone.

use super::log::CAT;
use super::monitor::{run_monitor, watch};
use super::nodes::{DEV_DIR, Nodes};
use crate::v4l2::Hotplug;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

/// The running monitor thread.
struct Monitor {
    hotplug: Arc<Hotplug>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Monitor {
    /// A provider dropped while started must not leave its thread waiting for the next event.
    fn drop(&mut self) {
        self.hotplug.stop();
    }
}

#[derive(Default)]
pub struct RustV4l2DeviceProvider {
    monitor: Mutex<Option<Monitor>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later call into a panic too.
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        // Subscribed before the first scan, so that a node coming meanwhile is not missed.
        let (hotplug, how) =
            watch().map_err(|e| gst::loggable_error!(CAT, "Cannot watch for devices: {}", e))?;
        let hotplug = Arc::new(hotplug);
        // The devices present at start are announced before start() returns, as the device
        // monitor expects; the thread then reports only changes.
        let mut nodes = Nodes::new(Path::new(DEV_DIR));
        let changes = nodes.rescan();
        gst::info!(
            CAT,
            imp = self,
            "Started with {} devices; {}",
            changes.added.len(),
            how
        );
        for device in changes.added {
            self.obj().device_add(&device);
        }
        let provider = self.obj().downgrade();
        let for_thread = Arc::clone(&hotplug);
        let thread = thread::Builder::new()
            .name("rustv4l2-devmon".into())
            .spawn(move || run_monitor(provider, nodes, for_thread))
            .map_err(|e| gst::loggable_error!(CAT, "Could not start the monitor thread: {}", e))?;
        *monitor = Some(Monitor {
            hotplug,
            thread: Some(thread),
        });
        Ok(())
    }

    fn stop(&self) {
        let Some(mut monitor) = lock(&self.monitor).take() else {
            return;
        };
        monitor.hotplug.stop();
        // stop() may be reached from the thread itself (an application handling device-added
        // synchronously): it must not wait for itself, and it ends on its own right after.
        if let Some(thread) = monitor.thread.take()
            && thread.thread().id() != thread::current().id()
            && thread.join().is_err()
        {
            gst::error!(CAT, imp = self, "The monitor thread panicked");
        }
        gst::info!(CAT, imp = self, "Stopped");
    }
}
