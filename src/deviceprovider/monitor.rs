//! The provider's monitor thread: when to rescan `/dev/video*`.
//!
//! While the provider is started, the thread waits for the kernel's video4linux hot-plug events
//! (`v4l2::hotplug`) and rescans at once on each. The kernel sends them before udev, if it runs,
//! has made the node or set its permissions, so a node an event announces is looked at again
//! until it can be examined (`Nodes::settle`). Where no events can be had (netlink not allowed)
//! or `RUSTV4L2_PROVIDER_SCAN` asks for it, the thread rescans every `SCAN_INTERVAL` instead.
//! With events it still rescans every `BACKSTOP_INTERVAL`, for nodes that no event announces
//! (made by hand with `mknod`, or bind-mounted into a container). Either way one path,
//! `Nodes::rescan` and `examine`, decides what a node is: an event only says when to look, and
//! which node to wait for.
//!
//! The thread owns its `Nodes` and never takes the provider's lock; `stop()` reaches it through
//! the `Hotplug`'s eventfd alone.

use super::log::CAT;
use super::nodes::{Changes, DEV_DIR, Nodes};
use crate::v4l2::hotplug::Woken;
use crate::v4l2::{self, Hotplug};
use gst::glib;
use gst::prelude::*;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a started provider without hot-plug events looks again.
const SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// How often a provider that gets hot-plug events looks anyway (a listing of `/dev`; only nodes
/// not seen before are opened).
const BACKSTOP_INTERVAL: Duration = Duration::from_secs(5);
/// Set (to anything but empty or `0`) when the provider starts, it rescans every
/// `SCAN_INTERVAL` even where hot-plug events could be had: nodes that no event announces
/// (`mknod`) are then seen within a second rather than `BACKSTOP_INTERVAL`.
const SCAN_ENV: &str = "RUSTV4L2_PROVIDER_SCAN";
/// udev's control socket: libudev takes it being there to mean that the daemon runs. Only the
/// log says so; events and rescans are the same either way.
const UDEV_CONTROL: &str = "/run/udev/control";

/// Rescans on every hot-plug event and every `BACKSTOP_INTERVAL`, or every `SCAN_INTERVAL`
/// without events, until `hotplug` is stopped or the provider is gone.
pub(super) fn run_monitor(
    provider: glib::WeakRef<super::RustV4l2DeviceProvider>,
    mut nodes: Nodes,
    hotplug: Arc<Hotplug>,
) {
    let mut listening = hotplug.has_events();
    loop {
        let woken = if listening {
            let now = Instant::now();
            let wait = nodes.next_look().map_or(BACKSTOP_INTERVAL, |next| {
                next.saturating_duration_since(now).min(BACKSTOP_INTERVAL)
            });
            hotplug.wait(Some(wait))
        } else {
            hotplug.sleep(SCAN_INTERVAL)
        };
        let mut changes = Changes::default();
        match woken {
            Ok(Woken::Stopped) => break,
            Ok(Woken::TimedOut) => {}
            Ok(Woken::Events { events, lost }) => {
                if lost {
                    gst::warning!(CAT, "Hot-plug events were lost; rescanning {}", DEV_DIR);
                } else if events.is_empty() {
                    // Another subsystem's event.
                    continue;
                }
                let now = Instant::now();
                for event in &events {
                    changes.removed.extend(nodes.announced(event, now));
                }
            }
            Err(e) => {
                // Not expected from a socket that was fine a moment ago; scanning still works.
                gst::warning!(
                    CAT,
                    "Waiting for hot-plug events failed: {}; rescanning {}/video* every {:?} \
                     instead",
                    e,
                    DEV_DIR,
                    SCAN_INTERVAL
                );
                listening = false;
            }
        }
        let rescanned = nodes.rescan();
        nodes.settle(Instant::now());
        changes.removed.extend(rescanned.removed);
        changes.added.extend(rescanned.added);
        if changes.is_empty() {
            continue;
        }
        let Some(provider) = provider.upgrade() else {
            break;
        };
        // Checked before each: stop() may have come in meanwhile, even from inside the last
        // post (an application handling device-added synchronously), and a stopped provider
        // must not gain devices.
        for device in changes.removed {
            if hotplug.is_stopped() {
                break;
            }
            provider.device_remove(&device);
        }
        for device in changes.added {
            if hotplug.is_stopped() {
                break;
            }
            provider.device_add(&device);
        }
    }
    gst::debug!(CAT, "Monitor thread ends");
}

/// How the monitor thread learns of changes, and a sentence for the log that says so.
pub(super) fn watch() -> Result<(Hotplug, String), v4l2::Error> {
    let scanning = |why: String| {
        let hotplug = Hotplug::timer()?;
        Ok((
            hotplug,
            format!("rescanning {DEV_DIR}/video* every {SCAN_INTERVAL:?} ({why})"),
        ))
    };
    if std::env::var_os(SCAN_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        return scanning(format!("{SCAN_ENV} is set"));
    }
    if !v4l2::hotplug::events_reach_this_process() {
        return scanning("the kernel sends no hot-plug events into this user namespace".into());
    }
    match Hotplug::kernel_events() {
        Ok(hotplug) => {
            let udev = if Path::new(UDEV_CONTROL).exists() {
                "udev runs: a node may be ready a moment after its event"
            } else {
                "udev does not run"
            };
            Ok((
                hotplug,
                format!("rescanning on the kernel's video4linux hot-plug events ({udev})"),
            ))
        }
        Err(e) => scanning(format!("no hot-plug events: {e}")),
    }
}
