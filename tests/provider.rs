//! `rustv4l2deviceprovider` against vivid: which nodes it lists and how, the element it makes
//! for each, and nodes that appear and go away while it monitors.
//!
//! Needs vivid's nodes (see `common`) and root for `mknod`: run through `scripts/vm-run`. Every
//! wait is bounded, so a broken provider fails a test instead of hanging the run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use gst::prelude::*;

const PROVIDER: &str = "rustv4l2deviceprovider";
const DEVICE_TYPE: &str = "GstRustV4l2Device";
/// The longest any single wait may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(20);
/// How soon a node that appears or goes away must be reported (the provider looks every second).
const HOTPLUG_TIMEOUT: Duration = Duration::from_secs(10);
/// Read by the provider at start: rescan every second, whatever events the kernel sends.
const SCAN_ENV: &str = "RUSTV4L2_PROVIDER_SCAN";

/// GStreamer, the plugin, and the devices to this test alone: one test's extra node or capture
/// must not show up in another's listing.
fn setup() -> MutexGuard<'static, ()> {
    static DEVICES: Mutex<()> = Mutex::new(());
    common::init();
    DEVICES.lock().unwrap_or_else(|e| e.into_inner())
}

fn provider() -> gst::DeviceProvider {
    gst::DeviceProviderFactory::by_name(PROVIDER)
        .unwrap_or_else(|| panic!("the plugin registers the {PROVIDER} device provider"))
}

fn property_str(device: &gst::Device, name: &str) -> String {
    let props = device
        .properties()
        .unwrap_or_else(|| panic!("{} has no properties", device.display_name()));
    props
        .get::<String>(name)
        .unwrap_or_else(|e| panic!("{}: property {name}: {e} in {props}", device.display_name()))
}

fn path_of(device: &gst::Device) -> String {
    property_str(device, "device.path")
}

fn find<'a>(devices: &'a [gst::Device], path: &str) -> Option<&'a gst::Device> {
    devices.iter().find(|d| path_of(d) == path)
}

fn paths(devices: &[gst::Device]) -> Vec<String> {
    devices.iter().map(path_of).collect()
}

/// Checks what the monitor shows for one vivid capture node.
fn check_device(device: &gst::Device, path: &str, capture_cap: u32) {
    let name = device.display_name();
    assert_eq!(device.device_class(), "Video/Source", "{path}");
    assert!(device.has_classes("Video/Source"), "{path}");
    assert_eq!(device.type_().name(), DEVICE_TYPE, "{path}");

    assert_eq!(property_str(device, "device.path"), path);
    assert_eq!(property_str(device, "api.v4l2.path"), path);
    assert_eq!(property_str(device, "device.api"), "v4l2");
    assert_eq!(property_str(device, "api.v4l2.cap.driver"), "vivid");
    assert_eq!(property_str(device, "v4l2.device.driver"), "vivid");
    let card = property_str(device, "api.v4l2.cap.card");
    assert_eq!(card, name, "the display name is the card name");
    assert_eq!(property_str(device, "v4l2.device.card"), card);
    assert!(
        !property_str(device, "api.v4l2.cap.bus_info").is_empty(),
        "{path}: empty bus_info"
    );
    let hex = property_str(device, "api.v4l2.cap.device-caps");
    let device_caps = u32::from_str_radix(&hex, 16)
        .unwrap_or_else(|e| panic!("{path}: device-caps {hex:?} is not hex: {e}"));
    assert_ne!(
        device_caps & capture_cap,
        0,
        "{path}: device caps {device_caps:#010x} lack {capture_cap:#x}"
    );
    let props = device.properties().expect("checked above");
    assert_eq!(
        props.get::<u32>("v4l2.device.device_caps"),
        Ok(device_caps),
        "{path}"
    );

    let caps = device
        .caps()
        .unwrap_or_else(|| panic!("{path} has no caps"));
    assert!(!caps.is_empty() && !caps.is_any(), "{path}: caps {caps}");
}

/// The full probed caps: vivid's webcam input offers YUY2 at 1920x1080, at listed frame rates.
fn check_sp_caps(device: &gst::Device) {
    let caps = device.caps().expect("checked before");
    let yuy2_1080p = gst::Caps::builder("video/x-raw")
        .field("format", "YUY2")
        .field("width", 1920)
        .field("height", 1080)
        .build();
    let common = caps.intersect(&yuy2_1080p);
    assert!(
        !common.is_empty(),
        "no YUY2 1920x1080 in the single-planar node's caps: {caps}"
    );
    let rates = common.structure(0).and_then(|s| s.value("framerate").ok());
    assert!(
        rates.is_some_and(|r| r.get::<gst::FractionRange>().is_err()),
        "frame rates of YUY2 1920x1080 were not probed: {common}"
    );
}

/// How many file descriptors of this process are open on `node`.
fn open_fds_on(node: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .flatten()
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == Path::new(node)))
        .count()
}

#[test]
fn probe_lists_the_capture_nodes_and_not_the_output_node() {
    let _devices = setup();
    let (sp, mp, out) = (common::vivid_sp(), common::vivid_mp(), common::vivid_out());
    let devices: Vec<gst::Device> = provider().devices().into_iter().collect();
    let listed = paths(&devices);

    let sp_device = find(&devices, &sp)
        .unwrap_or_else(|| panic!("single-planar {sp} is not listed: {listed:?}"));
    check_device(sp_device, &sp, 0x1);
    check_sp_caps(sp_device);
    let mp_device = find(&devices, &mp)
        .unwrap_or_else(|| panic!("multi-planar {mp} is not listed: {listed:?}"));
    check_device(mp_device, &mp, 0x1000);
    assert!(
        find(&devices, &out).is_none(),
        "output node {out} is listed: {listed:?}"
    );
    for node in [&sp, &mp, &out] {
        assert_eq!(open_fds_on(node), 0, "{node} was left open after probing");
    }
}

#[test]
fn device_monitor_finds_them_under_video_source() {
    let _devices = setup();
    let (sp, mp, out) = (common::vivid_sp(), common::vivid_mp(), common::vivid_out());
    let monitor = gst::DeviceMonitor::new();
    assert!(
        monitor.add_filter(Some("Video/Source"), None).is_some(),
        "no provider matches Video/Source"
    );
    let ours: Vec<gst::Device> = monitor
        .devices()
        .into_iter()
        .filter(|d| d.type_().name() == DEVICE_TYPE)
        .collect();
    let listed = paths(&ours);
    assert!(
        monitor.providers().iter().any(|p| p == PROVIDER),
        "the monitor does not use {PROVIDER}: {:?}",
        monitor.providers()
    );
    check_device(
        find(&ours, &sp).unwrap_or_else(|| panic!("{sp} is not listed: {listed:?}")),
        &sp,
        0x1,
    );
    check_device(
        find(&ours, &mp).unwrap_or_else(|| panic!("{mp} is not listed: {listed:?}")),
        &mp,
        0x1000,
    );
    assert!(find(&ours, &out).is_none(), "{out} is listed: {listed:?}");
}

/// Sets `element` to `state` from another thread; fails the test if that fails or takes longer
/// than `TIMEOUT`.
fn set_state(element: &gst::Element, state: gst::State) {
    let (tx, rx) = mpsc::channel();
    let e = element.clone();
    std::thread::spawn(move || {
        let result = e.set_state(state);
        drop(e);
        let _ = tx.send(result);
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("{} refused {state:?}: {e}", element.name()),
        Err(_) => panic!(
            "{} did not reach {state:?} within {TIMEOUT:?}",
            element.name()
        ),
    }
}

/// Brings a pipeline down to NULL also when a test fails, so the device is free afterwards.
struct Running(gst::Pipeline);

impl Drop for Running {
    fn drop(&mut self) {
        let (tx, rx) = mpsc::channel();
        let p = self.0.clone();
        std::thread::spawn(move || {
            let _ = p.set_state(gst::State::Null);
            drop(p);
            let _ = tx.send(());
        });
        if rx.recv_timeout(TIMEOUT).is_err() {
            eprintln!("pipeline did not reach NULL within {TIMEOUT:?}; leaking it");
        }
    }
}

fn bus_errors(pipeline: &gst::Pipeline) -> String {
    let Some(bus) = pipeline.bus() else {
        return String::new();
    };
    let mut out = String::new();
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            out.push_str(&format!("\n  {}: {:?}", e.error(), e.debug()));
        }
    }
    out
}

#[test]
fn create_element_captures_from_that_node() {
    let _devices = setup();
    let sp = common::vivid_sp();
    let devices: Vec<gst::Device> = provider().devices().into_iter().collect();
    let device =
        find(&devices, &sp).unwrap_or_else(|| panic!("{sp} is not listed: {:?}", paths(&devices)));

    let src = device
        .create_element(Some("camera"))
        .expect("the device makes an element");
    assert_eq!(src.name(), "camera");
    assert_eq!(
        src.factory().map(|f| f.name().to_string()).as_deref(),
        Some("rustv4l2src")
    );
    assert_eq!(src.property::<String>("device"), sp);

    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(2)
        .drop(true)
        .build();
    let pipeline = gst::Pipeline::new();
    pipeline
        .add_many([&src, sink.upcast_ref()])
        .expect("add to the pipeline");
    src.link(&sink).expect("link rustv4l2src to appsink");
    let running = Running(pipeline.clone());
    set_state(pipeline.upcast_ref(), gst::State::Playing);
    for n in 0..3 {
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(TIMEOUT.as_secs()))
            .unwrap_or_else(|| {
                panic!(
                    "no buffer {n} from {sp} within {TIMEOUT:?}:{}",
                    bus_errors(&pipeline)
                )
            });
        let buffer = sample.buffer().expect("a sample carries a buffer");
        assert!(buffer.size() > 0, "buffer {n} is empty");
    }
    drop(running);

    // An idle rustv4l2src can be pointed at the device; anything else cannot.
    let idle = gst::ElementFactory::make("rustv4l2src")
        .property("device", "/dev/nonexistent")
        .build()
        .expect("make rustv4l2src");
    device
        .reconfigure_element(&idle)
        .expect("an idle rustv4l2src takes the device");
    assert_eq!(idle.property::<String>("device"), sp);
    let other = gst::ElementFactory::make("fakesrc")
        .build()
        .expect("make fakesrc");
    assert!(device.reconfigure_element(&other).is_err());
}

/// `major:minor` of a video4linux node, from sysfs.
fn device_number(node: &str) -> (u64, u64) {
    let name = Path::new(node)
        .file_name()
        .unwrap_or_else(|| panic!("{node} has no file name"));
    let sys = Path::new("/sys/class/video4linux").join(name).join("dev");
    let text =
        std::fs::read_to_string(&sys).unwrap_or_else(|e| panic!("reading {}: {e}", sys.display()));
    let (major, minor) = text
        .trim()
        .split_once(':')
        .unwrap_or_else(|| panic!("{}: {text:?} is not major:minor", sys.display()));
    let parse = |s: &str| {
        s.parse::<u64>()
            .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", sys.display()))
    };
    (parse(major), parse(minor))
}

/// A device node made for the test, removed again when dropped (also when the test fails).
struct Node(PathBuf);

impl Node {
    /// Another `/dev/videoN` for the device `major:minor`, at the first free N from 60.
    fn create(major: u64, minor: u64) -> Node {
        let path = (60..100)
            .map(|n| PathBuf::from(format!("/dev/video{n}")))
            .find(|p| std::fs::symlink_metadata(p).is_err())
            .expect("a free /dev/videoN between 60 and 99");
        nix::sys::stat::mknod(
            &path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o660),
            nix::sys::stat::makedev(major, minor),
        )
        .unwrap_or_else(|e| {
            panic!(
                "mknod {} c {major} {minor}: {e} (the test needs root: run it through scripts/vm-run)",
                path.display()
            )
        });
        Node(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }

    fn remove(&self) {
        std::fs::remove_file(&self.0)
            .unwrap_or_else(|e| panic!("removing {}: {e}", self.0.display()));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Stops the provider when dropped, also when the test fails.
struct Started(gst::DeviceProvider);

impl Drop for Started {
    fn drop(&mut self) {
        if self.0.is_started() {
            self.0.stop();
        }
    }
}

/// Waits for device-added (or device-removed) of the device at `path` on `bus`, skipping
/// others (such as those announced at start).
fn wait_for(bus: &gst::Bus, added: bool, path: &str) -> gst::Device {
    let deadline = Instant::now() + HOTPLUG_TIMEOUT;
    let what = if added {
        "device-added"
    } else {
        "device-removed"
    };
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[
                gst::MessageType::DeviceAdded,
                gst::MessageType::DeviceRemoved,
            ],
        ) else {
            panic!("no {what} for {path} within {HOTPLUG_TIMEOUT:?}; saw {seen:?}");
        };
        let (is_added, device) = match msg.view() {
            gst::MessageView::DeviceAdded(m) => (true, m.device()),
            gst::MessageView::DeviceRemoved(m) => (false, m.device()),
            _ => continue,
        };
        let device_path = path_of(&device);
        if is_added == added && device_path == path {
            return device;
        }
        seen.push(format!(
            "{} {device_path}",
            if is_added { "added" } else { "removed" }
        ));
    }
}

/// Runs the test `name` again in a child process of this binary, with `env` set to 1, and fails
/// if it does: for what the provider reads from the environment at start, which this process
/// cannot change safely while GStreamer's threads run.
fn run_in_child(name: &str, env: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new(&exe)
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(env, "1")
        .output()
        .unwrap_or_else(|e| panic!("running {} {name}: {e}", exe.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && text.contains("1 passed"),
        "{name} with {env}=1 failed ({}):\n{text}",
        output.status
    );
}

#[test]
fn nodes_that_appear_and_go_away_are_reported() {
    let _devices = setup();
    // Nodes made with mknod come without any hot-plug event: only scanning finds them.
    if std::env::var_os(SCAN_ENV).is_none() {
        run_in_child("nodes_that_appear_and_go_away_are_reported", SCAN_ENV);
        return;
    }
    let sp = common::vivid_sp();
    let (major, minor) = device_number(&sp);
    let provider = provider();
    let bus = provider.bus();
    provider.start().expect("the provider starts");
    let started = Started(provider.clone());

    // Started: the devices present at start are there at once.
    let devices: Vec<gst::Device> = provider.devices().into_iter().collect();
    assert!(
        find(&devices, &sp).is_some(),
        "{sp} is not listed once started: {:?}",
        paths(&devices)
    );
    wait_for(&bus, true, &sp);

    let node = Node::create(major, minor);
    let path = node.path();
    let added = wait_for(&bus, true, &path);
    check_device(&added, &path, 0x1);
    let devices: Vec<gst::Device> = provider.devices().into_iter().collect();
    assert!(
        find(&devices, &path).is_some(),
        "{path} was announced but is not listed: {:?}",
        paths(&devices)
    );

    for node in [&sp, &path] {
        assert_eq!(open_fds_on(node), 0, "the monitor keeps {node} open");
    }

    node.remove();
    let removed = wait_for(&bus, false, &path);
    assert_eq!(removed, added, "device-removed names another device");
    let devices: Vec<gst::Device> = provider.devices().into_iter().collect();
    assert!(
        find(&devices, &path).is_none(),
        "{path} is gone but still listed: {:?}",
        paths(&devices)
    );
    assert!(find(&devices, &sp).is_some(), "{sp} went away too");

    // stop() ends the scan thread at once, not after its next look.
    let begin = Instant::now();
    provider.stop();
    let took = begin.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "stop() took {took:?}: it waited for the scan interval"
    );
    drop(started);
}
