//! A capture card's input: vivid's HDMI input, whose source the test plays through vivid's
//! controls (which DV-timings preset it sends, or no signal, no lock, timings out of range).
//! Timings detected at start, resolution changes while streaming, the signal going away and
//! coming back, starting without one, and what `no-signal` sends meanwhile. Against vivid, in
//! the VM.

mod common;

use common::driver::{
    HdmiInput, SIGNAL_NO_LOCK, SIGNAL_NO_SIGNAL, SIGNAL_OUT_OF_RANGE, SIGNAL_SELECTED,
};
use common::watch::{Seen, Watch};
use common::{Capture, TIMEOUT, change_state, setup};
use gst::prelude::*;
use std::time::{Duration, Instant};

const P640X480: u32 = 0;
const P720X576: u32 = 4;
const P1280X720: u32 = 9;

/// `rustv4l2src ! capsfilter ! appsink` on vivid's single-planar node, watched from before it
/// starts: every frame, caps and GAP event at the sink in order, each frame checked against the
/// caps it came under.
struct Card {
    capture: Capture,
    watch: Watch,
}

impl Card {
    fn new(device: &str, src_props: &str, caps: &str) -> Card {
        let capture = Capture::new(device, src_props, &format!("capsfilter caps={caps}"));
        let watch = Watch::checking(capture.sink.upcast_ref(), &capture.bus(), |pad, buffer| {
            let caps = pad.current_caps().expect("caps before a buffer");
            let (width, height) = size_of(&caps);
            assert_eq!(
                buffer.size(),
                (width * height * 2) as usize,
                "a {width}x{height} YUY2 frame under caps {caps}"
            );
            assert!(buffer.pts().is_some(), "a frame without PTS under {caps}");
        });
        Card { capture, watch }
    }

    /// Pulls frames until `n` of `width`x`height` came (others may come first: those on their
    /// way when the source changed).
    fn frames_of(&self, n: usize, width: i32, height: i32) {
        let start = Instant::now();
        let mut got = 0;
        while got < n {
            assert!(
                start.elapsed() < TIMEOUT * 2,
                "{got} of {n} {width}x{height} frames within {:?}; seen {:?}",
                TIMEOUT * 2,
                self.sizes()
            );
            let sample = self.capture.pull();
            let s = sample.caps().unwrap().structure(0).unwrap().to_owned();
            if (
                s.get::<i32>("width").unwrap(),
                s.get::<i32>("height").unwrap(),
            ) == (width, height)
            {
                got += 1;
            }
        }
    }

    /// The sizes of the frames seen, each once, in order.
    fn sizes(&self) -> Vec<(i32, i32)> {
        let mut out: Vec<(i32, i32)> = Vec::new();
        let mut size = None;
        for (_, seen) in self.watch.seen() {
            match seen {
                Seen::Caps(caps) => size = Some(size_of(&caps)),
                Seen::Buffer(_) => {
                    let size = size.expect("caps before a frame");
                    if out.last() != Some(&size) {
                        out.push(size);
                    }
                }
                Seen::Gap(..) => {}
            }
        }
        out
    }

    fn gaps(&self) -> usize {
        self.watch.gaps().len()
    }

    /// The element messages named `name` (all of them for "") that are waiting on the bus, and
    /// the warnings and errors; other messages are dropped.
    fn messages(&self, name: &str) -> (Vec<gst::Structure>, Vec<gst::Message>) {
        let bus = self.capture.bus();
        let (mut named, mut problems) = (Vec::new(), Vec::new());
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure()
                        && (name.is_empty() || s.name() == name)
                    {
                        named.push(s.to_owned());
                    }
                }
                gst::MessageView::Warning(_) | gst::MessageView::Error(_) => problems.push(msg),
                _ => {}
            }
        }
        (named, problems)
    }
}

/// The width and height of raw video caps.
fn size_of(caps: &gst::CapsRef) -> (i32, i32) {
    let s = caps.structure(0).expect("a structure");
    (
        s.get("width").expect("a width"),
        s.get("height").expect("a height"),
    )
}

fn describe_all(msgs: &[gst::Message]) -> Vec<String> {
    msgs.iter().map(common::describe).collect()
}

/// The receiver is set to 640x480 and the source sends 1280x720: the element sets what it
/// detects before listing formats, and captures the source's own size and rate, not the
/// largest its scaler offers; a caps filter may still ask for a scaled size.
#[test]
fn the_source_s_timings_are_detected_and_set_at_start() {
    let _device = setup();
    let device = common::vivid_sp();
    let _hdmi = HdmiInput::select(&device, P640X480, P1280X720);
    let card = Card::new(&device, "", "video/x-raw,format=YUY2");
    card.capture.play();
    let sample = card.capture.pull();
    let s = sample.caps().unwrap().structure(0).unwrap().to_owned();
    assert_eq!(
        (
            s.get::<i32>("width").unwrap(),
            s.get::<i32>("height").unwrap()
        ),
        (1280, 720),
        "{s}"
    );
    assert_eq!(
        s.get::<gst::Fraction>("framerate").unwrap(),
        gst::Fraction::new(60, 1)
    );
    let timings = common::v4l2_ctl_ok(&["-d", &device, "--get-dv-timings"]);
    assert!(timings.contains("Active width: 1280"), "{timings}");
    common::assert_no_problems(&card.capture.bus(), "start");
    drop(card);

    let scaled = Card::new(&device, "", "video/x-raw,format=YUY2,width=640,height=360");
    scaled.capture.play();
    scaled.frames_of(3, 640, 360);
    common::assert_no_problems(&scaled.capture.bus(), "scaled");
}

/// 1280x720 -> 720x576 -> 640x480 while PLAYING: each change renegotiates (caps before the
/// first new frame: the probe checks every buffer against the caps it came under), posts
/// `rustv4l2src-source-changed` with both pictures, and frames go on with monotonic PTS and no
/// error.
#[test]
fn resolution_changes_while_streaming_renegotiate() {
    let _device = setup();
    let device = common::vivid_sp();
    let hdmi = HdmiInput::select(&device, P1280X720, P1280X720);
    let card = Card::new(&device, "", "video/x-raw,format=YUY2");
    card.capture.play();
    card.frames_of(5, 1280, 720);
    hdmi.send(SIGNAL_SELECTED, P720X576);
    card.frames_of(5, 720, 576);
    hdmi.send(SIGNAL_SELECTED, P640X480);
    card.frames_of(5, 640, 480);
    assert_eq!(card.sizes(), [(1280, 720), (720, 576), (640, 480)]);
    card.watch.assert_monotonic();
    let (changes, problems) = card.messages("rustv4l2src-source-changed");
    assert!(problems.is_empty(), "{:?}", describe_all(&problems));
    assert_eq!(changes.len(), 2, "{changes:?}");
    let size = |s: &gst::Structure, prefix: &str| {
        (
            s.get::<i32>(format!("{prefix}width").as_str()).unwrap(),
            s.get::<i32>(format!("{prefix}height").as_str()).unwrap(),
        )
    };
    assert_eq!(size(&changes[0], "old-"), (1280, 720));
    assert_eq!(size(&changes[0], ""), (720, 576));
    assert_eq!(
        changes[0].get::<gst::Fraction>("framerate").unwrap(),
        gst::Fraction::new(50, 1)
    );
    assert_eq!(changes[0].get::<&str>("device").unwrap(), device);
    assert_eq!(size(&changes[1], "old-"), (720, 576));
    assert_eq!(size(&changes[1], ""), (640, 480));
    assert_eq!(
        changes[1].get::<&str>("interlace-mode").unwrap(),
        "progressive"
    );
}

/// The signal goes away for 3 s: one warning naming the device, `rustv4l2src-signal`
/// present=false, GAP events meanwhile, then present=true and frames again, every timestamp
/// after the one before.
#[test]
fn no_signal_for_seconds_sends_gaps_then_frames_resume() {
    let _device = setup();
    let device = common::vivid_sp();
    let hdmi = HdmiInput::select(&device, P640X480, P640X480);
    let card = Card::new(&device, "", "video/x-raw,format=YUY2");
    card.capture.play();
    card.frames_of(5, 640, 480);
    hdmi.send(SIGNAL_NO_SIGNAL, P640X480);
    std::thread::sleep(Duration::from_secs(3));
    let (signal, problems) = card.messages("rustv4l2src-signal");
    assert_eq!(signal.len(), 1, "{signal:?}");
    assert!(!signal[0].get::<bool>("present").unwrap());
    assert_eq!(signal[0].get::<&str>("reason").unwrap(), "no signal");
    assert_eq!(problems.len(), 1, "{:?}", describe_all(&problems));
    let text = common::describe(&problems[0]);
    assert!(
        text.starts_with("WARNING") && text.contains(&device) && text.contains("no signal"),
        "{text}"
    );
    let gaps = card.gaps();
    // About 59 a second; the VM may be slow to send them, not to time them.
    assert!(gaps >= 30, "{gaps} GAP events in 3 s without signal");
    // Drop what was queued before the loss, then frames again once it is back.
    while card.capture.try_pull(Duration::ZERO).is_some() {}
    hdmi.send(SIGNAL_SELECTED, P640X480);
    card.frames_of(5, 640, 480);
    let (signal, problems) = card.messages("rustv4l2src-signal");
    assert!(problems.is_empty(), "{:?}", describe_all(&problems));
    assert_eq!(signal.len(), 1, "{signal:?}");
    assert!(signal[0].get::<bool>("present").unwrap());
    assert!(signal[0].get::<f64>("seconds-away").unwrap() >= 2.5);
    card.watch.assert_monotonic();
    let (changes, _) = card.messages("rustv4l2src-source-changed");
    assert!(
        changes.is_empty(),
        "the same timings came back: {changes:?}"
    );
}

/// No lock and timings out of range are losses of signal too, each with its reason.
#[test]
fn no_lock_and_out_of_range_are_signal_loss_too() {
    let _device = setup();
    let device = common::vivid_sp();
    let hdmi = HdmiInput::select(&device, P640X480, P640X480);
    let card = Card::new(&device, "", "video/x-raw,format=YUY2");
    card.capture.play();
    card.frames_of(3, 640, 480);
    for (mode, reason) in [
        (SIGNAL_NO_LOCK, "no lock"),
        (SIGNAL_OUT_OF_RANGE, "out of range"),
    ] {
        hdmi.send(mode, P640X480);
        let deadline = Instant::now() + TIMEOUT;
        let lost = loop {
            // The first absent one: a present=true of the round before may come first.
            let (signal, _) = card.messages("rustv4l2src-signal");
            if let Some(s) = signal
                .into_iter()
                .find(|s| !s.get::<bool>("present").unwrap())
            {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "no rustv4l2src-signal for {reason}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!lost.get::<bool>("present").unwrap());
        assert_eq!(lost.get::<&str>("reason").unwrap(), reason);
        while card.capture.try_pull(Duration::ZERO).is_some() {}
        hdmi.send(SIGNAL_SELECTED, P640X480);
        card.frames_of(3, 640, 480);
    }
    card.watch.assert_monotonic();
}

/// Started with no signal: PLAYING all the same, one warning, no frame until the source
/// comes; then the source's own caps and frames.
#[test]
fn starting_without_signal_waits_then_streams() {
    let _device = setup();
    let device = common::vivid_sp();
    let hdmi = HdmiInput::select(&device, P640X480, P640X480);
    hdmi.send(SIGNAL_NO_SIGNAL, P640X480);
    let card = Card::new(&device, "", "video/x-raw,format=YUY2");
    card.capture.play();
    // The pipeline gets to PLAYING without a picture: the sink prerolls on the GAP events
    // sent under caps for what the receiver is set to.
    let (done, state, pending) = card.capture.pipeline.state(gst::ClockTime::from_seconds(5));
    assert_eq!(
        (done, state),
        (Ok(gst::StateChangeSuccess::Success), gst::State::Playing),
        "no signal: still {state:?}, pending {pending:?}"
    );
    assert!(
        card.capture.try_pull(Duration::from_secs(1)).is_none(),
        "a frame without signal"
    );
    assert!(card.gaps() >= 5, "{} GAP events in 1 s", card.gaps());
    let (signal, problems) = card.messages("rustv4l2src-signal");
    assert_eq!(signal.len(), 1, "{signal:?}");
    assert!(!signal[0].get::<bool>("present").unwrap());
    assert_eq!(problems.len(), 1, "{:?}", describe_all(&problems));
    hdmi.send(SIGNAL_SELECTED, P720X576);
    card.frames_of(3, 720, 576);
    let (element, _) = card.messages("");
    let names: Vec<&str> = element.iter().map(|s| s.name().as_str()).collect();
    // The first picture is no change of source (the caps before it were nobody's picture):
    // only that the signal is there.
    assert_eq!(names, ["rustv4l2src-signal"], "{element:?}");
    assert!(element[0].get::<bool>("present").unwrap(), "{element:?}");
    card.watch.assert_monotonic();
}

/// Stopped (READY) while the signal is away and started again: running time starts again, and
/// the GAP events with it, not from where the stream before ended (seconds later).
#[test]
fn restarted_without_signal_sends_gap_events_at_once() {
    let _device = setup();
    let device = common::vivid_sp();
    let hdmi = HdmiInput::select(&device, P640X480, P640X480);
    let card = Card::new(&device, "", "video/x-raw,format=YUY2");
    card.capture.play();
    card.frames_of(3, 640, 480);
    // Long enough that the stream before ends well past where the next one starts.
    std::thread::sleep(Duration::from_secs(3));
    hdmi.send(SIGNAL_NO_SIGNAL, P640X480);
    let lost = Instant::now();
    while !card
        .watch
        .seen()
        .iter()
        .any(|(at, s)| *at > lost && matches!(s, Seen::Gap(..)))
    {
        assert!(lost.elapsed() < TIMEOUT, "no GAP event after the loss");
        std::thread::sleep(Duration::from_millis(10));
    }
    change_state(card.capture.element(), gst::State::Ready, TIMEOUT);
    let restarted = Instant::now();
    card.capture.play();
    let (done, state, _) = card.capture.pipeline.state(gst::ClockTime::from_seconds(1));
    assert_eq!(
        (done, state),
        (Ok(gst::StateChangeSuccess::Success), gst::State::Playing),
        "restarted without signal: not PLAYING within 1 s"
    );
    let gaps: Vec<_> = card
        .watch
        .seen()
        .into_iter()
        .filter(|(at, s)| *at > restarted && matches!(s, Seen::Gap(..)))
        .collect();
    assert!(!gaps.is_empty(), "no GAP event within 1 s of the restart");
}

/// `no-signal=black` from the start: black frames of the size the receiver is set to until
/// the first picture.
#[test]
fn no_signal_black_at_start_sends_black_frames_until_the_picture() {
    let _device = setup();
    let device = common::vivid_sp();
    let hdmi = HdmiInput::select(&device, P640X480, P640X480);
    hdmi.send(SIGNAL_NO_SIGNAL, P640X480);
    let card = Card::new(&device, "no-signal=black", "video/x-raw,format=YUY2");
    card.capture.play();
    for _ in 0..5 {
        let sample = card.capture.pull();
        assert_eq!(size_of(sample.caps().unwrap()), (640, 480));
        let map = sample.buffer().unwrap().map_readable().unwrap();
        assert!(
            map.chunks_exact(4).all(|yuyv| yuyv == [16, 128, 16, 128]),
            "not black"
        );
    }
    hdmi.send(SIGNAL_SELECTED, P720X576);
    card.frames_of(3, 720, 576);
    card.watch.assert_monotonic();
}

/// `no-signal=black`: frames of the last caps, black, while the signal is away.
#[test]
fn no_signal_black_sends_black_frames_of_the_last_caps() {
    let _device = setup();
    let device = common::vivid_sp();
    let hdmi = HdmiInput::select(&device, P640X480, P640X480);
    let card = Card::new(&device, "no-signal=black", "video/x-raw,format=YUY2");
    card.capture.play();
    card.frames_of(3, 640, 480);
    hdmi.send(SIGNAL_NO_SIGNAL, P640X480);
    let deadline = Instant::now() + TIMEOUT;
    let mut black = 0;
    while black < 10 {
        assert!(Instant::now() < deadline, "{black} black frames");
        let buffer = card.capture.pull_buffer();
        let map = buffer.map_readable().unwrap();
        if map.chunks_exact(4).all(|yuyv| yuyv == [16, 128, 16, 128]) {
            black += 1;
        }
    }
    assert_eq!(card.gaps(), 0);
    hdmi.send(SIGNAL_SELECTED, P640X480);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "no picture after the signal came back"
        );
        let buffer = card.capture.pull_buffer();
        let map = buffer.map_readable().unwrap();
        if !map.chunks_exact(4).all(|yuyv| yuyv == [16, 128, 16, 128]) {
            break;
        }
    }
    card.watch.assert_monotonic();
}

/// `no-signal=error`: the loss is an error naming the device and the cause, as v4l2src's
/// would be.
#[test]
fn no_signal_error_posts_an_error() {
    let _device = setup();
    let device = common::vivid_sp();
    let hdmi = HdmiInput::select(&device, P640X480, P640X480);
    let card = Card::new(&device, "no-signal=error", "video/x-raw,format=YUY2");
    card.capture.play();
    card.frames_of(3, 640, 480);
    hdmi.send(SIGNAL_NO_SIGNAL, P640X480);
    let bus = card.capture.bus();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::try_from(TIMEOUT).unwrap(),
            &[gst::MessageType::Error],
        )
        .expect("an error");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    assert!(e.error().matches(gst::ResourceError::Read), "{}", e.error());
    let text = e.error().to_string();
    assert!(
        text.contains(&device) && text.contains("no signal"),
        "{text}"
    );
    change_state(card.capture.element(), gst::State::Null, TIMEOUT);
}

/// An analog input (vivid's S-Video, PAL) whose signal goes away: the input's status says so,
/// the same warning and messages as for HDMI, GAP events, then frames of the norm's size again.
#[test]
fn analog_signal_loss_is_seen_in_the_input_status() {
    let _device = setup();
    let device = common::vivid_sp();
    let _svideo = common::SVideoInput::select(&device);
    let card = Card::new(&device, "", "video/x-raw,format=YUY2");
    card.capture.play();
    card.frames_of(3, 720, 576);
    common::v4l2_ctl_ok(&["-d", &device, "-c", "standard_signal_mode=1"]);
    let restore = scopeguard(&device);
    let deadline = Instant::now() + TIMEOUT;
    let lost = loop {
        let (signal, _) = card.messages("rustv4l2src-signal");
        if let Some(s) = signal.into_iter().next() {
            break s;
        }
        assert!(Instant::now() < deadline, "no rustv4l2src-signal");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!lost.get::<bool>("present").unwrap());
    assert_eq!(lost.get::<&str>("reason").unwrap(), "no signal");
    std::thread::sleep(Duration::from_secs(1));
    assert!(card.gaps() >= 5, "{} GAP events", card.gaps());
    while card.capture.try_pull(Duration::ZERO).is_some() {}
    drop(restore);
    card.frames_of(3, 720, 576);
    let (signal, _) = card.messages("rustv4l2src-signal");
    assert!(
        signal.iter().any(|s| s.get::<bool>("present").unwrap()),
        "{signal:?}"
    );
    card.watch.assert_monotonic();
}

/// Puts vivid's analog signal back when dropped.
struct StdSignal(String);

fn scopeguard(device: &str) -> StdSignal {
    StdSignal(device.to_string())
}

impl Drop for StdSignal {
    fn drop(&mut self) {
        let _ = std::process::Command::new("v4l2-ctl")
            .args(["-d", &self.0, "-c", "standard_signal_mode=0"])
            .status();
    }
}
