//! `capture_bench scale`: N capture sources in one process, one element per device, each into
//! its own fakesink, all in one pipeline; prints one JSON line, as the single-source mode does.
//!
//!     capture_bench scale --src "v4l2src io-mode=mmap" --devices /dev/video0,/dev/video1 \
//!         --caps "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1" --seconds 20
//!
//! What NVRs and robots care about is the cost per frame as cameras are added, frames lost and
//! memory, so a run measures, over a window that opens `--warmup` seconds after every camera
//! delivered its first frame and lasts `--seconds`:
//! - CPU per frame: getrusage(RUSAGE_SELF) user + system at the window's ends, divided by the
//!   frames all sinks received in it;
//! - frames lost: gaps in each camera's buffer OFFSET (the driver's sequence number, set by both
//!   elements) between consecutive frames of the window, per camera;
//! - frame age at the sink: clock time - base time - PTS, taken in a buffer probe on each
//!   fakesink's pad (on that camera's streaming thread), p50/p99/max over all cameras;
//! - peak RSS (VmHWM) and the process's thread count (/proc/self/status) at the window's end.
//!
//! Each camera keeps its own record behind its own lock: the probes of two cameras never meet.
//!
//! Start-up, per camera, in ms since the `set_state(Playing)` call on the pipeline (built, in
//! NULL): when the source began its NULL->READY change (the bin changes its children one after
//! another, sinks first, so that is when the element before it in that order posted its own
//! NULL->READY state-changed message, caught by a bus sync handler), when it reached READY (both
//! elements open and query the device there), PAUSED (basesrc's start()) and PLAYING, when its
//! source pad sent caps (negotiated) and its first buffer (a pad probe, removed after it), and
//! when that buffer reached the sink. The element's own part of the time to a first frame is
//! from its NULL->READY start to its first buffer pushed; the rest is the pipeline's.

use crate::options::Options;
use crate::{Json, cpu_ms, field_u64, peak_rss_kib, proc_status, src_stats, watch_log};
use gst::prelude::*;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const USAGE: &str =
    "usage: capture_bench scale --src ELEMENT --devices DEV[,DEV...] --caps CAPS \
--seconds S [--warmup S] [--timeout SECONDS] [--label TEXT]

  --src       the source element in gst-launch syntax without a device, e.g. 'v4l2src io-mode=mmap';
              each device gets its own, as 'ELEMENT device=DEV' (or with DEV in place of '{dev}'
              when ELEMENT has one), into its own capsfilter and fakesink
  --devices   comma-separated capture nodes, one source each, all in one pipeline
  --caps      caps for each capsfilter
  --seconds   length of the measured window
  --warmup    seconds between the last camera's first frame and the window (default 2)
  --timeout   give up when not every camera delivered a frame within this many seconds (default 120)
  --label     copied into the JSON line

Prints one JSON line on stdout; exits 1 on an error (the reason goes to stderr).";

struct Args {
    src: String,
    devices: Vec<String>,
    caps: String,
    seconds: f64,
    warmup: f64,
    timeout: Duration,
    label: String,
}

fn seconds(key: &str, v: &str, zero_ok: bool) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (*s > 0.0 || (zero_ok && *s == 0.0)))
        .ok_or_else(|| format!("{key} wants a number of seconds, not '{v}'"))
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut src, mut devices, mut caps, mut secs) = (None, None, None, None);
    let (mut warmup, mut timeout, mut label) = (2.0, Duration::from_secs(120), String::new());
    let mut opts = Options::new(args);
    while let Some(opt) = opts.next_opt() {
        let opt = opt?;
        let key = opt.key.as_str();
        match key {
            "--src" => src = Some(opts.value(&opt)?),
            "--devices" => {
                let list: Vec<String> = opts
                    .value(&opt)?
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned)
                    .collect();
                devices = Some(list).filter(|l| !l.is_empty());
            }
            "--caps" => caps = Some(opts.value(&opt)?),
            "--seconds" => secs = Some(seconds(key, &opts.value(&opt)?, false)?),
            "--warmup" => warmup = seconds(key, &opts.value(&opt)?, true)?,
            "--timeout" => {
                timeout = Duration::from_secs_f64(seconds(key, &opts.value(&opt)?, false)?);
            }
            "--label" => label = opts.value(&opt)?,
            _ => return Err(format!("unknown argument '{}'", opt.arg)),
        }
    }
    Ok(Args {
        src: src.ok_or("--src is required")?,
        devices: devices.ok_or("--devices wants at least one device")?,
        caps: caps.ok_or("--caps is required")?,
        seconds: secs.ok_or("--seconds is required")?,
        warmup,
        timeout,
        label,
    })
}

/// `capture_bench scale ARGS...`: the JSON line, or why not (empty: print the usage).
pub fn main(args: impl Iterator<Item = String>) -> Result<String, String> {
    let args = parse_args(args)?;
    gst::init().map_err(|e| format!("GStreamer did not initialise: {e}"))?;
    run(&args)
}

/// One frame as its sink's probe saw it; times in ns since the `set_state(Playing)` call.
#[derive(Clone, Copy)]
struct Seen {
    arrival_ns: u64,
    age_ns: Option<i64>,
    offset: Option<u64>,
}

/// One camera's record, behind its own lock.
#[derive(Default)]
struct Camera {
    frames: Vec<Seen>,
    caps_ns: Option<u64>,
    pushed_ns: Option<u64>,
}

/// A state-changed message of a pipeline child: (its name, old, new, ns since set_state).
type StateChange = (String, gst::State, gst::State, u64);

fn since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

fn run(args: &Args) -> Result<String, String> {
    let log = watch_log(false);
    let mut description = String::new();
    for (i, dev) in args.devices.iter().enumerate() {
        let src = if args.src.contains("{dev}") {
            args.src.replace("{dev}", dev)
        } else {
            format!("{} device={dev}", args.src)
        };
        let _ = write!(
            description,
            "{src} name=src{i} ! {} ! fakesink name=sink{i} sync=false enable-last-sample=false ",
            args.caps
        );
    }
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| format!("cannot build '{description}': {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the description did not make a pipeline".to_owned())?;

    // Frames expected per camera, to size each record once: nothing grows on the capture path.
    let fps = caps_fps(&args.caps).unwrap_or(30.0);
    let capacity = ((args.seconds + args.warmup + 10.0) * fps * 1.5) as usize;
    let start = Instant::now();
    let mut cameras = Vec::new();
    let mut sources = Vec::new();
    for i in 0..args.devices.len() {
        let src = pipeline
            .by_name(&format!("src{i}"))
            .ok_or("a source is missing from the pipeline")?;
        let sink = pipeline
            .by_name(&format!("sink{i}"))
            .ok_or("a fakesink is missing from the pipeline")?;
        let camera = Arc::new(Mutex::new(Camera {
            frames: Vec::with_capacity(capacity),
            ..Camera::default()
        }));
        let src_pad = src.static_pad("src").ok_or("a source has no src pad")?;
        let sink_pad = sink
            .static_pad("sink")
            .ok_or("a fakesink has no sink pad")?;
        let cam = Arc::clone(&camera);
        src_pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_pad, info| {
                let now = since(start);
                let Ok(mut cam) = cam.lock() else {
                    return gst::PadProbeReturn::Remove;
                };
                match &info.data {
                    Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Caps => {
                        cam.caps_ns.get_or_insert(now);
                    }
                    Some(gst::PadProbeData::Buffer(_)) => {
                        cam.pushed_ns = Some(now);
                        return gst::PadProbeReturn::Remove;
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
        let cam = Arc::clone(&camera);
        sink_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let arrival_ns = since(start);
            let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            let age_ns = pad.parent_element().and_then(|sink| {
                let now = sink.clock()?.time();
                let base = sink.base_time()?;
                let pts = buffer.pts()?;
                Some(now.nseconds() as i64 - base.nseconds() as i64 - pts.nseconds() as i64)
            });
            let offset = Some(buffer.offset()).filter(|&o| o != gst::format::Buffers::OFFSET_NONE);
            if let Ok(mut cam) = cam.lock() {
                cam.frames.push(Seen {
                    arrival_ns,
                    age_ns,
                    offset,
                });
            }
            gst::PadProbeReturn::Ok
        });
        cameras.push(camera);
        sources.push(src);
    }

    let states: Arc<Mutex<Vec<StateChange>>> = Arc::default();
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    {
        let states = Arc::clone(&states);
        let pipeline_name = pipeline.name();
        bus.set_sync_handler(move |_bus, msg| {
            if let gst::MessageView::StateChanged(s) = msg.view()
                && let Some(src) = msg.src()
                && src.name() != pipeline_name
                && let Ok(mut states) = states.lock()
            {
                states.push((src.name().to_string(), s.old(), s.current(), since(start)));
            }
            gst::BusSyncReply::Pass
        });
    }

    let result = measure(args, &pipeline, &bus, &cameras, start);
    // Read before NULL: an element may forget its counters when it stops.
    let dropped: Option<u64> = sources
        .iter()
        .map(|s| src_stats(s).and_then(|st| field_u64(&st, "frames-dropped")))
        .sum();
    let shutdown = pipeline.set_state(gst::State::Null);
    bus.unset_sync_handler();
    let window = result?;
    shutdown.map_err(|_| "the pipeline did not stop".to_owned())?;

    let factory = sources[0].factory();
    let plugin_file = factory
        .as_ref()
        .and_then(|f| f.plugin())
        .and_then(|p| p.filename())
        .map(|p| p.display().to_string());
    let mut out = Json::default();
    out.str("label", &args.label);
    out.str("src", &args.src);
    out.str(
        "element",
        &factory.map(|f| f.name().to_string()).unwrap_or_default(),
    );
    out.opt_str("plugin_file", plugin_file.as_deref());
    out.str("caps", &args.caps);
    out.num("n", args.devices.len() as f64);
    out.str("devices", &args.devices.join(","));
    out.opt_num("frames_dropped", dropped.map(|n| n as f64));
    window.write(&mut out, &cameras)?;
    let states = states.lock().map_err(|_| "state log poisoned")?;
    startup_fields(&mut out, &cameras, &states)?;
    for (key, counts) in [("perf_other", &log.perf_other), ("warnings", &log.warnings)] {
        let counts = counts.lock().map_err(|_| "log state poisoned")?;
        out.counts(key, &counts);
    }
    Ok(out.finish())
}

/// The framerate in the caps, in frames per second.
fn caps_fps(caps: &str) -> Option<f64> {
    let caps = caps.parse::<gst::Caps>().ok()?;
    let rate = caps.structure(0)?.get::<gst::Fraction>("framerate").ok()?;
    (rate.denom() > 0).then(|| rate.numer() as f64 / rate.denom() as f64)
}

/// The process's measurements at both ends of the window.
struct Window {
    from_ns: u64,
    to_ns: u64,
    cpu_from: (f64, f64),
    cpu_to: (f64, f64),
    threads_from: Option<u64>,
    threads_to: Option<u64>,
    peak_rss_kib: Option<u64>,
    all_first_ns: u64,
}

/// Plays the pipeline, waits for a first frame from every camera and the warm-up, then
/// measures the window.
fn measure(
    args: &Args,
    pipeline: &gst::Pipeline,
    bus: &gst::Bus,
    cameras: &[Arc<Mutex<Camera>>],
    start: Instant,
) -> Result<Window, String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "the pipeline did not start".to_owned())?;
    let deadline = start + args.timeout;
    loop {
        let mut waiting = 0;
        for cam in cameras {
            if cam.lock().map_err(|_| "camera poisoned")?.frames.is_empty() {
                waiting += 1;
            }
        }
        if waiting == 0 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{waiting} of {} cameras delivered no frame within {} s",
                cameras.len(),
                args.timeout.as_secs()
            ));
        }
        wait_for_error(bus, Duration::from_millis(10))?;
    }
    let all_first_ns = since(start);
    wait_for_error(bus, Duration::from_secs_f64(args.warmup))?;
    let from_ns = since(start);
    let cpu_from = cpu_ms().ok_or("getrusage failed")?;
    let threads_from = threads();
    wait_for_error(bus, Duration::from_secs_f64(args.seconds))?;
    let to_ns = since(start);
    let cpu_to = cpu_ms().ok_or("getrusage failed")?;
    Ok(Window {
        from_ns,
        to_ns,
        cpu_from,
        cpu_to,
        threads_from,
        threads_to: threads(),
        peak_rss_kib: peak_rss_kib(),
        all_first_ns,
    })
}

/// Waits `left`, failing at once on an error or an end of stream from the pipeline.
pub(crate) fn wait_for_error(bus: &gst::Bus, left: Duration) -> Result<(), String> {
    let until = Instant::now() + left;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            continue;
        };
        return Err(match msg.view() {
            gst::MessageView::Error(e) => format!(
                "error from {}: {} ({})",
                e.src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default(),
                e.error(),
                e.debug().map(|d| d.to_string()).unwrap_or_default()
            ),
            _ => "end of stream before the window closed".to_owned(),
        });
    }
}

/// The process's thread count, from /proc/self/status.
pub(crate) fn threads() -> Option<u64> {
    proc_status("Threads:")
}

/// Frames missing between consecutive offsets; offsets that did not increase are not counted.
fn gaps(frames: &[Seen]) -> u64 {
    let mut lost = 0;
    let mut prev = None;
    for f in frames {
        let Some(o) = f.offset else { continue };
        if let Some(p) = prev
            && o > p
        {
            lost += o - p - 1;
        }
        prev = Some(o);
    }
    lost
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let i = ((last as f64) * q).round() as usize;
    Some(sorted[i.min(last)] as f64 / 1e6)
}

impl Window {
    fn write(&self, out: &mut Json, cameras: &[Arc<Mutex<Camera>>]) -> Result<(), String> {
        let mut per_cam = Vec::new();
        let mut ages = Vec::new();
        for cam in cameras {
            let cam = cam.lock().map_err(|_| "camera poisoned")?;
            let window: Vec<Seen> = cam
                .frames
                .iter()
                .copied()
                .filter(|f| (self.from_ns..self.to_ns).contains(&f.arrival_ns))
                .collect();
            let mut mine: Vec<i64> = window.iter().filter_map(|f| f.age_ns).collect();
            mine.sort_unstable();
            ages.extend_from_slice(&mine);
            let has_offsets = window.iter().any(|f| f.offset.is_some());
            per_cam.push((
                window.len(),
                has_offsets.then(|| gaps(&window)),
                has_offsets.then(|| gaps(&cam.frames)),
                percentile(&mine, 0.99),
            ));
        }
        ages.sort_unstable();
        let frames: usize = per_cam.iter().map(|c| c.0).sum();
        let cpu_user = self.cpu_to.0 - self.cpu_from.0;
        let cpu_sys = self.cpu_to.1 - self.cpu_from.1;
        out.num("window_ms", (self.to_ns - self.from_ns) as f64 / 1e6);
        out.num("frames", frames as f64);
        out.nums("frames_per_cam", per_cam.iter().map(|c| Some(c.0 as f64)));
        let lost: Option<u64> = per_cam.iter().map(|c| c.1).sum();
        out.opt_num("lost", lost.map(|n| n as f64));
        out.nums(
            "lost_per_cam",
            per_cam.iter().map(|c| c.1.map(|n| n as f64)),
        );
        let lost_run: Option<u64> = per_cam.iter().map(|c| c.2).sum();
        out.opt_num("lost_whole_run", lost_run.map(|n| n as f64));
        out.num("user_ms", cpu_user);
        out.num("sys_ms", cpu_sys);
        out.opt_num(
            "cpu_ms_per_frame",
            (frames > 0).then(|| (cpu_user + cpu_sys) / frames as f64),
        );
        out.opt_num("age_p50_ms", percentile(&ages, 0.5));
        out.opt_num("age_p99_ms", percentile(&ages, 0.99));
        out.opt_num("age_max_ms", percentile(&ages, 1.0));
        out.nums("age_p99_per_cam_ms", per_cam.iter().map(|c| c.3));
        out.opt_num("peak_rss_kib", self.peak_rss_kib.map(|k| k as f64));
        out.opt_num("threads_window_start", self.threads_from.map(|n| n as f64));
        out.opt_num("threads", self.threads_to.map(|n| n as f64));
        out.num("all_first_ms", self.all_first_ns as f64 / 1e6);
        Ok(())
    }
}

/// Per camera, ms since set_state(Playing): the start-up milestones described at the top.
fn startup_fields(
    out: &mut Json,
    cameras: &[Arc<Mutex<Camera>>],
    states: &[StateChange],
) -> Result<(), String> {
    let ms = |ns: Option<u64>| ns.map(|n| n as f64 / 1e6);
    let reached = |name: &str, old: gst::State, new: gst::State| {
        states
            .iter()
            .find(|(n, o, c, _)| n == name && *o == old && *c == new)
            .map(|s| s.3)
    };
    let (mut begin, mut ready, mut paused, mut playing) = (vec![], vec![], vec![], vec![]);
    let (mut caps, mut pushed, mut sink) = (vec![], vec![], vec![]);
    for (i, cam) in cameras.iter().enumerate() {
        let name = format!("src{i}");
        let at_ready = reached(&name, gst::State::Null, gst::State::Ready);
        // The bin changes its children one by one: this source began when the child changed
        // before it was done with the same step (or at set_state if it came first).
        let began = at_ready.map(|t| {
            states
                .iter()
                .filter(|(n, o, c, at)| {
                    *n != name && *o == gst::State::Null && *c == gst::State::Ready && *at <= t
                })
                .map(|s| s.3)
                .max()
                .unwrap_or(0)
        });
        begin.push(ms(began));
        ready.push(ms(at_ready));
        paused.push(ms(reached(&name, gst::State::Ready, gst::State::Paused)));
        playing.push(ms(reached(&name, gst::State::Paused, gst::State::Playing)));
        let cam = cam.lock().map_err(|_| "camera poisoned")?;
        caps.push(ms(cam.caps_ns));
        pushed.push(ms(cam.pushed_ns));
        sink.push(ms(cam.frames.first().map(|f| f.arrival_ns)));
    }
    for (key, values) in [
        ("start_begin_ms", begin),
        ("start_ready_ms", ready),
        ("start_paused_ms", paused),
        ("start_playing_ms", playing),
        ("start_caps_ms", caps),
        ("start_pushed_ms", pushed),
        ("start_sink_ms", sink),
    ] {
        out.nums(key, values.into_iter());
    }
    Ok(())
}
