//! v4l2src's device properties on the real element, against vivid: `flags`, `device-fd`,
//! `pixel-aspect-ratio` and `force-aspect-ratio`, `crop-*` and `crop-bounds`.
//!
//! vivid's webcam input (0) cannot crop (its selection ioctls answer ENODATA); its S-Video
//! input (2), a PAL camera here, can, and scales, so a cropped capture comes out at the cropped
//! size. Tests that switch the input put it back when they end, pass or fail, because the other
//! test binaries run after this one in the same VM. Run through `scripts/vm-run`.

mod common;

use common::{
    Capture, NullOnDrop, SVideoInput, TIMEOUT, assert_no_problems, change_state, setup,
    try_change_state, v4l2_ctl_ok,
};

use std::path::Path;

use gst::glib;
use gst::prelude::*;
use gstrustv4l2::v4l2::{CropTarget, Device, Rect};

/// A lone `rustv4l2src` on `device`, brought to NULL when dropped.
fn source(device: &str) -> NullOnDrop {
    NullOnDrop(
        gst::ElementFactory::make("rustv4l2src")
            .property("device", device)
            .build()
            .expect("make rustv4l2src"),
    )
}

/// The nicks of the flags set in a flags value, `+`-joined as GStreamer writes them.
fn flag_nicks(value: &glib::Value) -> String {
    let class = glib::FlagsClass::with_type(value.type_()).expect("a flags value");
    class
        .values()
        .iter()
        .filter(|v| class.is_set_by_nick(value, v.nick()))
        .map(|v| v.nick())
        .collect::<Vec<_>>()
        .join("+")
}

fn structure_of(sample: &gst::Sample) -> gst::Structure {
    sample
        .caps()
        .and_then(|c| c.structure(0).map(|s| s.to_owned()))
        .expect("a sample has caps")
}

fn crop_bounds(element: &gst::Element) -> Vec<i32> {
    element
        .property::<gst::Array>("crop-bounds")
        .iter()
        .map(|v| v.get::<i32>().expect("crop-bounds holds ints"))
        .collect()
}

/// The first error on `bus` within `TIMEOUT`.
fn first_error(bus: &gst::Bus) -> (glib::Error, String) {
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::try_from(TIMEOUT).expect("fits"),
            &[gst::MessageType::Error],
        )
        .unwrap_or_else(|| panic!("no error on the bus within {TIMEOUT:?}"));
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!("filtered on errors")
    };
    let src = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
    (e.error(), src)
}

// ---------------------------------------------------------------------------------------------
// flags and device-fd

/// `flags` reads none while closed and the device's capabilities once open, the same as
/// v4l2src's on the same node; a multi-planar node reads as capture too.
#[test]
fn flags_are_the_open_device_s_capabilities_as_v4l2src_reads_them() {
    let _device = setup();
    let device = common::vivid_sp();
    let ours = source(&device);
    assert_eq!(flag_nicks(&ours.0.property_value("flags")), "");

    change_state(&ours.0, gst::State::Ready, TIMEOUT);
    let flags = flag_nicks(&ours.0.property_value("flags"));
    let theirs = NullOnDrop(
        gst::ElementFactory::make("v4l2src")
            .property("device", &device)
            .build()
            .expect("v4l2src (gstreamer1.0-plugins-good, which scripts/setup-deps installs)"),
    );
    change_state(&theirs.0, gst::State::Ready, TIMEOUT);
    let their_flags = flag_nicks(&theirs.0.property_value("flags"));
    eprintln!("flags of {device}: ours {flags}, v4l2src's {their_flags}");
    assert!(flags.split('+').any(|f| f == "capture"), "{flags}");
    assert_eq!(flags, their_flags);
    change_state(&ours.0, gst::State::Null, TIMEOUT);
    assert_eq!(flag_nicks(&ours.0.property_value("flags")), "");

    let mp = source(&common::vivid_mp());
    change_state(&mp.0, gst::State::Ready, TIMEOUT);
    let mp_flags = flag_nicks(&mp.0.property_value("flags"));
    assert!(mp_flags.split('+').any(|f| f == "capture"), "{mp_flags}");
}

/// `device-fd` is the open node's descriptor from READY on, and -1 when closed.
#[test]
fn device_fd_is_the_open_node_and_minus_one_when_closed() {
    let _device = setup();
    let device = common::vivid_sp();
    let src = source(&device);
    assert_eq!(src.0.property::<i32>("device-fd"), -1);

    change_state(&src.0, gst::State::Ready, TIMEOUT);
    let fd = src.0.property::<i32>("device-fd");
    assert!(fd >= 0, "device-fd {fd} in READY");
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("the fd is open");
    assert_eq!(
        target,
        std::fs::canonicalize(&device).expect("the device node"),
        "device-fd {fd}"
    );
    eprintln!("device-fd {fd} -> {}", target.display());

    change_state(&src.0, gst::State::Null, TIMEOUT);
    assert_eq!(src.0.property::<i32>("device-fd"), -1);
}

// ---------------------------------------------------------------------------------------------
// pixel-aspect-ratio and force-aspect-ratio

/// `pixel-aspect-ratio` replaces the device's in the caps; unset, the property reads the
/// device's once open.
#[test]
fn pixel_aspect_ratio_overrides_the_device_s_in_the_caps() {
    let _device = setup();
    let device = common::vivid_sp();

    let src = source(&device);
    assert_eq!(src.0.property::<Option<String>>("pixel-aspect-ratio"), None);
    change_state(&src.0, gst::State::Ready, TIMEOUT);
    assert_eq!(
        src.0
            .property::<Option<String>>("pixel-aspect-ratio")
            .as_deref(),
        Some("1/1"),
        "vivid's webcam has square pixels"
    );
    drop(src);

    let capture = Capture::new(
        &device,
        "pixel-aspect-ratio=4/3",
        "video/x-raw,format=YUY2,width=640,height=360",
    );
    capture.play();
    let s = structure_of(&capture.pull());
    assert_eq!(
        s.get::<gst::Fraction>("pixel-aspect-ratio").unwrap(),
        gst::Fraction::new(4, 3),
        "{s}"
    );
    assert_eq!(
        capture
            .src
            .property::<Option<String>>("pixel-aspect-ratio")
            .as_deref(),
        Some("4/3")
    );
    assert_no_problems(&capture.bus(), "pixel-aspect-ratio=4/3");
}

/// With `force-aspect-ratio` (the default) the caps carry the device's PAR, so downstream
/// asking for another cannot negotiate; without it they carry none and downstream chooses.
#[test]
fn force_aspect_ratio_false_leaves_the_par_to_downstream() {
    let _device = setup();
    let device = common::vivid_sp();
    let wants_4_3 = "video/x-raw,format=YUY2,width=640,height=360,pixel-aspect-ratio=4/3";

    let forced = Capture::new(&device, "", wants_4_3);
    let _ = try_change_state(forced.element(), gst::State::Playing, TIMEOUT);
    let (error, src) = first_error(&forced.bus());
    eprintln!("forced 1/1 against 4/3 downstream: [{src}] {error}");
    assert!(
        error.matches(gst::CoreError::Negotiation),
        "expected a negotiation error: {error}"
    );
    drop(forced);

    let free = Capture::new(&device, "force-aspect-ratio=false", wants_4_3);
    free.play();
    let s = structure_of(&free.pull());
    assert_eq!(
        s.get::<gst::Fraction>("pixel-aspect-ratio").unwrap(),
        gst::Fraction::new(4, 3),
        "{s}"
    );
    assert_no_problems(&free.bus(), "force-aspect-ratio=false, downstream 4/3");
    drop(free);

    let none = Capture::new(
        &device,
        "force-aspect-ratio=false",
        "video/x-raw,format=YUY2,width=640,height=360",
    );
    none.play();
    let s = structure_of(&none.pull());
    assert!(!s.has_field("pixel-aspect-ratio"), "{s}");
}

// ---------------------------------------------------------------------------------------------
// crop-* and crop-bounds

/// `crop-bounds` reads the current input's bounds once open: the whole PAL picture on the
/// S-Video input, nothing on the webcam input that cannot crop, nothing while closed.
#[test]
fn crop_bounds_are_readable_once_open() {
    let _device = setup();
    let device = common::vivid_sp();

    let webcam = source(&device);
    assert_eq!(crop_bounds(&webcam.0), [0, 0, 0, 0]);
    change_state(&webcam.0, gst::State::Ready, TIMEOUT);
    assert_eq!(crop_bounds(&webcam.0), [0, 0, 0, 0]);
    drop(webcam);

    let _input = SVideoInput::select(&device);
    let svideo = source(&device);
    change_state(&svideo.0, gst::State::Ready, TIMEOUT);
    let bounds = crop_bounds(&svideo.0);
    let ctl = v4l2_ctl_ok(&["-d", &device, "--get-selection", "target=crop_bounds"]);
    eprintln!("crop-bounds {bounds:?}; v4l2-ctl: {}", ctl.trim());
    assert_eq!(bounds, [0, 0, 720, 576]);
    for (word, value) in ["Left", "Top", "Width", "Height"].iter().zip(&bounds) {
        assert!(
            ctl.contains(&format!("{word} {value}")),
            "{word} {value} in v4l2-ctl's {ctl}"
        );
    }
    change_state(&svideo.0, gst::State::Null, TIMEOUT);
    assert_eq!(crop_bounds(&svideo.0), [0, 0, 0, 0]);
}

/// Cropping on the S-Video input: the driver holds the crop rectangle while capturing, and
/// the frames downstream are the cropped size, whether the crop was set before start or in
/// READY.
#[test]
fn crop_gives_frames_of_the_cropped_size() {
    let _device = setup();
    let device = common::vivid_sp();
    let _input = SVideoInput::select(&device);

    let capture = Capture::new(
        &device,
        "crop-top=16 crop-bottom=32 crop-left=8 crop-right=24",
        "video/x-raw,format=YUY2",
    );
    capture.play();
    let sample = capture.pull();
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    eprintln!("cropped caps {}", sample.caps().unwrap());
    assert_eq!((info.width(), info.height()), (720 - 32, 576 - 48));
    let buffer = sample.buffer().unwrap();
    assert!(
        buffer.size() >= (688 * 2 * 528) as usize,
        "a 688x528 YUY2 frame in {} bytes",
        buffer.size()
    );
    let held = Device::open(Path::new(&device))
        .expect("open beside the element")
        .g_selection(CropTarget::Crop)
        .expect("VIDIOC_G_SELECTION");
    assert_eq!(
        held,
        Rect {
            left: 8,
            top: 16,
            width: 688,
            height: 528
        }
    );
    assert_no_problems(&capture.bus(), "cropped capture");
    drop(sample);
    drop(capture);

    // Set in READY, once the device is open: the negotiation that follows takes it.
    let capture = Capture::new(&device, "", "video/x-raw,format=YUY2");
    change_state(capture.element(), gst::State::Ready, TIMEOUT);
    capture.src.set_property("crop-left", 100u32);
    capture.src.set_property("crop-right", 100u32);
    capture.play();
    let info = gst_video::VideoInfo::from_caps(capture.pull().caps().unwrap()).unwrap();
    assert_eq!((info.width(), info.height()), (520, 576));
    assert_no_problems(&capture.bus(), "crop set in READY");
    drop(capture);

    // No crop: the driver's default again, the whole picture.
    let capture = Capture::new(&device, "", "video/x-raw,format=YUY2,width=720,height=576");
    capture.play();
    let _ = capture.pull();
    let held = Device::open(Path::new(&device))
        .unwrap()
        .g_selection(CropTarget::Crop)
        .unwrap();
    assert_eq!((held.width, held.height), (720, 576));
}

/// What must fail: the error comes from the source, as a settings error naming the device and
/// the crop properties, before any frame.
fn assert_crop_error(device: &str, props: &str, says: &str) {
    let capture = Capture::new(device, props, "video/x-raw,format=YUY2");
    let outcome = try_change_state(capture.element(), gst::State::Playing, TIMEOUT);
    let (error, src) = first_error(&capture.bus());
    eprintln!(
        "{props}: state change {:?}; [{src}] {error}",
        outcome.map(|o| o.0)
    );
    assert_eq!(src, "src", "{error}");
    assert!(
        error.matches(gst::ResourceError::Settings),
        "expected ResourceError::Settings: {error}"
    );
    for word in [device, "crop-", says] {
        assert!(error.message().contains(word), "'{word}' in: {error}");
    }
    assert!(
        capture
            .try_pull(std::time::Duration::from_millis(200))
            .is_none()
    );
}

/// vivid's webcam input cannot crop: asking for a crop there is an error, not a silent
/// full-size capture.
#[test]
fn crop_on_an_input_that_cannot_crop_is_an_error() {
    let _device = setup();
    let device = common::vivid_sp();
    assert_crop_error(&device, "crop-top=10", "cannot crop");
}

/// A crop that leaves nothing of the picture is an error too (v4l2src ignores it with a log
/// line).
#[test]
fn crop_that_leaves_nothing_is_an_error() {
    let _device = setup();
    let device = common::vivid_sp();
    let _input = SVideoInput::select(&device);
    assert_crop_error(
        &device,
        "crop-left=400 crop-right=400",
        "nothing would be left",
    );
}
