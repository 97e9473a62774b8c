//! Inputs and norms on a real driver: the `input` and `norm` properties, the picture a norm
//! sends (what the element prefers when nothing downstream asks for a size), the errors for an
//! input or norm the device lacks, and GstTuner driven through its C vtable as an application
//! would (GstTuner has no library to link: the v4l2 plugin registers it).
//!
//! vivid's inputs: 0 webcam (no norms), 1 TV (norms; a tuner), 2 S-Video (norms), 3 HDMI. Every
//! test puts the node back on its webcam input at 640x360 when it ends, pass or fail.
//!
//! Needs vivid's nodes (see `common`): run through `scripts/vm-run`.

mod common;

use common::{
    Capture, SVideoInput, TIMEOUT, assert_no_problems, describe, setup, try_change_state,
    v4l2_ctl_ok,
};
use gst::glib;
use gst::glib::gobject_ffi;
use gst::glib::translate::*;
use gst::prelude::*;
use std::ffi::{CStr, c_char, c_int, c_ulong, c_void};

/// The current input of `device`, as `v4l2-ctl --get-input` prints it ("Video input : 1 (TV 1:
/// ok)").
fn input_of(device: &str) -> u32 {
    let out = v4l2_ctl_ok(&["-d", device, "--get-input"]);
    out.split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no input in {out:?}"))
}

/// `v4l2-ctl --get-standard`, as printed.
fn standard_of(device: &str) -> String {
    v4l2_ctl_ok(&["-d", device, "--get-standard"])
}

/// Captures `n` frames with `props` and no caps filter: checks their caps, size and PTS, and
/// that nothing was posted. Returns the caps.
fn capture_frames(device: &str, props: &str, n: usize) -> gst::Caps {
    let capture = Capture::new(device, props, "video/x-raw");
    capture.play();
    let mut caps: Option<gst::Caps> = None;
    let mut last_pts = None;
    for i in 0..n {
        let sample = capture.pull();
        let these = sample.caps_owned().expect("a sample has caps");
        if let Some(first) = &caps {
            assert_eq!(first, &these, "frame {i}: the caps changed");
        }
        let info = gst_video::VideoInfo::from_caps(&these).expect("raw video caps");
        let buffer = sample.buffer().expect("a sample has a buffer");
        assert!(
            buffer.size() >= info.size(),
            "frame {i}: {} bytes, {} expected for {these}",
            buffer.size(),
            info.size()
        );
        let pts = buffer.pts().expect("each frame has a PTS");
        if let Some(last) = last_pts {
            assert!(pts > last, "frame {i}: PTS {pts} after {last}");
        }
        last_pts = Some(pts);
        caps = Some(these);
    }
    assert_no_problems(&capture.bus(), props);
    caps.expect("n > 0")
}

fn field<'a, T: glib::value::FromValue<'a>>(caps: &'a gst::Caps, name: &str) -> T {
    caps.structure(0)
        .expect("one structure")
        .get::<T>(name)
        .unwrap_or_else(|e| panic!("{name} of {caps}: {e}"))
}

/// The norm's own picture: its size, its rate, interlaced, as vivid sends it on its TV input.
fn assert_norm_picture(caps: &gst::Caps, height: i32, rate: gst::Fraction) {
    assert_eq!(field::<i32>(caps, "width"), 720, "{caps}");
    assert_eq!(field::<i32>(caps, "height"), height, "{caps}");
    assert_eq!(field::<gst::Fraction>(caps, "framerate"), rate, "{caps}");
    // vivid captures SDTV inputs as interlaced frames (V4L2_FIELD_INTERLACED).
    assert_eq!(
        field::<&str>(caps, "interlace-mode"),
        "interleaved",
        "{caps}"
    );
}

#[test]
fn norm_pal_on_the_tv_input_gives_576_lines_at_25_fps() {
    let _devices = setup();
    let device = common::vivid_sp();
    let _back = SVideoInput::restore_later(&device);
    let caps = capture_frames(&device, "input=1 norm=PAL", 5);
    assert_norm_picture(&caps, 576, gst::Fraction::new(25, 1));
    assert_eq!(input_of(&device), 1);
    let standard = standard_of(&device);
    assert!(standard.contains("PAL"), "{standard}");
}

#[test]
fn norm_ntsc_on_the_tv_input_gives_480_lines_at_30000_1001() {
    let _devices = setup();
    let device = common::vivid_sp();
    let _back = SVideoInput::restore_later(&device);
    let caps = capture_frames(&device, "input=1 norm=NTSC", 5);
    assert_norm_picture(&caps, 480, gst::Fraction::new(30000, 1001));
    let standard = standard_of(&device);
    assert!(standard.contains("NTSC"), "{standard}");
}

#[test]
fn a_caps_filter_may_still_ask_for_a_scaled_size() {
    let _devices = setup();
    let device = common::vivid_sp();
    let _back = SVideoInput::restore_later(&device);
    let capture = Capture::new(
        &device,
        "input=1 norm=PAL",
        "video/x-raw,width=360,height=288",
    );
    capture.play();
    let sample = capture.pull();
    let caps = sample.caps_owned().expect("caps");
    assert_eq!(field::<i32>(&caps, "width"), 360, "{caps}");
    assert_eq!(field::<i32>(&caps, "height"), 288, "{caps}");
    assert_no_problems(&capture.bus(), "scaled");
}

/// Starts `rustv4l2src device=... props`, expects it to fail, and returns the error it posted.
fn start_error(device: &str, props: &str) -> glib::Error {
    let capture = Capture::new(device, props, "video/x-raw");
    let outcome = try_change_state(capture.element(), gst::State::Playing, TIMEOUT);
    assert!(
        matches!(outcome, Some((Err(_), _))),
        "{props}: starting should fail, got {outcome:?}"
    );
    let bus = capture.bus();
    let msg = bus
        .pop_filtered(&[gst::MessageType::Error])
        .unwrap_or_else(|| panic!("{props}: no error on the bus"));
    eprintln!("{props}: {}", describe(&msg));
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    e.error()
}

#[test]
fn a_norm_the_input_lacks_is_a_clear_error() {
    let _devices = setup();
    let device = common::vivid_sp();
    let _back = SVideoInput::restore_later(&device);
    let error = start_error(&device, "input=0 norm=PAL");
    assert!(error.matches(gst::ResourceError::Settings), "{error}");
    let text = error.to_string();
    for part in [
        device.as_str(),
        "PAL",
        "input 0",
        "no TV norm",
        "not an analogue",
    ] {
        assert!(text.contains(part), "'{part}' missing from: {text}");
    }
    // HDMI has DV timings, not norms.
    let error = start_error(&device, "input=3 norm=NTSC");
    assert!(error.to_string().contains("input 3"), "{error}");
}

#[test]
fn input_selects_the_input_before_negotiation() {
    let _devices = setup();
    let device = common::vivid_sp();
    let _back = SVideoInput::restore_later(&device);
    let capture = Capture::new(&device, "input=2", "video/x-raw");
    capture.play();
    let sample = capture.pull();
    assert_eq!(input_of(&device), 2, "v4l2-ctl --get-input");
    assert_eq!(capture.src.property::<i32>("input"), 2);
    // S-Video has a norm: the picture is that norm's.
    let norm = capture.src.property_value("norm");
    let nick = glib::EnumValue::from_value(&norm)
        .map(|(_, v)| v.nick().to_string())
        .expect("norm is an enum");
    assert_ne!(nick, "none", "the S-Video input has a norm");
    let caps = sample.caps_owned().expect("caps");
    let lines_525 = ["NTSC", "PAL-M", "PAL-60"]
        .iter()
        .any(|n| nick.starts_with(n));
    assert_eq!(
        field::<i32>(&caps, "height"),
        if lines_525 { 480 } else { 576 },
        "norm {nick}: {caps}"
    );
    let mut last = sample.buffer().and_then(|b| b.pts()).expect("pts");
    for _ in 0..3 {
        let pts = capture.pull_buffer().pts().expect("pts");
        assert!(pts > last, "PTS {pts} after {last}");
        last = pts;
    }
    assert_no_problems(&capture.bus(), "input=2");
}

#[test]
fn an_input_the_device_lacks_is_a_clear_error() {
    let _devices = setup();
    let device = common::vivid_sp();
    let _back = SVideoInput::restore_later(&device);
    let error = start_error(&device, "input=99");
    assert!(error.matches(gst::ResourceError::Settings), "{error}");
    let text = error.to_string();
    for part in [device.as_str(), "no input 99", "TV", "S-Video"] {
        assert!(text.contains(part), "'{part}' missing from: {text}");
    }
}

/// `GstTunerInterface` (tuner.h), to call the element as a C application would.
#[repr(C)]
struct TunerInterface {
    parent: gobject_ffi::GTypeInterface,
    list_channels:
        Option<unsafe extern "C" fn(*mut gobject_ffi::GObject) -> *const glib::ffi::GList>,
    set_channel: Option<unsafe extern "C" fn(*mut gobject_ffi::GObject, *mut gobject_ffi::GObject)>,
    get_channel:
        Option<unsafe extern "C" fn(*mut gobject_ffi::GObject) -> *mut gobject_ffi::GObject>,
    list_norms: Option<unsafe extern "C" fn(*mut gobject_ffi::GObject) -> *const glib::ffi::GList>,
    set_norm: Option<unsafe extern "C" fn(*mut gobject_ffi::GObject, *mut gobject_ffi::GObject)>,
    get_norm: Option<unsafe extern "C" fn(*mut gobject_ffi::GObject) -> *mut gobject_ffi::GObject>,
    set_frequency: *const c_void,
    get_frequency: *const c_void,
    signal_strength:
        Option<unsafe extern "C" fn(*mut gobject_ffi::GObject, *mut gobject_ffi::GObject) -> c_int>,
    signal_handlers: [*const c_void; 4],
}

/// The start of `GstTunerChannel` and `GstTunerNorm`: both begin with their label.
#[repr(C)]
struct Labelled {
    parent: gobject_ffi::GObject,
    label: *const c_char,
}

/// `GstTunerChannel`'s signal range, after its label, flags and frequencies.
#[repr(C)]
struct ChannelRange {
    parent: gobject_ffi::GObject,
    label: *const c_char,
    flags: u32,
    freq_multiplicator: f32,
    min_frequency: c_ulong,
    max_frequency: c_ulong,
    min_signal: c_int,
    max_signal: c_int,
}

/// The tuner vtable of `element`.
fn tuner_of(element: &gst::Element) -> &'static TunerInterface {
    let tuner = glib::Type::from_name("GstTuner").expect("the v4l2 plugin registers GstTuner");
    assert!(
        element.type_().is_a(tuner),
        "rustv4l2src implements GstTuner"
    );
    // SAFETY: the element implements GstTuner (checked), so its class holds a
    // GstTunerInterface, laid out as TunerInterface, which lives as long as the class (for
    // ever: the type is static).
    unsafe {
        let class = (*(element.as_ptr() as *mut gobject_ffi::GTypeInstance)).g_class;
        let iface = gobject_ffi::g_type_interface_peek(class as _, tuner.into_glib());
        assert!(!iface.is_null());
        &*(iface as *const TunerInterface)
    }
}

/// The objects of a `transfer none` GList and their labels.
///
/// # Safety
/// `list` must be a GList of live GstTunerChannel or GstTunerNorm objects.
unsafe fn labelled(list: *const glib::ffi::GList) -> Vec<(*mut gobject_ffi::GObject, String)> {
    let mut out = Vec::new();
    let mut item = list;
    while !item.is_null() {
        // SAFETY: the contract above.
        unsafe {
            let object = (*item).data as *mut gobject_ffi::GObject;
            let label = (*(object as *const Labelled)).label;
            assert!(!label.is_null());
            out.push((object, CStr::from_ptr(label).to_string_lossy().into_owned()));
            item = (*item).next;
        }
    }
    out
}

#[test]
fn gst_tuner_lists_switches_and_reports_inputs_and_norms() {
    let _devices = setup();
    let device = common::vivid_sp();
    let _back = SVideoInput::restore_later(&device);
    let capture = Capture::new(&device, "input=0", "video/x-raw");
    let src = capture.src.clone();
    let iface = tuner_of(&src);
    let raw = src.as_ptr() as *mut gobject_ffi::GObject;
    // SAFETY: the vtable's functions take the element, which `src` holds, and the channels and
    // norms they lent, which the element keeps while the device is open (READY from here on).
    unsafe {
        assert!(
            (iface.list_channels.unwrap())(raw).is_null(),
            "no channels while closed"
        );
        common::change_state(capture.element(), gst::State::Ready, TIMEOUT);
        let channels = labelled((iface.list_channels.unwrap())(raw));
        let labels: Vec<_> = channels.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels.len(), 4, "{labels:?}");
        for (i, name) in ["Webcam", "TV", "S-Video", "HDMI"].iter().enumerate() {
            assert!(labels[i].starts_with(name), "{labels:?}");
        }
        assert_eq!((iface.get_channel.unwrap())(raw), channels[0].0);
        // The same list, the same objects, at each call.
        assert_eq!(
            labelled((iface.list_channels.unwrap())(raw))[1].0,
            channels[1].0
        );
        assert!(
            (iface.list_norms.unwrap())(raw).is_null(),
            "the webcam has no norms"
        );

        let changed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = changed.clone();
        src.connect("channel-changed", false, move |args| {
            let channel = args[1].get::<glib::Object>().expect("a channel");
            let label = (*(channel.as_ptr() as *const Labelled)).label;
            seen.lock()
                .unwrap()
                .push(CStr::from_ptr(label).to_string_lossy().into_owned());
            None
        });
        let tv = channels[1].0;
        (iface.set_channel.unwrap())(raw, tv);
        assert_eq!(input_of(&device), 1, "set_channel switched to the TV input");
        assert_eq!((iface.get_channel.unwrap())(raw), tv);
        assert_eq!(changed.lock().unwrap().as_slice(), [channels[1].1.clone()]);
        assert_eq!(src.property::<i32>("input"), 1);
        let range = &*(tv as *const ChannelRange);
        let strength = (iface.signal_strength.unwrap())(raw, tv);
        assert!(
            (range.min_signal..=range.max_signal).contains(&strength),
            "signal {strength} outside {}..{}",
            range.min_signal,
            range.max_signal
        );
        assert_eq!(
            (iface.signal_strength.unwrap())(raw, channels[2].0),
            0,
            "an input that is not the current one has no signal to report"
        );

        let norms = labelled((iface.list_norms.unwrap())(raw));
        let names: Vec<_> = norms.iter().map(|(_, l)| l.as_str()).collect();
        for wanted in ["PAL", "NTSC", "SECAM"] {
            assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
        }
        let ntsc = norms.iter().find(|(_, l)| l == "NTSC").unwrap().0;
        (iface.set_norm.unwrap())(raw, ntsc);
        assert_eq!((iface.get_norm.unwrap())(raw), ntsc);
        assert!(
            standard_of(&device).contains("NTSC"),
            "{}",
            standard_of(&device)
        );
        let norm = src.property_value("norm");
        let (_, value) = glib::EnumValue::from_value(&norm).expect("enum");
        assert_eq!(value.nick(), "NTSC");
    }
    // Capture goes on the tuner's choice: the TV input at NTSC's own picture.
    capture.play();
    let caps = capture.pull().caps_owned().expect("caps");
    assert_norm_picture(&caps, 480, gst::Fraction::new(30000, 1001));
    assert_eq!(input_of(&device), 1);
    assert_no_problems(&capture.bus(), "tuner");
}
