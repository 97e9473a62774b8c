//! Default caps on a real driver: with nothing downstream naming a size or rate, the element
//! captures the largest size that reaches 30 fps, at its highest rate, rather than the largest
//! size at whatever rate; a caps filter decides what it names.
//!
//! What vivid lists is read with `v4l2-ctl`, not with the element's own probing. Its webcam
//! input has the same sizes and rates for every pixel format (one table in vivid-vid-cap.c), and
//! YUYV is its first, so YUYV's table decides. On Debian's 6.1 kernel that table is 320x180
//! (up to 60 fps), 640x360 (40), 640x480 (25), 1280x720 (12.5), 1920x1080 (5) and 3840x2160
//! (2): the default is 640x360 at 40 fps.
//!
//! Needs vivid's nodes (see `common`): run through `scripts/vm-run`.

mod common;

use common::{Capture, TIMEOUT, change_state, setup};

/// One frame size vivid lists for YUYV, with its rates in frames per second, highest first.
#[derive(Debug)]
struct Listed {
    width: i32,
    height: i32,
    rates: Vec<f64>,
}

impl Listed {
    fn area(&self) -> i64 {
        i64::from(self.width) * i64::from(self.height)
    }

    fn fastest(&self) -> f64 {
        self.rates.first().copied().unwrap_or(0.0)
    }
}

/// 30 fps as the element counts it: NTSC's 30000/1001 included. `v4l2-ctl` prints that as
/// "29.970 fps", a hair below the exact value, hence the margin.
const SMOOTH: f64 = 29.969;

/// `--list-framesizes YUYV`, then `--list-frameintervals` for each size: what the driver lists,
/// largest size first.
fn listed(device: &str) -> Vec<Listed> {
    let mut sizes: Vec<Listed> = common::v4l2_ctl_ok(&["-d", device, "--list-framesizes", "YUYV"])
        .lines()
        // "	Size: Discrete 640x360"
        .filter_map(|line| line.trim().strip_prefix("Size: Discrete "))
        .map(|size| {
            let (w, h) = size.trim().split_once('x').expect("WxH");
            let (width, height) = (w.parse().expect("width"), h.parse().expect("height"));
            let which = format!("width={width},height={height},pixelformat=YUYV");
            let mut rates: Vec<f64> =
                common::v4l2_ctl_ok(&["-d", device, "--list-frameintervals", &which])
                    .lines()
                    // "	Interval: Discrete 0.025s (40.000 fps)"
                    .filter_map(|line| {
                        let (_, fps) = line.split_once('(')?;
                        fps.strip_suffix(" fps)")?.parse().ok()
                    })
                    .collect();
            rates.sort_by(|a, b| b.total_cmp(a));
            Listed {
                width,
                height,
                rates,
            }
        })
        .collect();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.area()));
    assert!(
        sizes.len() > 1 && sizes.iter().all(|s| !s.rates.is_empty()),
        "vivid's webcam input lists several sizes, each with rates: {sizes:?}"
    );
    sizes
}

/// The caps of the first frame `rustv4l2src ! <filter> ! appsink` delivers, as (format, width,
/// height, frames per second).
fn negotiated(device: &str, filter: &str) -> (String, i32, i32, f64) {
    let capture = Capture::new(device, "", filter);
    capture.play();
    let sample = capture.pull();
    let caps = sample.caps().expect("samples carry caps");
    let s = caps.structure(0).expect("a structure");
    let rate = s
        .get::<gst::Fraction>("framerate")
        .unwrap_or_else(|_| panic!("{filter}: no fixed framerate in {caps}"));
    let got = (
        s.get::<String>("format").unwrap_or_default(),
        s.get::<i32>("width").unwrap_or_default(),
        s.get::<i32>("height").unwrap_or_default(),
        f64::from(rate.numer()) / f64::from(rate.denom()),
    );
    change_state(capture.element(), gst::State::Null, TIMEOUT);
    got
}

fn assert_negotiated(device: &str, filter: &str, want: &Listed, why: &str) {
    let (format, width, height, fps) = negotiated(device, filter);
    assert_eq!(
        (format.as_str(), width, height),
        ("YUY2", want.width, want.height),
        "{filter}: {why}"
    );
    // v4l2-ctl prints rates to three decimals.
    assert!(
        (fps - want.fastest()).abs() < 0.001,
        "{filter}: {why}: {fps} fps, expected the size's highest, {}",
        want.fastest()
    );
}

/// Nothing downstream constrains it (a capsfilter without caps, an appsink without caps): the
/// largest size vivid lists whose rate reaches 30 fps, at its highest rate, not the largest size.
#[test]
fn unconstrained_takes_the_largest_size_that_reaches_30_fps() {
    let _device = setup();
    let device = common::vivid_sp();
    let sizes = listed(&device);
    let want = sizes
        .iter()
        .find(|s| s.fastest() >= SMOOTH)
        .expect("vivid lists a size that reaches 30 fps");
    assert!(
        sizes[0].fastest() < SMOOTH,
        "vivid's largest size is slow, which this test is about: {sizes:?}"
    );
    assert_negotiated(
        &device,
        "capsfilter",
        want,
        "the largest size that reaches 30 fps",
    );
    // The multi-planar node lists the same.
    assert_negotiated(
        &common::vivid_mp(),
        "capsfilter",
        want,
        "the largest size that reaches 30 fps, multi-planar",
    );
}

/// A filter that names a size gets it, slow as it is, at its highest rate.
#[test]
fn a_filter_that_names_the_size_decides_it() {
    let _device = setup();
    let device = common::vivid_sp();
    let sizes = listed(&device);
    // The second largest: slow too, and lighter than 4K to render in an emulated VM.
    let slow = sizes
        .iter()
        .skip(1)
        .find(|s| s.fastest() < SMOOTH)
        .expect("vivid lists more than one size below 30 fps");
    let filter = format!("video/x-raw,width={},height={}", slow.width, slow.height);
    assert_negotiated(&device, &filter, slow, "the size the filter names");
}

/// A filter that names a rate gets the largest size that can do it: at 60 fps the smallest of
/// vivid's sizes; at 25 fps a larger one than the default.
#[test]
fn a_filter_that_names_a_rate_gets_the_largest_size_that_can_do_it() {
    let _device = setup();
    let device = common::vivid_sp();
    let sizes = listed(&device);
    for fps in [60, 25] {
        let want = sizes
            .iter()
            .find(|s| s.rates.iter().any(|&r| (r - f64::from(fps)).abs() < 0.001))
            .unwrap_or_else(|| panic!("vivid lists {fps} fps at some size: {sizes:?}"));
        let filter = format!("video/x-raw,framerate={fps}/1");
        let (format, width, height, got) = negotiated(&device, &filter);
        assert_eq!(
            (format.as_str(), width, height, got),
            ("YUY2", want.width, want.height, f64::from(fps)),
            "{filter}: the largest size listing {fps} fps"
        );
    }
}
