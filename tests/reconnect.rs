//! Unplug and replug with `reconnect=true` (issue 14), against vivid: its platform device is
//! unbound from the driver (the nodes go away as on a USB unplug) and bound again while a
//! pipeline streams, waits, or starts. Each test asserts frames before and after, the messages
//! on the bus (one warning, `rustv4l2src-device-lost`, `rustv4l2src-device-restored`, their
//! fields), the GAP events in between and PTS that only grow.
//!
//! Needs vivid's nodes (see `common`) and root for unbinding vivid and loading it again: run
//! through `scripts/vm-run`. vivid makes all its instances on one platform device (`vivid.0`),
//! so unbinding it removes every vivid node, and binding it makes them again in the same order.

mod common;

use common::vivid::{
    Reload, Restore, fds, modprobe, nodes, rss_kib, threads, video_mappings, vivid_driver,
    vivid_parameters,
};
use common::watch::{Seen, Watch};
use common::{TIMEOUT, bus_problems, control_id, platform_device_of, press_button, setup};

use std::path::Path;
use std::time::{Duration, Instant};

use gst::prelude::*;

const CAPS: &str = "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1";
/// `rustv4l2src ! CAPS ! fakesink`, shut down when dropped. A fakesink that keeps no last
/// sample, not an appsink, so that no frame of a lost device stays held after it went: a held
/// frame keeps its mapping, so its node's number stays taken (the device would come back under
/// another) and vivid's module stays in use.
struct Capture {
    pipeline: gst::Pipeline,
    src: gst::Element,
    sink: gst::Element,
}

impl Capture {
    fn new(device: &str, src_props: &str) -> Capture {
        let description = format!(
            "rustv4l2src name=src device={device} {src_props} ! {CAPS} ! \
             fakesink name=sink sync=false enable-last-sample=false"
        );
        let pipeline = gst::parse::launch(&description)
            .unwrap_or_else(|e| panic!("cannot build '{description}': {e}"))
            .downcast::<gst::Pipeline>()
            .expect("a launch line of several elements gives a pipeline");
        let src = pipeline.by_name("src").expect("named src");
        let sink = pipeline.by_name("sink").expect("named sink");
        Capture {
            pipeline,
            src,
            sink,
        }
    }

    fn element(&self) -> &gst::Element {
        self.pipeline.upcast_ref()
    }

    fn bus(&self) -> gst::Bus {
        self.pipeline.bus().expect("a pipeline has a bus")
    }

    fn play(&self) {
        common::change_state(self.element(), gst::State::Playing, TIMEOUT);
    }

    fn stats(&self) -> gst::Structure {
        self.src.property::<gst::Structure>("stats")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        common::shut_down(self.element());
    }
}

/// `rustv4l2src device=DEVICE SRC_PROPS ! CAPS ! fakesink`, watched from before it starts.
fn watched(device: &str, src_props: &str) -> (Capture, Watch) {
    let capture = Capture::new(device, src_props);
    let watch = Watch::new(&capture.sink, &capture.bus());
    (capture, watch)
}

/// As `watched`, PLAYING, once `frames` buffers reached the sink.
fn streaming(device: &str, src_props: &str, frames: usize) -> (Capture, Watch) {
    let (capture, watch) = watched(device, src_props);
    let started = Instant::now();
    capture.play();
    watch.wait_buffers(started, frames);
    (capture, watch)
}

/// Unplugs the device a capture streams from, checks what the element says and sends while
/// it is away for `away`, plugs it back and checks that capture goes on. Returns the wait's
/// time between the unplug and the restored message.
fn unplug_and_replug(
    capture: &Capture,
    watch: &Watch,
    device: &str,
    platform: &str,
    n: usize,
    away: Duration,
) -> Duration {
    let unplugged = Instant::now();
    vivid_driver("unbind", platform);
    let (_, lost) = watch.wait_element("rustv4l2src-device-lost", n, TIMEOUT);
    assert_eq!(
        lost.get::<String>("device").as_deref(),
        Ok(device),
        "{lost}"
    );
    let reason = lost.get::<String>("reason").expect("a reason string");
    assert!(!reason.is_empty(), "{lost}");
    std::thread::sleep(away);
    assert_eq!(
        capture.pipeline.current_state(),
        gst::State::Playing,
        "not PLAYING while the device is away"
    );
    vivid_driver("bind", platform);
    let (back_at, restored) = watch.wait_element("rustv4l2src-device-restored", n, TIMEOUT);
    assert_eq!(
        restored.get::<String>("device").as_deref(),
        Ok(device),
        "{restored}"
    );
    let seconds = restored.get::<f64>("seconds-away").expect("seconds-away");
    assert!(
        seconds >= away.as_secs_f64() && seconds < TIMEOUT.as_secs_f64(),
        "seconds-away {seconds} for {away:?} away"
    );
    assert_eq!(
        restored.get::<bool>("caps-changed"),
        Ok(false),
        "{restored}"
    );
    watch.wait_buffers(back_at, 3);
    back_at.saturating_duration_since(unplugged)
}

#[test]
fn unplug_and_replug_while_streaming_goes_on_with_gaps_between() {
    let _device = setup();
    let _restore = Restore;
    let device = common::vivid_sp();
    let platform = platform_device_of(&device);
    let (capture, watch) = streaming(&device, "reconnect=true", 5);
    let took = unplug_and_replug(
        &capture,
        &watch,
        &device,
        &platform,
        1,
        Duration::from_millis(700),
    );
    eprintln!("unplug -> restored took {took:?}");

    watch.assert_monotonic();
    let gaps = watch.gaps();
    eprintln!(
        "{} buffers, {} GAP events (first {:?}, last {:?})",
        watch
            .seen()
            .iter()
            .filter(|(_, s)| matches!(s, Seen::Buffer(_)))
            .count(),
        gaps.len(),
        gaps.first(),
        gaps.last()
    );
    // 700 ms away at 30 fps: about 20 GAP events of a frame each.
    assert!(gaps.len() >= 10, "only {} GAP events: {gaps:?}", gaps.len());
    let frame = gst::ClockTime::SECOND.mul_div_floor(1, 30).expect("fits");
    assert!(
        gaps.iter().all(|(_, d)| *d == Some(frame)),
        "GAP durations other than a frame: {gaps:?}"
    );
    let caps = watch.caps();
    assert!(
        caps.windows(2).all(|w| w[0] == w[1]),
        "the caps changed across the reconnect: {caps:?}"
    );

    let warnings = watch.warnings();
    assert_eq!(
        warnings.len(),
        1,
        "one warning for the unplug: {warnings:?}"
    );
    assert!(
        warnings[0].contains(&device) && warnings[0].contains("disconnected"),
        "{warnings:?}"
    );
    assert!(watch.errors().is_empty(), "{:?}", watch.errors());
    let stats = capture.stats();
    assert_eq!(stats.get::<u64>("disconnects"), Ok(1), "{stats}");
    let without = stats.get::<u64>("time-without-device").expect("a count");
    assert!(
        without >= 700_000_000 && without < took.as_nanos() as u64 + 100_000_000,
        "time-without-device {without} ns for {took:?} between unplug and restore"
    );
}

#[test]
fn past_the_reconnect_timeout_the_unplug_error_comes() {
    let _device = setup();
    let _restore = Restore;
    let device = common::vivid_sp();
    let platform = platform_device_of(&device);
    let (capture, watch) = streaming(&device, "reconnect=true reconnect-timeout=1", 1);
    vivid_driver("unbind", &platform);
    let (lost_at, _) = watch.wait_element("rustv4l2src-device-lost", 1, TIMEOUT);
    let error = common::TIMEOUT;
    let msg = capture
        .bus()
        .timed_pop_filtered(
            gst::ClockTime::try_from(error).expect("fits"),
            &[gst::MessageType::Error],
        )
        .unwrap_or_else(|| panic!("no error within {error:?}:{}", bus_problems(&capture.bus())));
    let after = lost_at.elapsed();
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!("filtered on errors")
    };
    eprintln!("error {after:?} after the loss: {}", e.error());
    assert!(
        e.error().matches(gst::ResourceError::NotFound),
        "{:?}",
        e.error()
    );
    assert!(
        e.error().to_string().contains("disconnected") && e.error().to_string().contains(&device),
        "{}",
        e.error()
    );
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "the error came {after:?} after the loss, for a 1 s timeout"
    );
    vivid_driver("bind", &platform);
}

#[test]
fn a_device_absent_at_start_is_waited_for() {
    let _device = setup();
    let _restore = Restore;
    let device = common::vivid_sp();
    let platform = platform_device_of(&device);
    vivid_driver("unbind", &platform);
    let (capture, watch) = watched(&device, "reconnect=true");
    capture.play();
    // The source is PLAYING; the sink waits for a first buffer to complete its own change.
    let (result, state, _) = capture.src.state(gst::ClockTime::from_seconds(5));
    assert_eq!(
        (result, state),
        (Ok(gst::StateChangeSuccess::Success), gst::State::Playing)
    );
    std::thread::sleep(Duration::from_millis(500));
    let warnings = watch.warnings();
    assert_eq!(warnings.len(), 1, "one warning: {warnings:?}");
    assert!(warnings[0].contains(&device), "{warnings:?}");
    assert!(watch.errors().is_empty(), "{:?}", watch.errors());
    assert!(watch.seen().is_empty(), "{:?}", watch.seen());

    let plugged = Instant::now();
    vivid_driver("bind", &platform);
    let (back_at, restored) = watch.wait_element("rustv4l2src-device-restored", 1, TIMEOUT);
    eprintln!("plugged -> restored {:?}: {restored}", back_at - plugged);
    assert_eq!(restored.get::<String>("device").as_deref(), Ok(&*device));
    watch.wait_buffers(back_at, 5);
    let seen = watch.seen();
    assert!(matches!(seen.first(), Some((_, Seen::Caps(_)))), "{seen:?}");
    assert!(
        !seen.iter().any(|(_, s)| matches!(s, Seen::Gap(..))),
        "{seen:?}"
    );
    watch.assert_monotonic();
    assert_eq!(watch.warnings().len(), 1, "{:?}", watch.warnings());
    let stats = capture.stats();
    assert_eq!(stats.get::<u64>("disconnects"), Ok(0), "{stats}");
    assert!(stats.get::<u64>("time-without-device").expect("a count") >= 500_000_000);
}

/// How much resident memory may grow from the first cycle to the last. Not zero: GLib and
/// GStreamer keep caches (type classes, caps, free lists), and glibc's malloc raises its mmap
/// threshold the first time it frees a large mmapped block, after which blocks of that size
/// come from the heap and stay resident when freed: one step, seen once in CI as 2 MiB at
/// cycle 9 of 20, flat before and after. A leak of one frame per cycle (450 KiB at `CAPS`)
/// passes it by the tenth cycle.
const RSS_GROWTH_KIB: u64 = 4096;

/// Unplug and replug cycles (vivid unbind/bind) with `reconnect=true`: frames after each, and
/// at the end the same fds and mappings as after the first, no more threads, and RSS within
/// `RSS_GROWTH_KIB`. 20 cycles; `RUSTV4L2_UNPLUG_CYCLES` sets another count (the soak
/// benchmark runs 100).
#[test]
fn unplug_cycles_leak_no_fd_mapping_thread_or_memory() {
    let cycles: usize = std::env::var("RUSTV4L2_UNPLUG_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let _device = setup();
    let _restore = Restore;
    let device = common::vivid_sp();
    let platform = platform_device_of(&device);
    let (capture, watch) = streaming(&device, "reconnect=true", 1);
    let mut baseline = None;
    let mut rss_start = 0;
    for n in 1..=cycles {
        unplug_and_replug(
            &capture,
            &watch,
            &device,
            &platform,
            n,
            Duration::from_millis(100),
        );
        let mut now = (fds(), video_mappings(), threads());
        // No more than at the first cycle: GStreamer and GLib start short-lived threads of
        // their own (a state change's continuation, a pool worker), and end idle ones (GLib's
        // thread pools after 15 s: seen in the soak's 100 cycles as one thread fewer at cycle
        // 41). Give a new one a moment to end; a leak never comes back.
        let within = |now: (usize, usize, usize), base: (usize, usize, usize)| {
            now.0 == base.0 && now.1 == base.1 && now.2 <= base.2
        };
        if let Some(base) = baseline {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !within(now, base) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
                now = (fds(), video_mappings(), threads());
            }
        }
        let rss = rss_kib();
        eprintln!("after cycle {n}: fds, mappings, threads {now:?}, RSS {rss} KiB");
        match baseline {
            None => (baseline, rss_start) = (Some(now), rss),
            Some(base) => assert!(
                within(now, base),
                "after cycle {n}: fds, mappings, threads {now:?}, at cycle 1 {base:?} (the same \
                 fds and mappings, no more threads)"
            ),
        }
    }
    let growth = rss_kib().saturating_sub(rss_start);
    eprintln!("RSS grew {growth} KiB from cycle 1 to cycle {cycles}");
    assert!(
        growth <= RSS_GROWTH_KIB,
        "RSS grew {growth} KiB over {cycles} unplugs"
    );
    watch.assert_monotonic();
    assert_eq!(watch.warnings().len(), cycles, "{:?}", watch.warnings());
    assert!(watch.errors().is_empty(), "{:?}", watch.errors());
    assert_eq!(capture.stats().get::<u64>("disconnects"), Ok(cycles as u64));
}

#[test]
fn another_device_on_the_node_is_not_taken_and_the_device_is_found_on_another() {
    let _device = setup();
    let device = common::vivid_sp();
    assert_eq!(device, "/dev/video0", "the rig's first vivid capture node");
    let platform = platform_device_of(&device);
    let _reload = Reload(vivid_parameters());
    let (_capture, watch) = streaming(&device, "reconnect=true", 1);
    vivid_driver("unbind", &platform);
    watch.wait_element("rustv4l2src-device-lost", 1, TIMEOUT);
    // The module goes only once nothing holds a node of it: the element let go of everything.
    modprobe(&["-r", "vivid"]);
    // The second instance (another device) takes /dev/video0, the first (the lost one) comes
    // back as /dev/video2.
    modprobe(&[
        "vivid",
        "n_devs=2",
        "node_types=0x1,0x1",
        "multiplanar=1,1",
        "vid_cap_nr=2,0",
    ]);
    let name = |node: &str| {
        std::fs::read_to_string(format!("/sys/class/video4linux/{node}/name")).unwrap_or_default()
    };
    assert_eq!(name("video0").trim(), "vivid-001-vid-cap", "{}", nodes());
    assert_eq!(name("video2").trim(), "vivid-000-vid-cap", "{}", nodes());
    let (back_at, restored) = watch.wait_element("rustv4l2src-device-restored", 1, TIMEOUT);
    let now_at = restored.get::<String>("device").expect("a device path");
    eprintln!("came back at {now_at}: {restored}");
    assert_eq!(now_at, "/dev/video2", "{}", nodes());
    watch.wait_buffers(back_at, 3);
    assert_eq!(
        watch.element_messages("rustv4l2src-device-restored").len(),
        1
    );
    watch.assert_monotonic();
    assert!(watch.errors().is_empty(), "{:?}", watch.errors());
}

/// A symbolic link made as udev makes `/dev/v4l/by-id/...`, removed when dropped.
struct Link(std::path::PathBuf);

impl Link {
    fn point_at(&self, node: &str) {
        let _ = std::fs::remove_file(&self.0);
        std::os::unix::fs::symlink(node, &self.0)
            .unwrap_or_else(|e| panic!("linking {} to {node}: {e}", self.0.display()));
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_stable_link_is_followed_to_wherever_it_points_now() {
    let _device = setup();
    let device = common::vivid_sp();
    assert_eq!(device, "/dev/video0", "the rig's first vivid capture node");
    let platform = platform_device_of(&device);
    let _reload = Reload(vivid_parameters());
    // Where udev makes them (the element knows a stable link by its place, also once udev
    // removed it on the unplug).
    std::fs::create_dir_all("/dev/v4l/by-id").expect("make /dev/v4l/by-id");
    let link = Link(
        Path::new("/dev/v4l/by-id")
            .join(format!("rustv4l2-test-{}-video-index0", std::process::id())),
    );
    link.point_at(&device);
    let path = link.0.display().to_string();
    let (_capture, watch) = streaming(&path, "reconnect=true", 1);
    vivid_driver("unbind", &platform);
    // As udev does on the remove event.
    std::fs::remove_file(&link.0).expect("remove the link");
    watch.wait_element("rustv4l2src-device-lost", 1, TIMEOUT);
    modprobe(&["-r", "vivid"]);
    modprobe(&[
        "vivid",
        "n_devs=2",
        "node_types=0x1,0x1",
        "multiplanar=1,1",
        "vid_cap_nr=2,0",
    ]);
    // udev makes the link a little after the kernel's event.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        watch
            .element_messages("rustv4l2src-device-restored")
            .is_empty(),
        "restored without the link: {:?}",
        watch.element_messages("rustv4l2src-device-restored")
    );
    link.point_at("/dev/video2");
    let (back_at, restored) = watch.wait_element("rustv4l2src-device-restored", 1, TIMEOUT);
    eprintln!("came back at {restored}");
    assert_eq!(
        restored.get::<String>("device").as_deref(),
        Ok("/dev/video2")
    );
    watch.wait_buffers(back_at, 3);
    watch.assert_monotonic();
    assert!(watch.errors().is_empty(), "{:?}", watch.errors());
}

#[test]
fn vivids_disconnect_control_then_unbind_and_bind() {
    let _device = setup();
    let _restore = Restore;
    let device = common::vivid_sp();
    let platform = platform_device_of(&device);
    let disconnect = control_id(&device, "disconnect");
    let (_capture, watch) = streaming(&device, "reconnect=true", 3);
    press_button(&device, disconnect);
    let (_, lost) = watch.wait_element("rustv4l2src-device-lost", 1, TIMEOUT);
    eprintln!("disconnect control: {lost}");
    // vivid keeps the node and takes it back into use once nobody has it open, without a
    // hot-plug event: the element, which let go of it, may find it at once. Unbinding and
    // binding is the unplug and replug that follows in any case.
    vivid_driver("unbind", &platform);
    vivid_driver("bind", &platform);
    let deadline = Instant::now() + TIMEOUT;
    let back_at = loop {
        let lost = watch.element_messages("rustv4l2src-device-lost");
        let restored = watch.element_messages("rustv4l2src-device-restored");
        if !restored.is_empty() && restored.len() == lost.len() {
            let (at, last) = restored.last().cloned().expect("not empty");
            assert_eq!(last.get::<String>("device").as_deref(), Ok(&*device));
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "lost {} times, restored {} times: {}",
            lost.len(),
            restored.len(),
            nodes()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    watch.wait_buffers(back_at, 3);
    watch.assert_monotonic();
    assert!(watch.errors().is_empty(), "{:?}", watch.errors());
    assert_eq!(
        watch.warnings().len(),
        watch.element_messages("rustv4l2src-device-lost").len(),
        "one warning per loss: {:?}",
        watch.warnings()
    );
}
