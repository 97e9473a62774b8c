//! Chaos with a seed (issue 23, item 4): one pipeline, `rustv4l2src reconnect=true ! capsfilter
//! ! appsink`, driven for two minutes by a random schedule drawn from a seed: state changes
//! among all four states, caps changes through the capsfilter, input switches between vivid's
//! webcam and HDMI inputs, DV-timings changes and signal loss on the HDMI input, unplug and
//! replug in any state (vivid unbound and bound again), vivid's error injections; meanwhile a
//! second thread sets `extra-controls` (brightness) and `low-latency`, and a third holds
//! buffers taken from the appsink and lets them go late, a few at a time.
//!
//! Checked all the time: every state change completes within 5 s; each buffer's size matches
//! the caps it came under (its planes, as its video meta lays them out, inside it; without a
//! meta, exactly the caps' frame size); PTS never goes back within a segment; no error on the
//! bus unless an injection made in the seconds before explains it (a failed REQBUFS, QBUF or
//! STREAMON, a queue error). At the end, after NULL and with the appsink gone (it keeps the
//! last sample it gave, and the frame's node with it): no fd on, and no mapping of, a video
//! node left, and no thread more than after a first start and stop. GLib criticals abort the
//! binary (the rig runs it with G_DEBUG=fatal_warnings). Two minutes of it run in CI.
//!
//! The seed is printed first. `CHAOS_SEED=N` replays a schedule (the actions and their order
//! and timing; what the driver and the scheduler make of them may still differ);
//! `CHAOS_SECONDS=S` runs another length (the benchmark's chaos section: 30 minutes).
//!
//! Needs vivid's nodes and root (unbinding vivid): run through `scripts/vm-run`.

mod common;

use common::vivid::{
    Reload, Restore, nodes, threads, video_fds, video_mappings, vivid_driver, vivid_parameters,
};
use common::{
    TIMEOUT, control_id, describe, hdmi_select, hdmi_send, platform_device_of, press_button, setup,
    v4l2_ctl,
};

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// How long any state change may take, asynchronous completion included.
const STATE_LIMIT: Duration = Duration::from_secs(5);
/// Caps the webcam input (0) can give.
const WEBCAM_CAPS: [&str; 5] = [
    "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
    "video/x-raw,format=YUY2,width=320,height=180",
    "video/x-raw,format=NV12,width=640,height=360",
    "video/x-raw,format=RGB,width=640,height=480",
    "video/x-raw,format=I420,width=320,height=180",
];
/// Caps for the HDMI input (3), whose size and rate follow the source's timings.
const HDMI_CAPS: [&str; 3] = [
    "video/x-raw,format=YUY2",
    "video/x-raw,format=NV12",
    "video/x-raw,format=RGB",
];
/// vivid's DV-timings presets played on the HDMI input: 640x480p59.94 and 720x576p50.
const PRESETS: [u32; 2] = [0, 4];
/// One-shot failures: each makes the next such call fail once.
const BUTTONS: [&str; 4] = [
    "inject_vidioc_reqbufs_error",
    "inject_vidioc_qbuf_error",
    "inject_vidioc_streamon_error",
    "inject_fatal_streaming_error",
];
/// How long after an injection an error may be blamed on it. A one-shot failure stays armed
/// until the call it fails comes (the next start, maybe much later): until an error was
/// blamed on it, it explains one whenever that comes.
const EXPLAINS_FOR: Duration = Duration::from_secs(20);

/// splitmix64: small, good enough, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the sink's probe and the threads found wrong, and what they counted.
#[derive(Default)]
struct Findings {
    problems: Mutex<Vec<String>>,
    frames: AtomicU64,
    /// The caps of the buffers now arriving.
    info: Mutex<Option<gst_video::VideoInfo>>,
    /// The last buffer's PTS in the current segment.
    last_pts: Mutex<Option<gst::ClockTime>>,
}

impl Findings {
    fn problem(&self, text: String) {
        eprintln!("chaos: PROBLEM: {text}");
        locked(&self.problems).push(text);
    }

    /// A buffer at the sink: its size against its caps, its PTS against the one before.
    fn buffer(&self, buffer: &gst::BufferRef) {
        let n = self.frames.fetch_add(1, Ordering::Relaxed);
        let info = locked(&self.info).clone();
        match info {
            None => self.problem(format!("buffer {n} came before any raw-video caps")),
            Some(info) => {
                if let Some(wrong) = size_mismatch(&info, buffer) {
                    self.problem(format!("buffer {n}: {wrong}"));
                }
            }
        }
        if let Some(pts) = buffer.pts() {
            let mut last = locked(&self.last_pts);
            if let Some(before) = *last
                && pts < before
            {
                self.problem(format!(
                    "buffer {n}: PTS {pts} went back from {before} within a segment"
                ));
            }
            *last = Some(pts);
        }
    }
}

/// Why `buffer` cannot be a frame of `info`, if it cannot.
fn size_mismatch(info: &gst_video::VideoInfo, buffer: &gst::BufferRef) -> Option<String> {
    let size = buffer.size();
    let Some(meta) = buffer.meta::<gst_video::VideoMeta>() else {
        return (size != info.size()).then(|| {
            format!(
                "{size} bytes without a video meta under {}x{} {:?}, whose frames are {}",
                info.width(),
                info.height(),
                info.format(),
                info.size()
            )
        });
    };
    if (meta.width(), meta.height(), meta.format()) != (info.width(), info.height(), info.format())
    {
        return Some(format!(
            "video meta {}x{} {:?} under caps {}x{} {:?}",
            meta.width(),
            meta.height(),
            meta.format(),
            info.width(),
            info.height(),
            info.format()
        ));
    }
    let format = info.format_info();
    for plane in 0..meta.n_planes() as usize {
        let rows = format.scale_height(plane as u8, info.height()) as usize;
        let end = meta.offset()[plane] + meta.stride()[plane].unsigned_abs() as usize * rows;
        if end > size {
            return Some(format!(
                "plane {plane} ends at {end}, past the buffer's {size} bytes ({}x{} {:?}, \
                 offsets {:?}, strides {:?})",
                info.width(),
                info.height(),
                info.format(),
                meta.offset(),
                meta.stride()
            ));
        }
    }
    None
}

/// What the schedule changed, for the log and for blaming errors.
struct Journal {
    start: Instant,
    /// Injections that can make an error: when, which, and whether an error was blamed on it.
    injections: Vec<(Instant, &'static str, bool)>,
    /// The last error blamed on an injection, and on which: the base class's "Internal data
    /// stream error" that follows it is blamed on the same.
    last_blamed: Option<(Instant, &'static str)>,
}

impl Journal {
    fn note(&self, what: &str) {
        eprintln!(
            "chaos: {:8.3} s: {what}",
            self.start.elapsed().as_secs_f64()
        );
    }

    /// The injection an error at `at` (saying `text`) can be blamed on: the oldest one still
    /// armed whose call the error names (`inject_vidioc_reqbufs_error` for a failed
    /// VIDIOC_REQBUFS), else one made in the `EXPLAINS_FOR` before (the base class's "Internal
    /// data stream error" that follows, a restart budget spent). With `blame`, the armed one is
    /// used up.
    fn explains(&mut self, at: Instant, text: &str, blame: bool) -> Option<&'static str> {
        let names_its_call = |what: &str| {
            what.strip_prefix("inject_vidioc_")
                .and_then(|call| call.strip_suffix("_error"))
                .is_some_and(|call| text.contains(&format!("VIDIOC_{}", call.to_uppercase())))
        };
        if let Some((_, what, used)) = self
            .injections
            .iter_mut()
            .find(|(_, what, used)| !*used && names_its_call(what))
        {
            *used |= blame;
            if blame {
                self.last_blamed = Some((at, *what));
            }
            return Some(*what);
        }
        if let Some((when, what)) = self.last_blamed
            && at.saturating_duration_since(when) <= Duration::from_secs(2)
        {
            return Some(what);
        }
        self.injections
            .iter()
            .rev()
            .find(|(when, _, _)| at.saturating_duration_since(*when) <= EXPLAINS_FOR)
            .map(|(_, what, _)| *what)
    }
}

/// The schedule's pipeline and its helpers.
struct Chaos {
    pipeline: gst::Pipeline,
    src: gst::Element,
    filter: gst::Element,
    findings: Arc<Findings>,
    journal: Journal,
    device: String,
    /// The node's name in sysfs (`vivid-000-vid-cap`), by which it is found again.
    name: String,
    platform: String,
    buttons: Vec<(&'static str, u32)>,
    /// The input the element is set to: 0 webcam, 3 HDMI.
    input: u32,
    /// The state asked for last.
    target: gst::State,
}

impl Chaos {
    fn bus(&self) -> gst::Bus {
        self.pipeline.bus().expect("a pipeline has a bus")
    }

    /// Errors on the bus: blamed on a recent injection (then the pipeline goes to NULL and
    /// the schedule goes on), else findings. Warnings are the element's to give.
    fn drain_bus(&mut self) {
        self.drain_errors();
    }

    /// As `drain_bus`; how many errors an injection explained.
    fn drain_errors(&mut self) -> usize {
        let mut reset = false;
        let mut explained = 0;
        while let Some(msg) = self.bus().pop_filtered(&[gst::MessageType::Error]) {
            let text = describe(&msg);
            match self.journal.explains(Instant::now(), &text, true) {
                Some(injection) => {
                    self.journal
                        .note(&format!("explained by {injection}: {text}"));
                    explained += 1;
                    reset = true;
                }
                None => self
                    .findings
                    .problem(format!("an error no injection explains: {text}")),
            }
        }
        if reset {
            self.set_state(gst::State::Null);
        }
        explained
    }

    /// Changes state, checking that it completes within `STATE_LIMIT`; a refusal is a
    /// finding unless an error an injection explains is on the bus.
    fn set_state(&mut self, state: gst::State) {
        self.journal.note(&format!("-> {state:?}"));
        self.target = state;
        let started = Instant::now();
        let Some((result, _)) =
            common::try_change_state(self.pipeline.upcast_ref(), state, STATE_LIMIT)
        else {
            panic!(
                "set_state({state:?}) did not return within {STATE_LIMIT:?}: {}",
                nodes()
            );
        };
        let left = STATE_LIMIT.saturating_sub(started.elapsed());
        let (done, current, pending) = self
            .pipeline
            .state(gst::ClockTime::from_nseconds(left.as_nanos() as u64));
        if result.is_err() || done.is_err() {
            // The error that made it refuse is on the bus: blamed there, or a finding.
            if self.drain_errors() == 0
                && self.journal.explains(Instant::now(), "", false).is_none()
            {
                self.findings.problem(format!(
                    "set_state({state:?}) failed: {result:?} {done:?} (now {current:?})"
                ));
            }
            return;
        }
        if state == gst::State::Null
            && self.src.property::<Option<String>>("device").as_deref()
                != Some(self.device.as_str())
        {
            // As an application that saw its camera come back elsewhere: the next start
            // opens it there (the element follows it while it runs, not across NULL).
            self.journal.note(&format!("device={}", self.device));
            self.src.set_property("device", &self.device);
        }
        if done == Ok(gst::StateChangeSuccess::Async) {
            self.findings.problem(format!(
                "set_state({state:?}) still going after {STATE_LIMIT:?} ({current:?}, pending \
                 {pending:?})"
            ));
        }
    }

    fn set_caps(&mut self, caps: &str) {
        self.journal.note(&format!("caps {caps}"));
        self.filter
            .set_property("caps", gst::Caps::from_str(caps).expect("valid caps"));
    }

    /// Switches the element's input, in NULL (the element applies it when it opens the
    /// device), with caps that input can give, and returns to the state it was in.
    fn switch_input(&mut self, rng: &mut Rng) {
        let back_to = self.target;
        self.set_state(gst::State::Null);
        self.input = if self.input == 0 { 3 } else { 0 };
        self.journal.note(&format!("input {}", self.input));
        self.src.set_property("input", self.input as i32);
        if self.input == 3 {
            let preset = *rng.pick(&PRESETS);
            hdmi_select(&self.device, preset, preset);
            let caps = *rng.pick(&HDMI_CAPS);
            self.set_caps(caps);
        } else {
            let caps = *rng.pick(&WEBCAM_CAPS);
            self.set_caps(caps);
        }
        self.set_state(back_to);
    }

    /// vivid unbound for a moment and bound again, in whatever state the pipeline is; frames
    /// held downstream are let go first (but for the one the appsink keeps, see the end).
    fn unplug(&mut self, rng: &mut Rng, holder: &Holder) {
        holder.drain();
        let away = rng.millis(200, 1500);
        self.journal.note(&format!("unplug for {away:?}"));
        vivid_driver("unbind", &self.platform);
        std::thread::sleep(away);
        vivid_driver("bind", &self.platform);
        // A frame still held (the appsink's last, in any state) keeps the node's number taken,
        // and vivid comes back under another: the element follows its device there while it
        // has it open, and so does the schedule.
        let deadline = Instant::now() + TIMEOUT;
        let node = loop {
            if let Some(node) = node_named(&self.name) {
                break node;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not come back: {}",
                self.name,
                nodes()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            common::wait_for_node(&node, TIMEOUT).is_some(),
            "{node} has no device file: {}",
            nodes()
        );
        if node != self.device {
            self.journal
                .note(&format!("{} came back as {node}", self.device));
            self.device = node;
            if self.target == gst::State::Null {
                // Closed, the element knows no device but its `device`: as an application
                // that saw its camera come back elsewhere, point it there.
                self.journal.note(&format!("device={}", self.device));
                self.src.set_property("device", &self.device);
            }
        }
        // vivid comes back with its defaults: the HDMI source too.
        if self.input == 3 {
            let _ = hdmi_send(&self.device, 4, PRESETS[0]);
        }
        holder.resume();
    }

    fn inject(&mut self, rng: &mut Rng) {
        if rng.below(3) == 0 {
            let percent = *rng.pick(&[0, 5, 30]);
            self.journal
                .note(&format!("percentage_of_dropped_buffers={percent}"));
            let _ = v4l2_ctl(&[
                "-d",
                &self.device,
                "-c",
                &format!("percentage_of_dropped_buffers={percent}"),
            ]);
            return;
        }
        let (name, id) = *rng.pick(&self.buttons);
        self.journal.note(name);
        // The queue error is consumed at once (the element restarts the stream); the others
        // stay armed until their call comes.
        let consumed = name == "inject_fatal_streaming_error";
        self.journal
            .injections
            .push((Instant::now(), name, consumed));
        press_button(&self.device, id);
    }

    fn signal(&mut self, rng: &mut Rng) {
        let mode = *rng.pick(&[1, 2, 3, 4, 4, 4]);
        let preset = *rng.pick(&PRESETS);
        self.journal
            .note(&format!("HDMI source: mode {mode}, preset {preset}"));
        match hdmi_send(&self.device, mode, preset) {
            Ok(()) => {}
            Err(e) => self.findings.problem(e),
        }
    }
}

/// The thread that takes buffers from the appsink and holds them for a while.
struct Holder {
    draining: Arc<AtomicBool>,
    drained: Arc<AtomicBool>,
}

impl Holder {
    fn start(
        sink: gst_app::AppSink,
        seed: u64,
        stop: Arc<AtomicBool>,
    ) -> (Holder, std::thread::JoinHandle<()>) {
        let draining = Arc::new(AtomicBool::new(false));
        let drained = Arc::new(AtomicBool::new(false));
        let (d, dd) = (Arc::clone(&draining), Arc::clone(&drained));
        let thread = std::thread::spawn(move || {
            let mut rng = Rng(seed);
            let mut held: VecDeque<(Instant, gst::Sample)> = VecDeque::new();
            let mut most = 2;
            let mut changed = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                if d.load(Ordering::SeqCst) {
                    held.clear();
                    while sink.try_pull_sample(gst::ClockTime::ZERO).is_some() {}
                    dd.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                if changed.elapsed() > Duration::from_secs(1) {
                    most = rng.below(6) as usize;
                    changed = Instant::now();
                }
                match sink.try_pull_sample(gst::ClockTime::from_mseconds(50)) {
                    Some(sample) => held.push_back((Instant::now() + rng.millis(0, 800), sample)),
                    // Not streaming (the appsink answers at once when flushing): no busy loop.
                    None => std::thread::sleep(Duration::from_millis(20)),
                }
                while held.len() > most
                    || held
                        .front()
                        .is_some_and(|(until, _)| *until <= Instant::now())
                {
                    held.pop_front();
                }
            }
        });
        (Holder { draining, drained }, thread)
    }

    /// Lets every held buffer go, and keeps none until `resume`.
    fn drain(&self) {
        self.drained.store(false, Ordering::SeqCst);
        self.draining.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + TIMEOUT;
        while !self.drained.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            self.drained.load(Ordering::SeqCst),
            "the holder did not let go"
        );
    }

    fn resume(&self) {
        self.draining.store(false, Ordering::SeqCst);
    }
}

/// Sets `extra-controls` and `low-latency` at random moments until `stop`.
fn poke_properties(
    src: gst::Element,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut rng = Rng(seed);
        let mut sets = 0;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(rng.millis(50, 400));
            if rng.below(2) == 0 {
                let brightness = rng.below(256);
                let controls = gst::Structure::from_str(&format!("c,brightness={brightness}"))
                    .expect("a structure");
                src.set_property("extra-controls", Some(controls));
            } else {
                src.set_property("low-latency", rng.below(2) == 0);
            }
            sets += 1;
        }
        sets
    })
}

/// The sysfs name of `node` (`/dev/video0`: `vivid-000-vid-cap`).
fn node_name(node: &str) -> String {
    let base = node.trim_start_matches("/dev/");
    std::fs::read_to_string(format!("/sys/class/video4linux/{base}/name"))
        .unwrap_or_else(|e| panic!("the name of {node}: {e}"))
        .trim()
        .to_owned()
}

/// The node whose sysfs name is `name`, if there is one.
fn node_named(name: &str) -> Option<String> {
    std::fs::read_dir("/sys/class/video4linux")
        .ok()?
        .flatten()
        .find(|e| std::fs::read_to_string(e.path().join("name")).is_ok_and(|n| n.trim() == name))
        .map(|e| format!("/dev/{}", e.file_name().to_string_lossy()))
}

/// Stops the helper threads when dropped, also when the test fails: a held frame would keep
/// vivid's module in use, and the tests after this one need it reloaded.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

#[test]
fn a_seeded_random_schedule_breaks_no_invariant() {
    let seed = seed();
    let seconds: u64 = std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    eprintln!("chaos: seed {seed} (CHAOS_SEED={seed} replays this schedule), {seconds} s");
    let _device = setup();
    let _restore = Restore;
    // vivid as the rig loaded it, whatever the schedule left: inputs, timings, injections.
    let _reload = Reload(vivid_parameters());
    let device = common::vivid_sp();
    let platform = platform_device_of(&device);
    let buttons: Vec<(&'static str, u32)> = BUTTONS
        .iter()
        .map(|&name| (name, control_id(&device, name)))
        .collect();

    let description = format!(
        "rustv4l2src name=src device={device} reconnect=true ! capsfilter name=filter caps={} ! \
         appsink name=sink sync=false max-buffers=2 enable-last-sample=false",
        WEBCAM_CAPS[0]
    );
    let pipeline = gst::parse::launch(&description)
        .expect("the pipeline builds")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let _null = common::NullOnDrop(pipeline.clone().upcast());
    let src = pipeline.by_name("src").expect("src");
    let filter = pipeline.by_name("filter").expect("filter");
    let sink = pipeline
        .by_name("sink")
        .expect("sink")
        .downcast::<gst_app::AppSink>()
        .expect("an appsink");
    let findings = Arc::new(Findings::default());
    let probe = Arc::clone(&findings);
    sink.static_pad("sink").expect("a sink pad").add_probe(
        gst::PadProbeType::BUFFER
            | gst::PadProbeType::EVENT_DOWNSTREAM
            | gst::PadProbeType::EVENT_FLUSH,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => probe.buffer(b),
                Some(gst::PadProbeData::Event(e)) => match e.view() {
                    gst::EventView::Caps(c) => {
                        *locked(&probe.info) = gst_video::VideoInfo::from_caps(c.caps()).ok();
                    }
                    gst::EventView::Segment(_) | gst::EventView::FlushStop(_) => {
                        *locked(&probe.last_pts) = None;
                    }
                    _ => {}
                },
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );

    let mut chaos = Chaos {
        pipeline: pipeline.clone(),
        src: src.clone(),
        filter,
        findings: Arc::clone(&findings),
        journal: Journal {
            start: Instant::now(),
            injections: Vec::new(),
            last_blamed: None,
        },
        device: device.clone(),
        name: node_name(&device),
        platform,
        buttons,
        input: 0,
        target: gst::State::Null,
    };

    // A first start and stop, so that GStreamer's own long-lived threads exist in the baseline.
    chaos.set_state(gst::State::Playing);
    let first = Instant::now();
    while findings.frames.load(Ordering::SeqCst) == 0 && first.elapsed() < TIMEOUT {
        let _ = sink.try_pull_sample(gst::ClockTime::from_mseconds(100));
    }
    assert!(
        findings.frames.load(Ordering::SeqCst) > 0,
        "no frame at the start:{}",
        common::element_bus_problems(pipeline.upcast_ref())
    );
    chaos.set_state(gst::State::Null);
    let baseline_threads = threads();

    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(Arc::clone(&stop));
    let (holder, holder_thread) = Holder::start(sink.clone(), seed ^ 0x5eed, Arc::clone(&stop));
    let poker = poke_properties(src.clone(), seed ^ 0xc0de, Arc::clone(&stop));
    let mut rng = Rng(seed);
    let states = [
        gst::State::Null,
        gst::State::Ready,
        gst::State::Paused,
        gst::State::Playing,
    ];
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut actions = 0u64;
    chaos.set_state(gst::State::Playing);
    while Instant::now() < end {
        actions += 1;
        match rng.below(100) {
            0..30 => {
                let state = *rng.pick(&states);
                chaos.set_state(state);
            }
            30..45 => {
                let caps = if chaos.input == 3 {
                    *rng.pick(&HDMI_CAPS)
                } else {
                    *rng.pick(&WEBCAM_CAPS)
                };
                chaos.set_caps(caps);
            }
            45..52 => chaos.switch_input(&mut rng),
            52..64 if chaos.input == 3 => chaos.signal(&mut rng),
            64..70 => chaos.unplug(&mut rng, &holder),
            70..80 => chaos.inject(&mut rng),
            _ => chaos.set_state(gst::State::Playing),
        }
        std::thread::sleep(rng.millis(0, 700));
        chaos.drain_bus();
    }

    stop.store(true, Ordering::SeqCst);
    holder_thread.join().expect("the holder thread");
    let sets = poker.join().expect("the property thread");
    chaos.set_state(gst::State::Null);
    chaos.drain_bus();
    let frames = findings.frames.load(Ordering::SeqCst);
    eprintln!(
        "chaos: seed {seed}: {actions} actions, {sets} property sets, {frames} buffers checked, \
         {} injections",
        chaos.journal.injections.len()
    );
    drop(chaos);
    // Every buffer let go: the appsink (GStreamer 1.22) keeps the sample pulled last, and its
    // frame's mapping and the device with it, until the next pull or its disposal, NULL or
    // not. Without it, the element alone is left, in NULL.
    pipeline
        .remove(&sink)
        .expect("the appsink leaves the pipeline");
    let _ = sink.set_state(gst::State::Null);
    drop((src, sink));

    // After NULL: no fd on a video node, no mapping of one, and no thread the first start and
    // stop did not leave too (GStreamer's own may take a moment). GLib's thread pools keep an
    // idle thread up to 15 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    while (threads() > baseline_threads || video_mappings() > 0 || !video_fds().is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let problems = locked(&findings.problems).clone();
    assert!(
        problems.is_empty(),
        "seed {seed} (CHAOS_SEED={seed} to replay): {} problems:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    assert!(frames > 0, "seed {seed}: no buffer reached the sink");
    assert_eq!(
        video_fds(),
        Vec::<String>::new(),
        "seed {seed}: fds left after NULL"
    );
    assert_eq!(
        video_mappings(),
        0,
        "seed {seed}: video mappings left after NULL"
    );
    assert!(
        threads() <= baseline_threads,
        "seed {seed}: {} threads after NULL, {baseline_threads} after the first start and stop",
        threads()
    );
    drop(pipeline);
}
