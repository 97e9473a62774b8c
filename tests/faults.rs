//! Faults, misuse and long runs against vivid: frames that outlive their stream, renegotiation
//! while frames are held, state cycling without leaks, unplugging and timeouts. Frames the
//! driver flags or drops, injected ioctl failures, bad input and the fewest buffers are in
//! tests/faults_driver.rs; what both read is tests/faults_rig.
//!
//! vivid's error-injection controls (`disconnect`, `percentage_of_dropped_buffers`,
//! `inject_*`, `wrap_*`) are set with `v4l2-ctl`, and every test that touches one puts it back
//! on the way out, also when it fails, because the tests share the device.
//!
//! Needs vivid's nodes (see `common`): run through `scripts/vm-run`. Every wait is bounded, so a
//! broken element fails a test instead of hanging the run.

mod common;
mod faults_rig;

#[allow(unused_imports)]
use faults_rig::*;

use common::{
    Capture, Control, TIMEOUT, assert_no_problems, bus_problems, change_state, control_id, fds_on,
    in_device_memory, memory_spans, open_fds, press_button, setup, wait_for_node,
};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::VideoInfo;

// ---------------------------------------------------------------------------------------------
// 1. Buffers outlive the stream.

/// Three frames kept by the application stay mapped and unchanged through NULL, the disposal
/// of the pipeline and the element, and a new stream on the device; they are unmapped, and the
/// device closed, once the application lets them go. Going to NULL does not wait for them.
#[test]
fn held_samples_outlive_null_and_dispose() {
    let _device = setup();
    let device = common::vivid_sp();
    let before = common::device_mappings(&device);
    let fds_before = fds_on(&device);

    let capture = Capture::new(
        &device,
        "buffer-count=6",
        "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
    );
    capture.play();
    let mut held: Vec<gst::Sample> = (0..3).map(|_| capture.pull()).collect();
    let mut hashes = Vec::new();
    for (i, sample) in held.iter().enumerate() {
        let buffer = sample.buffer().expect("a buffer");
        assert!(
            in_device_memory(buffer, &device),
            "held sample {i} is a copy, not a device buffer: nothing to test"
        );
        hashes.push(buffer_hash(buffer));
    }

    let took = change_state(capture.element(), gst::State::Null, STOP_LIMIT);
    eprintln!("PLAYING -> NULL with 3 samples held took {took:?}");
    let element = capture.src.downgrade();
    drop(capture);
    assert!(
        element.upgrade().is_none(),
        "rustv4l2src is still alive after its pipeline was dropped"
    );

    for (i, (sample, hash)) in held.iter().zip(&hashes).enumerate() {
        let buffer = sample.buffer().expect("a buffer");
        assert!(
            in_device_memory(buffer, &device),
            "held sample {i}: its memory is no longer in the device mappings after dispose"
        );
        assert_eq!(
            buffer_hash(buffer),
            *hash,
            "held sample {i} changed after NULL and dispose"
        );
    }

    // A new stream on the device while the old frames live: freeing one of them must not
    // queue its buffer into the new stream (same format, same buffer indices), and the others
    // must stay as they were.
    {
        let next = Capture::new(
            &device,
            "buffer-count=6",
            "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
        );
        next.play();
        for i in 0..10 {
            if i == 3 {
                drop(held.remove(0));
                hashes.remove(0);
            }
            let buffer = next.pull_buffer();
            // Under memcheck everything runs some 50 times slower, downstream falls behind and
            // the element rightly copies frames to keep the driver fed.
            assert!(
                under_memcheck() || in_device_memory(&buffer, &device),
                "new stream, frame {i}: not a device buffer"
            );
        }
        assert_no_problems(&next.bus(), "a new stream while old frames are held");
    }
    for (i, (sample, hash)) in held.iter().zip(&hashes).enumerate() {
        assert_eq!(
            buffer_hash(sample.buffer().expect("a buffer")),
            *hash,
            "held sample {} changed while a new stream ran",
            i + 1
        );
    }

    drop(held);
    assert_eq!(
        common::device_mappings(&device),
        before,
        "the device buffers stay mapped after the last held sample was dropped"
    );
    assert_eq!(
        fds_on(&device),
        fds_before,
        "{device} stays open after the element and every sample are gone: {:?}",
        open_fds()
    );
}

/// The test above again, in a child process under valgrind's memcheck: reading held samples
/// after NULL and dispose, and freeing them while a new stream runs, touches no freed or
/// unmapped memory. Memcheck knows the V4L2 ioctls, so bytes the driver wrote count as
/// initialised; leak checking is off (GLib and GStreamer keep global caches to the end).
#[test]
fn held_samples_are_valgrind_clean() {
    let _device = setup();
    let valgrind = which("valgrind")
        .expect("valgrind is not installed: scripts/setup-deps installs it (apt package valgrind)");
    let log = std::env::temp_dir().join(format!("rustv4l2-memcheck-{}.log", std::process::id()));
    let started = Instant::now();
    let output = Command::new(valgrind)
        .args([
            "--tool=memcheck",
            "--error-exitcode=97",
            "--leak-check=no",
            "--track-origins=no",
            "--num-callers=30",
            // vgdb's shared-memory file cannot be mapped from the rig's 9p-shared TMPDIR.
            "--vgdb=no",
        ])
        .arg(format!("--log-file={}", log.display()))
        .arg(std::env::current_exe().expect("own path"))
        .args([
            "--exact",
            "held_samples_outlive_null_and_dispose",
            "--test-threads=1",
        ])
        .env("G_SLICE", "always-malloc")
        .env(UNDER_MEMCHECK, "1")
        .output()
        .expect("run valgrind");
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "memcheck run took {:?}; {}",
        started.elapsed(),
        report
            .lines()
            .find(|l| l.contains("ERROR SUMMARY"))
            .unwrap_or("no summary")
    );
    assert!(
        stdout.contains("1 passed"),
        "the test did not pass under valgrind ({}):\n{stdout}\n{}\n{report}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.contains("ERROR SUMMARY: 0 errors"),
        "memcheck found errors ({}):\n{report}",
        output.status
    );
}

const UNDER_MEMCHECK: &str = "RUSTV4L2_TEST_UNDER_MEMCHECK";

fn under_memcheck() -> bool {
    std::env::var_os(UNDER_MEMCHECK).is_some()
}

/// The first `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

// ---------------------------------------------------------------------------------------------
// 2. Renegotiation while PLAYING.

/// A capsfilter change while PLAYING stops, re-allocates and restarts, while two frames of the
/// old format are still held: they stay intact, and the new frames have the new format and come
/// straight from the device.
#[test]
fn caps_change_while_playing_with_held_buffers() {
    let _device = setup();
    let device = common::vivid_sp();
    let old_caps = "video/x-raw,format=YUY2,width=640,height=360";
    let new_caps = "video/x-raw,format=NV12,width=320,height=180";
    let capture = Capture::new(
        &device,
        "buffer-count=6",
        &format!("capsfilter name=f caps=\"{old_caps}\""),
    );
    let filter = capture.pipeline.by_name("f").expect("named capsfilter");
    capture.play();

    let held: Vec<gst::Sample> = (0..2).map(|_| capture.pull()).collect();
    let old_info = video_info(old_caps);
    let mut hashes = Vec::new();
    for (i, sample) in held.iter().enumerate() {
        let buffer = sample.buffer().expect("a buffer");
        assert_eq!(buffer.size(), old_info.size(), "held sample {i} size");
        assert!(
            in_device_memory(buffer, &device),
            "held sample {i} is a copy, not a device buffer: nothing to test"
        );
        hashes.push(buffer_hash(buffer));
    }

    filter.set_property("caps", gst::Caps::from_str(new_caps).expect("valid caps"));
    let new_info = video_info(new_caps);
    let changed = Instant::now();
    let mut old_format = 0;
    let first_new = loop {
        let sample = capture.pull();
        let caps = sample.caps().expect("samples carry caps").to_owned();
        let info = VideoInfo::from_caps(&caps).expect("video caps");
        if (info.format(), info.width(), info.height())
            == (new_info.format(), new_info.width(), new_info.height())
        {
            break sample;
        }
        old_format += 1;
        assert!(
            changed.elapsed() < TIMEOUT,
            "{TIMEOUT:?} after the capsfilter changed, samples still have {caps}:{}",
            bus_problems(&capture.bus())
        );
    };
    eprintln!(
        "new caps after {:?} and {old_format} samples of the old format",
        changed.elapsed()
    );

    let mut new_buffers = vec![first_new.buffer_owned().expect("a buffer")];
    new_buffers.extend((0..4).map(|_| capture.pull_buffer()));
    for (i, buffer) in new_buffers.iter().enumerate() {
        assert_eq!(
            buffer.size(),
            new_info.size(),
            "new-format buffer {i}: size of NV12 320x180 expected"
        );
        assert!(
            buffer
                .map_readable()
                .expect("readable")
                .iter()
                .any(|&b| b != 0),
            "new-format buffer {i} is all zeros"
        );
    }
    assert!(
        in_device_memory(&new_buffers[0], &device),
        "the first buffer after renegotiation is not in the device mappings: {:x?} vs {:x?}",
        memory_spans(&new_buffers[0]),
        common::device_mappings(&device)
    );

    for (i, (sample, hash)) in held.iter().zip(&hashes).enumerate() {
        let buffer = sample.buffer().expect("a buffer");
        assert_eq!(
            buffer_hash(buffer),
            *hash,
            "held sample {i} of the old format changed after renegotiation"
        );
    }
    assert_no_problems(&capture.bus(), "renegotiation");

    // Once the old frames go, so do the old stream's buffers: only the new ones stay mapped.
    drop(held);
    drop(new_buffers);
    drop(first_new);
    capture.pull();
    let mapped = common::device_mappings(&device).len();
    assert_eq!(
        mapped, 6,
        "after the old frames were dropped, {mapped} buffers are mapped; buffer-count=6"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. State cycling.

/// 200 NULL -> PLAYING -> NULL cycles of one pipeline, each until a buffer arrives, leak no file
/// descriptor, mapping or memory.
#[test]
fn state_cycling_leaks_nothing() {
    const WARM_UP: usize = 10;
    const CYCLES: usize = 200;
    const RSS_GROWTH_LIMIT_KB: u64 = 8 * 1024;
    const FD_SLACK: usize = 2;
    let _device = setup();
    let device = common::vivid_sp();
    let mappings_at_start = common::device_mappings(&device);
    let capture = Capture::new(
        &device,
        "",
        "video/x-raw,format=YUY2,width=320,height=180,framerate=60/1",
    );
    // Nothing is pulled: appsink keeps at most the newest buffer and lets it go at NULL. A
    // pulled sample would stay in appsink (GStreamer 1.22) until the next pull, holding its
    // stream's queue and device descriptor across NULL: seen in CI as the device "staying open".
    capture.sink.set_max_buffers(1);
    capture.sink.set_drop(true);
    let pushed = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&pushed);
    capture.src.static_pad("src").expect("src pad").add_probe(
        gst::PadProbeType::BUFFER,
        move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        },
    );

    let cycle = |n: usize| {
        let before = pushed.load(Ordering::SeqCst);
        capture.play();
        let deadline = Instant::now() + TIMEOUT;
        while pushed.load(Ordering::SeqCst) == before {
            assert!(
                Instant::now() < deadline,
                "cycle {n}: no buffer within {TIMEOUT:?}:{}",
                bus_problems(&capture.bus())
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        change_state(capture.element(), gst::State::Null, STOP_LIMIT);
    };

    for n in 0..WARM_UP {
        cycle(n);
    }
    let fds = open_fds();
    let mappings = common::device_mappings(&device);
    let rss = status_kb("VmRSS");
    let anon = status_kb("RssAnon");
    let thread_count = threads();
    let started = Instant::now();
    for n in 0..CYCLES {
        cycle(WARM_UP + n);
    }
    let took = started.elapsed();
    let fds_after = open_fds();
    let mappings_after = common::device_mappings(&device);
    let rss_after = status_kb("VmRSS");
    let anon_after = status_kb("RssAnon");
    let threads_after = threads();
    eprintln!(
        "{CYCLES} cycles took {took:?} ({:?} each); VmRSS {rss} kB -> {rss_after} kB \
         ({:+} kB), RssAnon {anon} kB -> {anon_after} kB; fds {} -> {}; device mappings {} \
         -> {}; threads {thread_count} -> {threads_after}",
        took / CYCLES as u32,
        rss_after as i64 - rss as i64,
        fds.len(),
        fds_after.len(),
        mappings.len(),
        mappings_after.len()
    );
    assert_no_problems(&capture.bus(), "state cycling");
    // A leak in the element costs at least one descriptor per cycle. GLib and GStreamer may
    // open a descriptor lazily, on first use, from their own threads, so a small constant
    // difference is not a leak; the device itself must not stay open at all.
    let opened: Vec<_> = fds_after.iter().filter(|fd| !fds.contains(fd)).collect();
    assert!(
        fds_after.len() <= fds.len() + FD_SLACK,
        "{} more file descriptors after {CYCLES} cycles; new ones: {opened:?}",
        fds_after.len() as i64 - fds.len() as i64
    );
    assert!(
        !opened
            .iter()
            .any(|(_, target)| target == Path::new(&device)),
        "the device stayed open after {CYCLES} cycles: {opened:?}"
    );
    assert_eq!(
        mappings_after.len(),
        mappings.len(),
        "device mappings before {mappings:x?}, after {CYCLES} cycles {mappings_after:x?}"
    );
    assert!(
        rss_after < rss + RSS_GROWTH_LIMIT_KB,
        "VmRSS grew from {rss} kB to {rss_after} kB over {CYCLES} cycles"
    );
    assert!(
        threads_after <= thread_count,
        "threads grew from {thread_count} to {threads_after} over {CYCLES} cycles"
    );
    drop(capture);
    assert_eq!(
        common::device_mappings(&device),
        mappings_at_start,
        "device mappings remain after the cycled pipeline was dropped"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Unplug.

/// vivid's `disconnect` makes the node vanish (ENODEV, POLLERR) while streaming: the element
/// posts an error saying the device was disconnected within about a frame period, does not
/// spin, stops promptly, and lets go of the node so it can come back.
#[test]
fn unplug_posts_an_error_within_a_frame() {
    const LATENCY_LIMIT: Duration = Duration::from_millis(500);
    let _device = setup();
    let device = common::vivid_sp();
    let _reconnect = Reconnect {
        device: device.clone(),
    };
    let capture = Capture::new(
        &device,
        "",
        "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
    );
    let posted: Arc<Mutex<Option<Instant>>> = Arc::default();
    let first_error = Arc::clone(&posted);
    capture.bus().set_sync_handler(move |_, msg| {
        if msg.type_() == gst::MessageType::Error {
            first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(Instant::now);
        }
        gst::BusSyncReply::Pass
    });
    capture.play();
    for _ in 0..3 {
        capture.pull();
    }

    let disconnect = control_id(&device, "disconnect");
    let pressed = press_button(&device, disconnect);
    let error = wait_error(&capture.bus(), TIMEOUT);
    let at = *posted.lock().unwrap_or_else(|e| e.into_inner());
    let error = error.unwrap_or_else(|| panic!("no error within {TIMEOUT:?} of the disconnect"));
    let latency = at
        .expect("the sync handler saw the error")
        .saturating_duration_since(pressed);
    eprintln!("disconnect -> error posted after {latency:?}: {error}");
    error.assert_is(gst::ResourceError::NotFound, "unplug");
    error.assert_says(&["disconnected", &device], "unplug");
    assert!(
        latency <= LATENCY_LIMIT,
        "the error came {latency:?} after the disconnect, more than {LATENCY_LIMIT:?} (one \
         frame is 33 ms)"
    );

    // Still PLAYING after the error: the element must not spin on the dead device.
    let cpu = cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_time().saturating_sub(cpu);
    eprintln!("CPU time in the second after the error: {spent:?}");
    assert!(
        spent < Duration::from_millis(500),
        "the process used {spent:?} of CPU in the second after the unplug error: a busy loop?"
    );

    let took = change_state(capture.element(), gst::State::Null, STOP_LIMIT);
    eprintln!("PLAYING -> NULL after the unplug took {took:?}");
    drop(capture);
    let back = wait_for_node(&device, Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "{device} did not come back within 10 s after the pipeline was dropped: a file \
             handle is still open? {:?}",
            open_fds()
        )
    });
    eprintln!("{device} came back {back:?} after the pipeline was dropped");
    assert_fresh_capture_works(&device, "after the unplug");
}

// ---------------------------------------------------------------------------------------------
// 5. Timeout.

/// A capture where vivid drops every frame, with extra source properties.
fn starved_capture(device: &str, src_props: &str) -> (Capture, Control) {
    let dropping = Control::set(device, "percentage_of_dropped_buffers", 100, 0);
    let capture = Capture::new(
        device,
        src_props,
        "video/x-raw,format=YUY2,width=320,height=180,framerate=30/1",
    );
    (capture, dropping)
}

#[test]
fn timeout_posts_an_error_when_no_frame_comes() {
    let _device = setup();
    let device = common::vivid_sp();
    let (capture, _dropping) = starved_capture(&device, "timeout=500");
    let started = Instant::now();
    capture.play();
    let error = wait_error(&capture.bus(), TIMEOUT)
        .unwrap_or_else(|| panic!("no error within {TIMEOUT:?} with timeout=500"));
    let took = started.elapsed();
    eprintln!("timeout=500: error {took:?} after PLAYING was asked for: {error}");
    error.assert_is(gst::ResourceError::Read, "timeout=500");
    error.assert_says(&[&device, "500", "timeout"], "timeout=500");
    assert!(
        took < Duration::from_secs(2),
        "timeout=500 posted its error only after {took:?}"
    );
    assert!(
        capture.sink.try_pull_sample(gst::ClockTime::ZERO).is_none(),
        "a frame arrived although vivid drops them all"
    );
    change_state(capture.element(), gst::State::Null, STOP_LIMIT);
}

#[test]
fn timeout_action_eos_ends_the_stream() {
    let _device = setup();
    let device = common::vivid_sp();
    let (capture, _dropping) = starved_capture(&device, "timeout=500 timeout-action=eos");
    let started = Instant::now();
    capture.play();
    let msg = capture.bus().timed_pop_filtered(
        gst::ClockTime::try_from(TIMEOUT).expect("fits"),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let took = started.elapsed();
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(_)) => panic!(
            "timeout-action=eos posted an error: {}",
            msg.as_ref()
                .and_then(BusError::from_message)
                .expect("error")
        ),
        _ => panic!("no EOS within {TIMEOUT:?} with timeout=500 timeout-action=eos"),
    }
    eprintln!("timeout-action=eos: EOS {took:?} after PLAYING was asked for");
    assert!(
        took < Duration::from_secs(2),
        "timeout=500 timeout-action=eos ended the stream only after {took:?}"
    );
    assert!(capture.sink.is_eos(), "appsink did not get the EOS");
    change_state(capture.element(), gst::State::Null, STOP_LIMIT);
}

#[test]
fn timeout_zero_waits_forever() {
    let _device = setup();
    let device = common::vivid_sp();
    let (capture, _dropping) = starved_capture(&device, "timeout=0");
    capture.play();
    let msg = capture.bus().timed_pop_filtered(
        gst::ClockTime::from_seconds(2),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    assert!(
        msg.is_none(),
        "timeout=0 must wait for ever, but the bus got {:?}",
        msg.as_ref()
            .and_then(BusError::from_message)
            .map(|e| e.to_string())
            .unwrap_or_else(|| "EOS".into())
    );
    // The wait must still be interruptible.
    let took = change_state(capture.element(), gst::State::Null, STOP_LIMIT);
    eprintln!("PLAYING -> NULL while waiting for ever took {took:?}");
}
