//! What every device test needs: GStreamer with the plugin registered, and vivid's nodes.
//!
//! The rig (`scripts/vm-run`) sets `RUSTV4L2_EXPECT_DEVICE=1` and the node paths. Where a device
//! is expected and missing, the test fails; it never passes by skipping.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod display;
pub mod driver;
pub mod loopback;
mod memory;
pub mod tools;
pub mod uvc;
pub mod vivid;
pub mod watch;

// As dead_code above: each test binary uses some of these.
#[allow(unused_imports)]
pub use driver::{
    Control, SVideoInput, control_id, hdmi_select, hdmi_send, platform_device_of, press_button,
    set_control, v4l2_ctl, v4l2_ctl_ok, wait_for_node,
};
#[allow(unused_imports)]
pub use memory::{
    device_mappings, fds_on, hash_of, in_device_memory, lies_in, memory_spans, open_fds,
};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once, mpsc};
use std::time::{Duration, Instant};

use gst::prelude::*;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstrustv4l2::plugin_register_static().expect("plugin registers");
    });
}

/// The vivid node whose sysfs name is `name` ("vivid-000-vid-cap"), found through `env_var`
/// when the rig exported it, else by scanning sysfs.
fn vivid_node(env_var: &str, name: &str) -> PathBuf {
    let expected = std::env::var("RUSTV4L2_EXPECT_DEVICE").is_ok_and(|v| v == "1");
    if let Ok(path) = std::env::var(env_var)
        && !path.is_empty()
    {
        return PathBuf::from(path);
    }
    if let Ok(entries) = std::fs::read_dir("/sys/class/video4linux") {
        for entry in entries.flatten() {
            let found = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
            if found.trim() == name {
                return Path::new("/dev").join(entry.file_name());
            }
        }
    }
    if expected {
        panic!("the test rig promised vivid, but no node named {name} exists");
    }
    panic!(
        "device tests need vivid's {name}: run them through scripts/vm-run (see docs/testing.md), \
         or set {env_var} to a capture node"
    );
}

/// vivid's single-planar capture node.
pub fn vivid_sp() -> String {
    vivid_node("RUSTV4L2_VIVID_SP", "vivid-000-vid-cap")
        .display()
        .to_string()
}

/// vivid's multi-planar capture node (`multiplanar=2` on the second instance).
pub fn vivid_mp() -> String {
    vivid_node("RUSTV4L2_VIVID_MP", "vivid-001-vid-cap")
        .display()
        .to_string()
}

/// vivid's output node: a V4L2 device that cannot capture.
pub fn vivid_out() -> String {
    vivid_node("RUSTV4L2_VIVID_OUT", "vivid-001-vid-out")
        .display()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Pipelines: what every device test binary drives the element through.

/// The longest any single wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Everything a device test needs first: GStreamer, the plugin, and the devices to itself
/// (this binary's other tests wait).
///
/// vivid's nodes can be opened by several processes, but only one can stream, so tests that
/// libtest runs in parallel would fail each other with EBUSY.
pub fn setup() -> MutexGuard<'static, ()> {
    static DEVICE: Mutex<()> = Mutex::new(());
    init();
    DEVICE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The errors and warnings waiting on `bus`, taken off it.
pub fn pop_problems(bus: &gst::Bus) -> Vec<gst::Message> {
    std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning]))
        .collect()
}

/// An error or warning message on one line: its type, source, domain, text and debug string.
pub fn describe(msg: &gst::Message) -> String {
    let src = msg
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_default();
    let (kind, error, debug) = match msg.view() {
        gst::MessageView::Error(e) => ("ERROR", e.error(), e.debug()),
        gst::MessageView::Warning(w) => ("WARNING", w.error(), w.debug()),
        _ => return format!("{:?} from {src}", msg.type_()),
    };
    format!(
        "{kind} from {src}: [{}] {error} ({debug:?})",
        error.domain().as_str()
    )
}

/// Errors and warnings waiting on `bus`, one per line, for failure messages.
pub fn bus_problems(bus: &gst::Bus) -> String {
    let mut out = String::new();
    for msg in pop_problems(bus) {
        let _ = write!(out, "\n  {}", describe(&msg));
    }
    if out.is_empty() {
        out.push_str(" (no error on the bus)");
    }
    out
}

/// Fails the test if an error or a warning is waiting on `bus` (and takes them off it).
pub fn assert_no_problems(bus: &gst::Bus, ctx: &str) {
    let problems = pop_problems(bus);
    assert!(
        problems.is_empty(),
        "{ctx}: {} error or warning message(s) on the bus:\n  {}",
        problems.len(),
        problems
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

pub fn element_bus_problems(element: &gst::Element) -> String {
    element.bus().map_or_else(
        || " (element has no bus)".to_string(),
        |bus| bus_problems(&bus),
    )
}

/// Changes `element`'s state from another thread; `None` if that does not finish within `limit`
/// (a wait the element cannot leave), else the outcome and how long it took.
pub fn try_change_state(
    element: &gst::Element,
    state: gst::State,
    limit: Duration,
) -> Option<(
    Result<gst::StateChangeSuccess, gst::StateChangeError>,
    Duration,
)> {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let e = element.clone();
    std::thread::spawn(move || {
        let result = e.set_state(state);
        // Our reference goes before the caller resumes, so that when the caller drops its own,
        // the element is finalized there and then, and releases what it holds.
        drop(e);
        let _ = tx.send(result);
    });
    rx.recv_timeout(limit)
        .ok()
        .map(|result| (result, started.elapsed()))
}

/// As `try_change_state`, failing the test if the change fails or does not finish within
/// `limit`; returns how long it took.
pub fn change_state(element: &gst::Element, state: gst::State, limit: Duration) -> Duration {
    match try_change_state(element, state, limit) {
        Some((Ok(_), took)) => took,
        Some((Err(_), _)) => panic!(
            "{} refused to go to {state:?}:{}",
            element.name(),
            element_bus_problems(element)
        ),
        None => panic!(
            "{} did not reach {state:?} within {limit:?}",
            element.name()
        ),
    }
}

/// Waits until `element` has finished changing state, and fails the test unless it then is in
/// `state` with nothing pending. A pipeline goes on to PLAYING in a thread of its own once its
/// sinks have prerolled, after `set_state` returned and a first frame may have come.
pub fn assert_settles_in(element: &gst::Element, state: gst::State) {
    let limit = gst::ClockTime::try_from(TIMEOUT).expect("fits");
    let (reached, current, pending) = element.state(limit);
    assert_eq!(
        (reached, current, pending),
        (
            Ok(gst::StateChangeSuccess::Success),
            state,
            gst::State::VoidPending
        ),
        "{} did not settle in {state:?} within {TIMEOUT:?}",
        element.name()
    );
}

/// Brings `element` down to NULL on the way out of a test, also a failing one, so the device is
/// free for the next test. Never panics: it may run while a failed assertion unwinds.
pub fn shut_down(element: &gst::Element) {
    if try_change_state(element, gst::State::Null, TIMEOUT).is_none() {
        eprintln!(
            "{} did not reach NULL within {TIMEOUT:?}; leaking it",
            element.name()
        );
    }
}

/// Brings its element down to NULL when dropped (`shut_down`), also when a test fails.
pub struct NullOnDrop(pub gst::Element);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        shut_down(&self.0);
    }
}

/// A pipeline `rustv4l2src ! caps ! appsink`, shut down when dropped.
pub struct Capture {
    pub pipeline: gst::Pipeline,
    pub src: gst::Element,
    pub sink: gst_app::AppSink,
}

impl Capture {
    /// `src_props` are extra properties of the source, `caps` the filter between it and the
    /// sink. The appsink neither syncs nor keeps a `last-sample`, but (GStreamer 1.22) it still
    /// holds the sample pulled last until the next pull or its disposal, and keeps samples
    /// queued before a stop for after the restart.
    pub fn new(device: &str, src_props: &str, caps: &str) -> Capture {
        Capture::with_sink(device, src_props, caps, "")
    }

    /// As `new`, with `sink_props` added to the appsink (`max-buffers=1 drop=true`, ...).
    pub fn with_sink(device: &str, src_props: &str, caps: &str, sink_props: &str) -> Capture {
        let description = format!(
            "rustv4l2src name=src device={device} {src_props} ! {caps} ! \
             appsink name=sink sync=false enable-last-sample=false {sink_props}"
        );
        let pipeline = gst::parse::launch(&description)
            .unwrap_or_else(|e| panic!("cannot build '{description}': {e}"))
            .downcast::<gst::Pipeline>()
            .expect("a launch line of several elements gives a pipeline");
        let src = pipeline.by_name("src").expect("named src");
        let sink = pipeline
            .by_name("sink")
            .expect("named sink")
            .downcast::<gst_app::AppSink>()
            .expect("appsink");
        Capture {
            pipeline,
            src,
            sink,
        }
    }

    pub fn element(&self) -> &gst::Element {
        self.pipeline.upcast_ref()
    }

    pub fn bus(&self) -> gst::Bus {
        self.pipeline.bus().expect("a pipeline has a bus")
    }

    pub fn play(&self) {
        change_state(self.element(), gst::State::Playing, TIMEOUT);
    }

    pub fn try_pull(&self, limit: Duration) -> Option<gst::Sample> {
        self.sink
            .try_pull_sample(gst::ClockTime::try_from(limit).expect("fits"))
    }

    pub fn pull(&self) -> gst::Sample {
        self.try_pull(TIMEOUT).unwrap_or_else(|| {
            panic!(
                "no buffer within {TIMEOUT:?} (eos: {}):{}",
                self.sink.is_eos(),
                element_bus_problems(self.element())
            )
        })
    }

    pub fn pull_buffer(&self) -> gst::Buffer {
        self.pull()
            .buffer_owned()
            .expect("a sample from appsink holds a buffer")
    }

    /// The source's `stats` property.
    pub fn stats(&self) -> gst::Structure {
        self.src.property::<gst::Structure>("stats")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        shut_down(self.element());
    }
}

/// The highest frame rate `s` allows.
pub fn highest_rate(s: &gst::StructureRef) -> gst::Fraction {
    let value = s
        .value("framerate")
        .unwrap_or_else(|_| panic!("no framerate in {s}"));
    if let Ok(rate) = value.get::<gst::Fraction>() {
        rate
    } else if let Ok(list) = value.get::<gst::List>() {
        list.iter()
            .filter_map(|v| v.get::<gst::Fraction>().ok())
            .max()
            .unwrap_or_else(|| panic!("empty framerate list in {s}"))
    } else if let Ok(range) = value.get::<gst::FractionRange>() {
        range.max()
    } else {
        panic!("framerate of unexpected type in {s}")
    }
}
