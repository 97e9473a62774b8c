//! One benchmark run of a V4L2 capture source: builds `<src> ! <caps> ! appsink`, captures a
//! fixed number of frames and prints one JSON line of measurements on stdout.
//!
//!     capture_bench --pipeline-src "rustv4l2src device=/dev/video0" \
//!         --caps "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1" --frames 150
//!
//! The source is created by name from the registry, never registered statically, so that
//! rustv4l2src (found through GST_PLUGIN_PATH) and the C v4l2src load the same way and pay the
//! same plugin-loading costs. `scripts/bench` runs this many times and turns the lines into a
//! table; the fields are documented there.
//!
//! What one run measures:
//! - `first_frame_ms`: from the `set_state(Playing)` call on the pipeline, built and still in
//!   NULL, to the first sample reaching the sink's streaming thread.
//! - per frame: latency = sink clock time - base time - PTS (how long after its capture
//!   timestamp a frame reaches the sink), arrival time, and the buffer OFFSET, which both
//!   elements set to the driver's sequence number, so gaps are frames the driver lost.
//! - copies: the element's `stats` property (`frames-copied`) when it has one, else the number
//!   of per-frame copy messages in the GST_PERFORMANCE debug category ("Copying frame" from
//!   rustv4l2src, "slow copy into buffer" from the C v4l2 buffer pool), caught by a log hook
//!   when `--count-copies` is given (null without it, for elements without `stats`).
//! - getrusage(RUSAGE_SELF) after the pipeline is back in NULL: user and system CPU time of the
//!   whole process (start-up and tear-down included; the caller cancels those by differencing
//!   a long and a short run); peak RSS (VmHWM); also the process's CPU time when the first and the
//!   last frame arrived, a steady-state figure from a single run to cross-check that.
//! - `frames_dropped`: the element's `stats` property (`frames-dropped`, older ready frames that
//!   `low-latency` gave back unseen) when it has one, else null.
//!
//! `--bare DEVICE` instead of `--pipeline-src` measures no element at all: the floor any V4L2
//! capture source stands on. It opens the device, sets the caps' size and rate (YUY2 only) with
//! `VIDIOC_S_FMT`/`S_PARM`, maps 4 buffers and runs the bare loop poll + `DQBUF` + `QBUF`
//! through this crate's `v4l2` layer, with no GStreamer on the path; `first_frame_ms` then counts
//! from the open. Its latency is the driver timestamp's age at dequeue.
//!
//! A slow downstream can be played with `--stall-ms N --stall-every K`: the sink's callback
//! sleeps N ms after every K-th frame, once that frame's measurements are taken, still holding
//! the frame, as a consumer busy with it would. The callback runs on the source's streaming
//! thread (nothing queues in between), so the source cannot dequeue meanwhile and the driver's
//! other buffers fill up.
//! `--span N` ends the run after N frames of the driver's sequence rather than N delivered ones,
//! so that sources which skip frames cover the same stretch of time.
//!
//! `capture_bench scale ...` runs N sources in one process instead (one per device, each into
//! its own fakesink): see scale.rs. `capture_bench soak ...` runs one source into a clock-synced
//! sink for minutes or hours and samples the process's memory, fds, threads and CPU: see
//! soak.rs.

mod options;
mod scale;
mod soak;

use options::Options;

use gst::prelude::*;
use gstrustv4l2::v4l2;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::resource::{Usage, UsageWho, getrusage};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: capture_bench (--pipeline-src DESCRIPTION | --bare DEVICE) --caps CAPS \
--frames N [--timeout SECONDS] [--label TEXT] [--stall-ms N --stall-every K] [--span N] [--count-copies]

  --pipeline-src  one source element in gst-launch syntax, e.g. 'v4l2src device=/dev/video0 io-mode=mmap'
  --bare          no element: a bare poll/DQBUF/QBUF loop on this device (YUY2 caps only)
  --caps          caps for the capsfilter after it, e.g. 'video/x-raw,format=YUY2,width=640,height=360,framerate=30/1'
  --frames        how many frames to capture before stopping
  --timeout       give up after this many seconds (default 120)
  --label         copied into the JSON line, to tell runs apart
  --stall-ms      sleep this many ms in the sink after every --stall-every-th frame (slow downstream)
  --stall-every   see --stall-ms (both or neither)
  --span          also stop once the buffer OFFSET (the driver's sequence) is N-1 past the first
                  frame's: N frames of the driver, delivered or not (ignored without offsets)
  --count-copies  count the per-frame copy messages of GST_PERFORMANCE (at LOG level); this costs
                  every element's debug statements CPU time, so leave it off when timing

capture_bench scale --help: N sources in one process, one per device.
capture_bench soak --help: one source into a clock-synced sink for a long time, sampled.

Prints one JSON line on stdout; exits 1 on an error (the reason goes to stderr).";

/// The name the source gets in the pipeline, to find it again.
const SRC_NAME: &str = "bench_src";

/// Copy messages that the elements log to GST_PERFORMANCE once per copied frame.
const COPY_MESSAGE_PREFIXES: &[&str] = &["Copying frame", "slow copy into buffer"];

/// Buffers the bare loop maps: as many as rustv4l2src asks for with an appsink downstream.
const BARE_BUFFERS: u32 = 4;

enum Source {
    Pipeline(String),
    Bare(String),
}

struct Args {
    src: Source,
    caps: String,
    frames: usize,
    timeout: Duration,
    label: String,
    /// Sleep this long after every `stall_every`-th frame; `None`: never.
    stall: Option<(Duration, usize)>,
    span: Option<u64>,
    /// Log GST_PERFORMANCE at LOG level, where the C buffer pool reports its copies.
    count_copies: bool,
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(key: &str, v: &str) -> Result<T, String> {
    v.parse::<T>()
        .ok()
        .filter(|n| *n > T::default())
        .ok_or_else(|| format!("{key} wants a positive number, not '{v}'"))
}

fn parse_args() -> Result<Args, String> {
    let mut src = None;
    let mut caps = None;
    let mut frames = None;
    let mut timeout = Duration::from_secs(120);
    let mut label = String::new();
    let mut stall_ms = None;
    let mut stall_every = None;
    let mut span = None;
    let mut count_copies = false;
    let mut opts = Options::new(std::env::args().skip(1));
    while let Some(opt) = opts.next_opt() {
        let opt = opt?;
        let key = opt.key.as_str();
        match key {
            "--pipeline-src" => src = Some(Source::Pipeline(opts.value(&opt)?)),
            "--bare" => src = Some(Source::Bare(opts.value(&opt)?)),
            "--caps" => caps = Some(opts.value(&opt)?),
            "--frames" => frames = Some(positive::<usize>(key, &opts.value(&opt)?)?),
            "--timeout" => {
                timeout = Duration::from_secs(positive::<u64>(key, &opts.value(&opt)?)?);
            }
            "--label" => label = opts.value(&opt)?,
            "--stall-ms" => stall_ms = Some(positive::<u64>(key, &opts.value(&opt)?)?),
            "--stall-every" => stall_every = Some(positive::<usize>(key, &opts.value(&opt)?)?),
            "--span" => span = Some(positive::<u64>(key, &opts.value(&opt)?)?),
            "--count-copies" => count_copies = true,
            _ => return Err(format!("unknown argument '{}'", opt.arg)),
        }
    }
    let stall = match (stall_ms, stall_every) {
        (Some(ms), Some(every)) => Some((Duration::from_millis(ms), every)),
        (None, None) => None,
        _ => return Err("--stall-ms and --stall-every go together".to_owned()),
    };
    Ok(Args {
        src: src.ok_or("--pipeline-src or --bare is required")?,
        caps: caps.ok_or("--caps is required")?,
        frames: frames.ok_or("--frames is required")?,
        timeout,
        label,
        stall,
        span,
        count_copies,
    })
}

/// What the sink saw of one frame.
struct Frame {
    /// Since the `set_state(Playing)` call.
    arrival: Duration,
    latency_ns: Option<i64>,
    offset: Option<u64>,
}

/// Filled by the sink's streaming thread, read by the main thread once the pipeline stopped.
#[derive(Default)]
struct Capture {
    frames: Vec<Frame>,
    frame_bytes: usize,
    caps: Option<String>,
    /// Where `--span` counts from.
    first_offset: Option<u64>,
    /// Process CPU time (user, system) when the first and the last frame arrived: a
    /// steady-state figure from one run, to cross-check the long-minus-short differencing.
    cpu_at_first: Option<(f64, f64)>,
    cpu_at_last: Option<(f64, f64)>,
}

/// Log messages seen while running: per-frame copies, the other GST_PERFORMANCE messages by
/// text (so that a copy message this program does not know yet shows up), and warnings (lost
/// frames, distrusted timestamps).
#[derive(Default)]
struct LogWatch {
    copies: AtomicU64,
    perf_other: Mutex<BTreeMap<String, u64>>,
    warnings: Mutex<BTreeMap<String, u64>>,
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("scale") {
        return match scale::main(std::env::args().skip(2)) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) if e.is_empty() => {
                println!("{}", scale::USAGE);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("capture_bench scale: {e} (capture_bench scale --help)");
                ExitCode::FAILURE
            }
        };
    }
    if std::env::args().nth(1).as_deref() == Some("soak") {
        return match soak::main(std::env::args().skip(2)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.is_empty() => {
                println!("{}", soak::USAGE);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("capture_bench soak: {e} (capture_bench soak --help)");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("capture_bench: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("capture_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String, String> {
    gst::init().map_err(|e| format!("GStreamer did not initialise: {e}"))?;
    match &args.src {
        Source::Pipeline(src) => run_pipeline(args, src),
        Source::Bare(device) => run_bare(args, device),
    }
}

fn run_pipeline(args: &Args, src_description: &str) -> Result<String, String> {
    let log = watch_log(args.count_copies);

    // The sink never waits for the clock and holds nothing after the callback: every frame goes
    // back to its source as soon as it has been looked at, so neither source is starved by
    // the sink, and the last-sample reference that basesink keeps by default is off.
    let description = format!(
        "{} name={SRC_NAME} ! {} ! appsink name=sink sync=false max-buffers=1 drop=false \
         enable-last-sample=false",
        src_description, args.caps
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| format!("cannot build '{description}': {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the description did not make a pipeline".to_owned())?;
    let src = pipeline
        .by_name(SRC_NAME)
        .ok_or("the source element is missing from the pipeline")?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or("the appsink is missing from the pipeline")?;

    let capture = Arc::new(Mutex::new(Capture::default()));
    let wanted = args.frames;
    let (span, stall) = (args.span, args.stall);
    let start = Instant::now();
    {
        let capture = Arc::clone(&capture);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    // Everything about timing first, before any allocation or lock.
                    let now = sink.clock().map(|c| c.time());
                    let arrival = start.elapsed();
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    let base = sink.base_time();
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let latency_ns = match (now, base, buffer.pts()) {
                        (Some(now), Some(base), Some(pts)) => Some(
                            now.nseconds() as i64 - base.nseconds() as i64 - pts.nseconds() as i64,
                        ),
                        _ => None,
                    };
                    let offset =
                        Some(buffer.offset()).filter(|&o| o != gst::format::Buffers::OFFSET_NONE);
                    let mut capture = capture.lock().map_err(|_| gst::FlowError::Error)?;
                    if capture.frames.is_empty() {
                        capture.frame_bytes = buffer.size();
                        capture.caps = sample.caps().map(|c| c.to_string());
                        capture.cpu_at_first = cpu_ms();
                        capture.first_offset = offset;
                    }
                    capture.frames.push(Frame {
                        arrival,
                        latency_ns,
                        offset,
                    });
                    let spanned = match (span, capture.first_offset, offset) {
                        (Some(n), Some(first), Some(o)) => o.saturating_sub(first) + 1 >= n,
                        _ => false,
                    };
                    // Ending the stream from here stops the source after exactly `wanted`
                    // frames (or the span); the EOS message then tells the main thread.
                    if capture.frames.len() >= wanted || spanned {
                        capture.cpu_at_last = cpu_ms();
                        return Err(gst::FlowError::Eos);
                    }
                    let delivered = capture.frames.len();
                    drop(capture);
                    if let Some((pause, every)) = stall
                        && delivered % every == 0
                    {
                        // Busy with this frame: it stays held (`sample`) until the sleep ends.
                        std::thread::sleep(pause);
                    }
                    drop(sample);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }

    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| format!("the pipeline '{description}' did not start"))?;
    let outcome = wait_for_end(&pipeline, args.timeout);
    // Read before NULL: the element may forget its counters when it stops.
    let stats = src_stats(&src);
    let shutdown = pipeline.set_state(gst::State::Null);
    outcome?;
    shutdown.map_err(|_| "the pipeline did not stop".to_owned())?;
    let usage = getrusage(UsageWho::RUSAGE_SELF).map_err(|e| format!("getrusage: {e}"))?;

    let capture = capture.lock().map_err(|_| "capture state poisoned")?;
    let copies_perf_log = args
        .count_copies
        .then(|| log.copies.load(Ordering::Relaxed));
    let (copies, copies_from) = match stats.as_ref().and_then(|s| field_u64(s, "frames-copied")) {
        Some(n) => (Some(n), "stats"),
        None => (copies_perf_log, "perf-log"),
    };
    let factory = src.factory();
    let plugin_file = factory
        .as_ref()
        .and_then(|f| f.plugin())
        .and_then(|p| p.filename())
        .map(|p| p.display().to_string());

    let mut out = Json::default();
    out.str("label", &args.label);
    out.str("src", src_description);
    out.str(
        "element",
        &factory.map(|f| f.name().to_string()).unwrap_or_default(),
    );
    out.opt_str("plugin_file", plugin_file.as_deref());
    out.opt_str("caps", capture.caps.as_deref());
    common_fields(&mut out, &capture, &usage);
    out.opt_num("copies", copies.map(|n| n as f64));
    out.str("copies_from", copies_from);
    out.opt_num("copies_perf_log", copies_perf_log.map(|n| n as f64));
    out.opt_num(
        "frames_dropped",
        stats
            .as_ref()
            .and_then(|s| field_u64(s, "frames-dropped"))
            .map(|n| n as f64),
    );
    out.opt_num("stall_ms", args.stall.map(|(d, _)| d.as_millis() as f64));
    out.opt_num("stall_every", args.stall.map(|(_, k)| k as f64));
    out.opt_num("span", args.span.map(|n| n as f64));
    out.opt_str("stats", stats.map(|s| s.to_string()).as_deref());
    for (key, counts) in [("perf_other", &log.perf_other), ("warnings", &log.warnings)] {
        let counts = counts.lock().map_err(|_| "log state poisoned")?;
        out.counts(key, &counts);
    }
    Ok(out.finish())
}

/// The bare loop on `path`: open, `S_FMT`, `S_PARM`, map, stream, then poll + `DQBUF` + `QBUF`
/// until `--frames` frames came. No GStreamer element, no pipeline, no copy.
fn run_bare(args: &Args, path: &str) -> Result<String, String> {
    let caps = gst::Caps::from_str(&args.caps).map_err(|e| format!("--caps: {e}"))?;
    let s = caps.structure(0).ok_or("--caps is empty")?;
    if s.get::<&str>("format") != Ok("YUY2") {
        return Err("--bare captures YUY2 only".to_owned());
    }
    let (Ok(width), Ok(height), Ok(rate)) = (
        s.get::<i32>("width"),
        s.get::<i32>("height"),
        s.get::<gst::Fraction>("framerate"),
    ) else {
        return Err("--bare needs a fixed width, height and framerate in --caps".to_owned());
    };
    let fail = |e: v4l2::Error| e.to_string();

    let start = Instant::now();
    let device = Arc::new(
        v4l2::Device::open(std::path::Path::new(path)).map_err(|e| format!("{path}: {e:?}"))?,
    );
    let request = v4l2::FormatRequest::new(v4l2::Fourcc::new(b"YUYV"), width as u32, height as u32);
    device.s_fmt(&request).map_err(fail)?;
    device
        .s_parm(v4l2::Fract::new(rate.denom() as u32, rate.numer() as u32))
        .map_err(fail)?;
    let queue = v4l2::Queue::allocate(Arc::clone(&device), BARE_BUFFERS, false).map_err(fail)?;
    queue.start().map_err(fail)?;

    let mut capture = Capture::default();
    let deadline = start + args.timeout;
    while capture.frames.len() < args.frames {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no frame within {} s", args.timeout.as_secs()));
        }
        let mut fds = [PollFd::new(device.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        // vivid never hands over a buffer twice: a reread would be a broken driver.
        let Some(v4l2::Taken::Frame(frame)) = queue.dequeue().map_err(fail)? else {
            continue;
        };
        let arrival = start.elapsed();
        let age = v4l2::device::monotonic_now().saturating_sub(frame.timestamp);
        if capture.frames.is_empty() {
            capture.frame_bytes = queue.frame_plane(&frame, 0).len();
            capture.caps = Some(args.caps.clone());
            capture.cpu_at_first = cpu_ms();
        }
        capture.frames.push(Frame {
            arrival,
            latency_ns: Some(age.as_nanos() as i64),
            offset: Some(frame.sequence.into()),
        });
        if capture.frames.len() == args.frames {
            capture.cpu_at_last = cpu_ms();
        }
        queue.requeue(frame).map_err(fail)?;
    }
    queue.stop().map_err(fail)?;
    drop(queue);
    drop(device);
    let usage = getrusage(UsageWho::RUSAGE_SELF).map_err(|e| format!("getrusage: {e}"))?;

    let mut out = Json::default();
    out.str("label", &args.label);
    out.str("src", &format!("bare {path}"));
    out.str("element", "bare loop");
    out.opt_str("caps", capture.caps.as_deref());
    common_fields(&mut out, &capture, &usage);
    out.num("copies", 0.0);
    out.str("copies_from", "none: no copy in the loop");
    Ok(out.finish())
}

/// The measurements every kind of run reports, from what it captured and its final rusage.
fn common_fields(out: &mut Json, capture: &Capture, usage: &Usage) {
    out.num("frames", capture.frames.len() as f64);
    out.num("frame_bytes", capture.frame_bytes as f64);
    out.opt_num(
        "first_frame_ms",
        capture
            .frames
            .first()
            .map(|f| f.arrival.as_secs_f64() * 1e3),
    );
    out.num("user_ms", timeval_ms(usage.user_time()));
    out.num("sys_ms", timeval_ms(usage.system_time()));
    // ru_maxrss survives execve, so a child of a big parent inherits the parent's peak:
    // the peak of this process image is VmHWM. Both in KiB.
    out.opt_num("peak_rss_kib", peak_rss_kib().map(|k| k as f64));
    out.num("ru_maxrss_kib", usage.max_rss() as f64);
    out.num("vol_ctxsw", usage.voluntary_context_switches() as f64);
    out.num("invol_ctxsw", usage.involuntary_context_switches() as f64);
    for (key, cpu) in [
        ("cpu_at_first_ms", capture.cpu_at_first),
        ("cpu_at_last_ms", capture.cpu_at_last),
    ] {
        out.nums(key, [cpu.map(|c| c.0), cpu.map(|c| c.1)].into_iter());
    }
    let (lost, unordered) = count_gaps(&capture.frames);
    out.opt_num("lost", lost.map(|n| n as f64));
    out.num("unordered", unordered as f64);
    out.nums(
        "offsets",
        capture.frames.iter().map(|f| f.offset.map(|o| o as f64)),
    );
    out.millis(
        "arrival_ms",
        capture
            .frames
            .iter()
            .map(|f| Some(f.arrival.as_nanos() as i64)),
    );
    out.millis("latency_ms", capture.frames.iter().map(|f| f.latency_ns));
}

/// Turns on GST_PERFORMANCE at LOG level (where the C buffer pool reports its copies) and
/// warnings everywhere, and counts them in-process; the default stderr logger is removed so that
/// logging itself costs no more than a string comparison per copy.
fn watch_log(count_copies: bool) -> Arc<LogWatch> {
    let watch = Arc::new(LogWatch::default());
    let user_debug = std::env::var_os("GST_DEBUG").is_some();
    if !user_debug {
        gst::log::remove_default_log_function();
    }
    // Not gst::log::set_active(true): it lets every debug statement of every element (and of
    // GStreamer's core, refcounting included) into the logging core, a few hundred instructions
    // each, many per frame. Setting thresholds enables logging up to the highest one only; and
    // a category at LOG does much the same, so only copy counting asks for it.
    // GST_DEBUG, when given (to see a run's timeline, say), is left as it is.
    let thresholds = match (user_debug, count_copies) {
        (false, false) => "*:2",
        (false, true) => "*:2,GST_PERFORMANCE:6",
        (true, false) => "",
        (true, true) => "GST_PERFORMANCE:6",
    };
    if !thresholds.is_empty() {
        gst::log::set_threshold_from_string(thresholds, false);
    }
    let hook = Arc::clone(&watch);
    gst::log::add_log_function(move |category, level, _file, _function, _line, _obj, msg| {
        let Some(text) = msg.get() else { return };
        let text = text.as_str();
        let performance = category.name() == "GST_PERFORMANCE";
        if performance && COPY_MESSAGE_PREFIXES.iter().any(|p| text.starts_with(p)) {
            hook.copies.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let counts = if level <= gst::DebugLevel::Warning {
            &hook.warnings
        } else if performance {
            &hook.perf_other
        } else {
            return;
        };
        if let Ok(mut counts) = counts.lock() {
            *counts
                .entry(message_key(category.name(), text))
                .or_default() += 1;
        }
    });
    watch
}

/// Messages carry pointers and counts: the category and the start of the text, with each run of
/// digits made '#', name the reason and group repeats.
fn message_key(category: &str, text: &str) -> String {
    let mut key = format!("{category}: ");
    let mut in_number = false;
    for c in text.chars().take(80) {
        if c.is_ascii_digit() || (in_number && matches!(c, 'x' | 'a'..='f')) {
            if !in_number {
                key.push('#');
            }
            in_number = true;
        } else {
            key.push(c);
            in_number = false;
        }
    }
    key
}

/// Waits for the EOS that the sink callback causes after the last frame, or an error.
fn wait_for_end(pipeline: &gst::Pipeline, timeout: Duration) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no end of stream within {} s", timeout.as_secs()));
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(e) => {
                return Err(format!(
                    "error from {}: {} ({})",
                    e.src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
            }
            _ => {}
        }
    }
}

/// The element's `stats` structure, for elements that have one.
fn src_stats(src: &gst::Element) -> Option<gst::Structure> {
    let pspec = src.find_property("stats")?;
    if !pspec.value_type().is_a(gst::Structure::static_type()) {
        return None;
    }
    src.property_value("stats").get::<gst::Structure>().ok()
}

/// A numeric field of any integer type, as u64.
fn field_u64(s: &gst::Structure, name: &str) -> Option<u64> {
    s.value(name).ok()?.transform::<u64>().ok()?.get().ok()
}

/// (frames missing between consecutive offsets, offsets that did not increase). `None` when
/// the source did not set offsets.
fn count_gaps(frames: &[Frame]) -> (Option<u64>, u64) {
    let mut lost = 0;
    let mut unordered = 0;
    let mut prev: Option<u64> = None;
    for f in frames {
        let Some(offset) = f.offset else {
            return (None, unordered);
        };
        if let Some(p) = prev {
            if offset > p {
                lost += offset - p - 1;
            } else {
                unordered += 1;
            }
        }
        prev = Some(offset);
    }
    (prev.map(|_| lost), unordered)
}

/// The high-water mark of this process's resident set (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    proc_status("VmHWM:")
}

/// The number on the line of /proc/self/status that starts with `field` (`"VmRSS:"`: KiB).
fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// (user, system) CPU time of the process so far, in ms.
fn cpu_ms() -> Option<(f64, f64)> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    Some((
        timeval_ms(usage.user_time()),
        timeval_ms(usage.system_time()),
    ))
}

fn timeval_ms(tv: nix::sys::time::TimeVal) -> f64 {
    tv.tv_sec() as f64 * 1e3 + tv.tv_usec() as f64 / 1e3
}

/// Just enough of a JSON object writer for one flat line: no dependency for this.
#[derive(Default)]
struct Json(String);

impl Json {
    fn key(&mut self, key: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.push_str_literal(key);
        self.0.push(':');
    }

    fn push_str_literal(&mut self, s: &str) {
        self.0.push('"');
        for c in s.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
    }

    fn push_num(&mut self, v: Option<f64>) {
        match v {
            // Microsecond resolution for milliseconds is plenty, and keeps the line short.
            Some(v) if v.is_finite() && v.fract() != 0.0 => {
                let _ = write!(self.0, "{v:.3}");
            }
            // Whole numbers (offsets, counts) through integer formatting, which is cheap.
            Some(v) if v.abs() < 9e15 => {
                let _ = write!(self.0, "{}", v as i64);
            }
            Some(v) if v.is_finite() => {
                let _ = write!(self.0, "{v}");
            }
            _ => self.0.push_str("null"),
        }
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.push_str_literal(value);
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => self.push_str_literal(v),
            None => self.0.push_str("null"),
        }
    }

    fn num(&mut self, key: &str, value: f64) {
        self.opt_num(key, Some(value));
    }

    fn opt_num(&mut self, key: &str, value: Option<f64>) {
        self.key(key);
        self.push_num(value);
    }

    fn nums(&mut self, key: &str, values: impl Iterator<Item = Option<f64>>) {
        self.array(key, values, Json::push_num);
    }

    /// Nanoseconds as milliseconds with 3 decimals, in integer arithmetic: float formatting
    /// would cost each frame more instructions than some sources spend on it, and callgrind
    /// counts this process whole.
    fn millis(&mut self, key: &str, values: impl Iterator<Item = Option<i64>>) {
        self.array(key, values, |json, v| match v {
            Some(ns) => {
                let us = (ns + if ns < 0 { -500 } else { 500 }) / 1000;
                let sign = if us < 0 { "-" } else { "" };
                let us = us.unsigned_abs();
                let _ = write!(json.0, "{sign}{}.{:03}", us / 1000, us % 1000);
            }
            None => json.0.push_str("null"),
        });
    }

    fn array<T>(
        &mut self,
        key: &str,
        values: impl Iterator<Item = T>,
        mut push: impl FnMut(&mut Json, T),
    ) {
        self.key(key);
        self.0.push('[');
        for (i, v) in values.enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            push(self, v);
        }
        self.0.push(']');
    }

    fn counts(&mut self, key: &str, counts: &BTreeMap<String, u64>) {
        self.key(key);
        self.0.push('{');
        for (i, (k, n)) in counts.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.push_str_literal(k);
            let _ = write!(self.0, ":{n}");
        }
        self.0.push('}');
    }

    fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}
