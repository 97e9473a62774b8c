//! `rustv4l2src` in place of `v4l2src`, against vivid: a writable `device-fd` (an application's
//! open node, duplicated, never closed), GstVideoOrientation over the flip controls, the
//! `prepare-format` signal before `VIDIOC_S_FMT`, and every property `v4l2src` has, with its
//! type and default, compared as the registry lists both, but for the differences the table in
//! `docs/coming-from-v4l2src.md` lists. Run through `scripts/vm-run`.

mod common;

use common::{Capture, NullOnDrop, TIMEOUT, change_state, fds_on, setup, try_change_state};

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;
use gst_video::prelude::*;
use gstrustv4l2::v4l2::Device;

const COMING_FROM_V4L2SRC: &str = include_str!("../docs/coming-from-v4l2src.md");

fn open_node(path: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"))
}

fn size_of(sample: &gst::Sample) -> (i32, i32) {
    let s = sample
        .caps()
        .and_then(|c| c.structure(0).map(|s| s.to_owned()))
        .expect("a sample has caps");
    (
        s.get::<i32>("width").expect("width"),
        s.get::<i32>("height").expect("height"),
    )
}

// ---------------------------------------------------------------------------------------------
// device-fd set by the application

/// An application opens the node and hands its descriptor over: frames come from it, the
/// element works on a duplicate (its own `device-fd` while open), `device-name` and `stats`
/// read as with `device`, and after NULL the application's descriptor is still open, still
/// blocking, and the node still answers `VIDIOC_QUERYCAP` through it.
#[test]
fn device_fd_from_the_application_is_duplicated_and_never_closed() {
    let _device = setup();
    let node = common::vivid_sp();
    let file = open_node(&node);
    let fd = file.as_raw_fd();
    let open_before = fds_on(&node);
    let card = Device::open(std::path::Path::new(&node))
        .expect("vivid opens")
        .capability()
        .card
        .clone();

    // `device` names nothing: the descriptor wins.
    let capture = Capture::new(
        "/dev/nothing-here",
        &format!("device-fd={fd}"),
        "video/x-raw,format=YUY2,width=320,height=180",
    );
    assert_eq!(
        capture.src.property::<i32>("device-fd"),
        fd,
        "as set, in NULL"
    );
    capture.play();
    let sample = capture.pull();
    assert_eq!(size_of(&sample), (320, 180));
    let own = capture.src.property::<i32>("device-fd");
    assert!(
        own >= 0 && own != fd,
        "the element's own duplicate, got {own}"
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/self/fd/{own}")).expect("its fd is open"),
        std::fs::canonicalize(&node).expect("the node")
    );
    assert_eq!(
        capture.src.property::<Option<String>>("device-name"),
        Some(card)
    );
    let stats = capture.stats();
    assert!(
        stats
            .get::<u64>("frames-captured")
            .expect("frames-captured")
            >= 1
    );
    assert_eq!(fds_on(&node), open_before + 1, "one duplicate while open");

    change_state(capture.element(), gst::State::Null, TIMEOUT);
    assert_eq!(capture.src.property::<i32>("device-fd"), fd, "as set again");
    // A frame held keeps its buffers, and so the duplicate, open (frames outlive the
    // pipeline): let go of the frames, then of the element.
    drop(sample);
    drop(capture);
    assert_eq!(fds_on(&node), open_before, "the duplicate is closed");
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFD);
    assert!(
        flags.is_ok(),
        "the application's fd {fd} is closed: {flags:?}"
    );
    let status = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL).expect("F_GETFL");
    assert_eq!(
        nix::fcntl::OFlag::from_bits_retain(status) & nix::fcntl::OFlag::O_NONBLOCK,
        nix::fcntl::OFlag::empty(),
        "the application's open file is blocking again"
    );
    let again = Device::from_fd(fd).expect("the node answers QUERYCAP through the fd");
    assert_eq!(
        again.path(),
        std::fs::canonicalize(&node).expect("the node")
    );
}

/// A number that is no open descriptor is an error naming it, not a crash or a silent
/// fallback to `device`.
#[test]
fn device_fd_that_is_not_open_is_a_clear_error() {
    let _device = setup();
    let src = NullOnDrop(
        gst::ElementFactory::make("rustv4l2src")
            .property("device", common::vivid_sp())
            .property("device-fd", 987i32)
            .build()
            .expect("rustv4l2src"),
    );
    let bus = gst::Bus::new();
    src.0.set_bus(Some(&bus));
    let changed = try_change_state(&src.0, gst::State::Ready, TIMEOUT).expect("no hang");
    assert!(changed.0.is_err(), "READY with a closed device-fd");
    let msg = bus
        .pop_filtered(&[gst::MessageType::Error])
        .expect("an error on the bus");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = e.error().to_string();
    eprintln!("{text}");
    assert!(text.contains("device-fd 987"), "{text}");
    assert!(e.error().matches(gst::ResourceError::OpenRead), "{text}");
}

// ---------------------------------------------------------------------------------------------
// GstVideoOrientation

/// The byte at (x, y) of a packed RGB frame's red channel.
fn red_at(sample: &gst::Sample, x: usize, y: usize) -> u8 {
    let buffer = sample.buffer().expect("a buffer");
    let info = gst_video::VideoInfo::from_caps(sample.caps().expect("caps")).expect("video caps");
    let map = buffer.map_readable().expect("readable");
    map[y * info.stride()[0] as usize + x * 3]
}

/// hflip through the interface reaches the driver (`v4l2-ctl` reads it back), reads back
/// through the interface, and mirrors vivid's colour bars; the centre controls, which vivid
/// lacks, fail as in `v4l2src`; nothing works while closed.
#[test]
fn video_orientation_flips_through_the_device_controls() {
    let _device = setup();
    let node = common::vivid_sp();
    let capture = Capture::with_sink(
        &node,
        "",
        "video/x-raw,format=RGB,width=320,height=180",
        "max-buffers=1 drop=true",
    );
    let orientation = capture
        .src
        .clone()
        .dynamic_cast::<gst_video::VideoOrientation>()
        .expect("implements GstVideoOrientation");
    assert_eq!(orientation.hflip(), None, "closed");
    capture.play();
    assert_eq!(orientation.hflip(), Some(false));
    let y = 160; // below vivid's text, in its colour bars
    let before = capture.pull();
    let (left, right) = (red_at(&before, 20, y), red_at(&before, 299, y));
    assert!(
        left.abs_diff(right) > 64,
        "the bars differ left and right: {left} {right}"
    );

    orientation.set_hflip(true).expect("hflip set");
    let ctrl = common::v4l2_ctl_ok(&["-d", &node, "--get-ctrl", "horizontal_flip"]);
    assert_eq!(ctrl.trim(), "horizontal_flip: 1");
    assert_eq!(orientation.hflip(), Some(true));
    // Frames captured before the flip may still be queued.
    for _ in 0..8 {
        capture.pull();
    }
    let after = capture.pull();
    let (left_after, right_after) = (red_at(&after, 20, y), red_at(&after, 299, y));
    eprintln!("red at x=20/299: before {left}/{right}, flipped {left_after}/{right_after}");
    assert!(left_after.abs_diff(right) <= 8 && right_after.abs_diff(left) <= 8);

    orientation.set_hflip(false).expect("hflip unset");
    let ctrl = common::v4l2_ctl_ok(&["-d", &node, "--get-ctrl", "horizontal_flip"]);
    assert_eq!(ctrl.trim(), "horizontal_flip: 0");
    orientation.set_vflip(true).expect("vflip set");
    assert_eq!(orientation.vflip(), Some(true));
    orientation.set_vflip(false).expect("vflip unset");
    assert_eq!(orientation.hcenter(), None, "vivid has no V4L2_CID_HCENTER");
    assert!(orientation.set_vcenter(1).is_err());

    change_state(capture.element(), gst::State::Null, TIMEOUT);
    assert_eq!(orientation.vflip(), None, "closed again");
}

// ---------------------------------------------------------------------------------------------
// prepare-format

/// `prepare-format` comes once per format set, before it: the device still has the old format
/// when the handler runs, the handler sees the caps that then reach downstream, it may run
/// ioctls on the descriptor (brightness here, which sticks), and it may read the element's
/// properties (no lock is held).
#[test]
fn prepare_format_comes_before_s_fmt_with_the_fd_and_caps() {
    let _device = setup();
    let node = common::vivid_sp();
    common::v4l2_ctl_ok(&[
        "-d",
        &node,
        "--set-fmt-video",
        "width=640,height=480,pixelformat=YUYV",
    ]);
    let capture = Capture::new(&node, "", "video/x-raw,format=YUY2,width=320,height=180");
    // Per emission: the fd's node, the caps, the format the device had, device-name.
    type Seen = Vec<(String, gst::Caps, String, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let log = Arc::clone(&seen);
    let node_in = node.clone();
    capture.src.connect("prepare-format", false, move |args| {
        let src = args[0].get::<gst::Element>().expect("the element");
        let fd = args[1].get::<i32>().expect("fd");
        let caps = args[2].get::<gst::Caps>().expect("caps");
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("fd {fd}: {e}"));
        let device = Device::from_fd(fd).expect("the fd is the device");
        device
            .s_ctrl(gstrustv4l2::v4l2::V4L2_CID_BRIGHTNESS, 200)
            .expect("VIDIOC_S_CTRL through the fd");
        let current = common::v4l2_ctl_ok(&["-d", &node_in, "--get-fmt-video"]);
        let size = current
            .lines()
            .find(|l| l.contains("Width/Height"))
            .unwrap_or_default()
            .to_string();
        let name = src.property::<Option<String>>("device-name");
        log.lock().unwrap().push((target, caps, size, name));
        None
    });
    capture.play();
    let sample = capture.pull();
    let seen = seen.lock().unwrap().clone();
    eprintln!("prepare-format: {seen:?}");
    assert_eq!(seen.len(), 1, "once for one format: {seen:?}");
    let (target, caps, size, name) = &seen[0];
    assert_eq!(
        target,
        &std::fs::canonicalize(&node).unwrap().display().to_string()
    );
    let s = caps.structure(0).expect("caps");
    assert_eq!(
        (
            s.get::<i32>("width").unwrap(),
            s.get::<i32>("height").unwrap()
        ),
        (320, 180)
    );
    assert!(caps.is_fixed(), "{caps}");
    assert!(
        size.contains("640/480"),
        "the old format while the signal runs: {size}"
    );
    assert!(name.is_some());
    assert_eq!(size_of(&sample), (320, 180));
    let brightness = common::v4l2_ctl_ok(&["-d", &node, "--get-ctrl", "brightness"]);
    assert_eq!(brightness.trim(), "brightness: 200");
    common::v4l2_ctl_ok(&["-d", &node, "--set-ctrl", "brightness=128"]);
}

// ---------------------------------------------------------------------------------------------
// Every v4l2src property, as the registry lists both

/// The bits set in a flags value.
fn flag_bits(value: &glib::Value) -> u32 {
    glib::FlagsValue::from_value(value)
        .map_or(0, |(_, set)| set.iter().fold(0, |bits, v| bits | v.value()))
}

/// One property as the registry describes it: each aspect a user could depend on, by name.
fn aspects(pspec: &glib::ParamSpec) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let flags = pspec.flags();
    let mut access = Vec::new();
    for (flag, word) in [
        (glib::ParamFlags::READABLE, "readable"),
        (glib::ParamFlags::WRITABLE, "writable"),
        (
            glib::ParamFlags::from_bits_retain(gst::ffi::GST_PARAM_CONTROLLABLE as u32),
            "controllable",
        ),
    ] {
        if flags.contains(flag) {
            access.push(word);
        }
    }
    out.insert("access", access.join(","));
    let ty = pspec.value_type();
    let default = pspec.default_value();
    if let Some(class) = glib::EnumClass::with_type(ty) {
        // Enum types cannot share v4l2src's names (both plugins load in one process): compared
        // by their values' numbers and nicks.
        out.insert("type", "enum".into());
        let values: Vec<_> = class
            .values()
            .iter()
            .map(|v| format!("{}={}", v.value(), v.nick()))
            .collect();
        out.insert("values", values.join(" "));
        let n = glib::EnumValue::from_value(default).map(|(_, v)| v.value());
        out.insert("default", format!("{n:?}"));
    } else if let Some(class) = glib::FlagsClass::with_type(ty) {
        out.insert("type", "flags".into());
        let values: Vec<_> = class
            .values()
            .iter()
            .map(|v| format!("{:#x}={}", v.value(), v.nick()))
            .collect();
        out.insert("values", values.join(" "));
        out.insert("default", format!("{:#x}", flag_bits(default)));
    } else {
        out.insert("type", ty.name().to_string());
        // gst_value_serialize() of a NULL structure is a GLib critical: none is "(none)".
        let shown = if ty == gst::Structure::static_type() {
            default
                .get::<Option<gst::Structure>>()
                .ok()
                .flatten()
                .map_or_else(|| "(none)".into(), |s| s.to_string())
        } else {
            default
                .serialize()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| "(none)".into())
        };
        out.insert("default", shown);
    }
    let range = if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt>() {
        Some(format!("{}..{}", p.minimum(), p.maximum()))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt>() {
        Some(format!("{}..{}", p.minimum(), p.maximum()))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt64>() {
        Some(format!("{}..{}", p.minimum(), p.maximum()))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt64>() {
        Some(format!("{}..{}", p.minimum(), p.maximum()))
    } else {
        pspec
            .downcast_ref::<glib::ParamSpecDouble>()
            .map(|p| format!("{}..{}", p.minimum(), p.maximum()))
    };
    if let Some(range) = range {
        out.insert("range", range);
    }
    out
}

/// The table of deliberate (and pending) differences in `docs/coming-from-v4l2src.md`:
/// `(property, aspect)` per row, between the `differences` markers.
fn listed_differences() -> BTreeMap<(String, String), String> {
    let start = COMING_FROM_V4L2SRC
        .find("<!-- v4l2src-differences:start -->")
        .expect("docs/coming-from-v4l2src.md's differences table has its start marker");
    let end = COMING_FROM_V4L2SRC
        .find("<!-- v4l2src-differences:end -->")
        .expect("and its end marker");
    COMING_FROM_V4L2SRC[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<_> = l.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_string();
            let aspect = cells[2].to_string();
            ((name, aspect), cells[5].to_string())
        })
        .collect()
}

/// Every property `v4l2src` has exists on `rustv4l2src`, with the same type (enums and flags:
/// the same value numbers and nicks), default, range and access, but for the differences the
/// table in `docs/coming-from-v4l2src.md` lists; and each listed difference is still one (a row
/// for a difference that is gone must go). Reports all of them at once.
#[test]
fn every_v4l2src_property_is_here_as_in_v4l2src_but_for_the_differences_table() {
    let _device = setup();
    let make = |factory: &str| {
        gst::ElementFactory::make(factory)
            .build()
            .unwrap_or_else(|e| panic!("{factory}: {e} (gstreamer1.0-plugins-good installed?)"))
    };
    let (theirs, ours) = (make("v4l2src"), make("rustv4l2src"));
    let listed = listed_differences();
    let mut found = BTreeMap::new();
    let mut report = String::new();
    for their in theirs.list_properties() {
        let name = their.name();
        // GstObject's own: the same property, with each element's name as default.
        if name == "name" || name == "parent" {
            continue;
        }
        let Some(our) = ours.find_property(name) else {
            found.insert((name.to_string(), "missing".to_string()), String::new());
            report += &format!("\n  {name}: missing");
            continue;
        };
        let (a, b) = (aspects(&their), aspects(&our));
        for (aspect, their_value) in &a {
            let our_value = b.get(aspect).cloned().unwrap_or_default();
            if *their_value != our_value {
                found.insert((name.to_string(), aspect.to_string()), String::new());
                report += &format!(
                    "\n  {name} {aspect}: v4l2src {their_value:?}, rustv4l2src {our_value:?}"
                );
            }
        }
    }
    eprintln!("Differences from v4l2src:{report}");
    let unlisted: Vec<_> = found.keys().filter(|k| !listed.contains_key(*k)).collect();
    let stale: Vec<_> = listed
        .iter()
        .filter(|(k, _)| !found.contains_key(*k))
        .map(|(k, why)| format!("{k:?} ({why})"))
        .collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "differences not in docs/coming-from-v4l2src.md's table: {unlisted:?}\nrows of the \
         table that no longer differ (drop them): {stale:?}\nall differences:{report}"
    );
    // The same device reads the same through both.
    let node = common::vivid_sp();
    let (theirs, ours) = (NullOnDrop(theirs.clone()), NullOnDrop(ours.clone()));
    for e in [&theirs.0, &ours.0] {
        e.set_property("device", &node);
        change_state(e, gst::State::Ready, TIMEOUT);
    }
    for name in ["device-name", "crop-bounds"] {
        let (t, o) = (theirs.0.property_value(name), ours.0.property_value(name));
        assert_eq!(
            t.serialize().map(|s| s.to_string()).ok(),
            o.serialize().map(|s| s.to_string()).ok(),
            "{name} in READY on {node}"
        );
    }
    let bits = |e: &gst::Element| flag_bits(&e.property_value("flags"));
    assert_eq!(bits(&theirs.0), bits(&ours.0), "flags in READY on {node}");
}
