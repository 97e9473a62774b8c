//! `capture_bench soak`: one source into a clock-synced sink for a long time, sampled now and
//! then; prints one JSON line per sample as it is taken, and one after the pipeline is back in
//! NULL.
//!
//!     capture_bench soak --src "rustv4l2src device=/dev/video0" \
//!         --caps "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1" --minutes 60
//!
//! The pipeline is `SRC ! CAPS ! fakesink sync=true`: the sink waits for each frame's running
//! time on the pipeline clock, as a display or a recorder does. The sink's pad probe keeps
//! counts only (frames, frames lost: gaps in the buffer OFFSET, the driver's sequence number,
//! which both elements set; timestamps that went back), in atomics: nothing grows with the run,
//! so what the samples show of memory is the element's and GStreamer's, not this program's.
//!
//! A sample (`"sample": N`, N = 0 at the first frame, then every `--sample-seconds`) holds the
//! seconds since the first frame, those counts, the resident set (VmRSS, KiB, now, not the
//! peak), open fds (/proc/self/fd), threads, the process's user and system CPU time (ms), and
//! for elements with a `stats` property its frames-lost. The last line (`"end": true`) is taken
//! after the pipeline went back to NULL and was dropped: fds, threads and RSS left.

use crate::options::Options;
use crate::scale::{threads, wait_for_error};
use crate::{Json, cpu_ms, field_u64, peak_rss_kib, proc_status, src_stats, watch_log};
use gst::prelude::*;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const USAGE: &str = "usage: capture_bench soak --src ELEMENT --caps CAPS --minutes M \
[--sample-seconds S] [--timeout SECONDS] [--label TEXT]

  --src             the source element in gst-launch syntax, device included,
                    e.g. 'v4l2src device=/dev/video1 io-mode=mmap'
  --caps            caps for the capsfilter after it
  --minutes         how long to run, from the first frame
  --sample-seconds  seconds between samples (default 60)
  --timeout         give up when no frame came within this many seconds (default 120)
  --label           copied into every JSON line

Prints a JSON line per sample on stdout as it goes; exits 1 on an error (the reason goes to
stderr).";

struct Args {
    src: String,
    caps: String,
    minutes: f64,
    sample: Duration,
    timeout: Duration,
    label: String,
}

fn positive(key: &str, v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("{key} wants a positive number, not '{v}'"))
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut src, mut caps, mut minutes) = (None, None, None);
    let (mut sample, mut timeout, mut label) = (60.0, 120.0, String::new());
    let mut opts = Options::new(args);
    while let Some(opt) = opts.next_opt() {
        let opt = opt?;
        let key = opt.key.as_str();
        match key {
            "--src" => src = Some(opts.value(&opt)?),
            "--caps" => caps = Some(opts.value(&opt)?),
            "--minutes" => minutes = Some(positive(key, &opts.value(&opt)?)?),
            "--sample-seconds" => sample = positive(key, &opts.value(&opt)?)?,
            "--timeout" => timeout = positive(key, &opts.value(&opt)?)?,
            "--label" => label = opts.value(&opt)?,
            _ => return Err(format!("unknown argument '{}'", opt.arg)),
        }
    }
    Ok(Args {
        src: src.ok_or("--src is required")?,
        caps: caps.ok_or("--caps is required")?,
        minutes: minutes.ok_or("--minutes is required")?,
        sample: Duration::from_secs_f64(sample),
        timeout: Duration::from_secs_f64(timeout),
        label,
    })
}

/// `capture_bench soak ARGS...`: prints the samples; the reason it stopped early, if it did
/// (empty: print the usage).
pub fn main(args: impl Iterator<Item = String>) -> Result<(), String> {
    let args = parse_args(args)?;
    gst::init().map_err(|e| format!("GStreamer did not initialise: {e}"))?;
    run(&args)
}

/// What the sink's probe counts, lock-free.
#[derive(Default)]
struct Counts {
    frames: AtomicU64,
    lost: AtomicU64,
    /// The OFFSET the next frame has when none is lost: the last one's + 1 (0: none yet).
    next_offset: AtomicU64,
    /// The last frame's PTS + 1 (0: none yet).
    last_pts: AtomicU64,
    backwards: AtomicU64,
}

impl Counts {
    fn frame(&self, buffer: &gst::BufferRef) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        let offset = buffer.offset();
        if offset != gst::ffi::GST_BUFFER_OFFSET_NONE {
            let expected = self.next_offset.swap(offset + 1, Ordering::Relaxed);
            if expected != 0 && offset > expected {
                self.lost.fetch_add(offset - expected, Ordering::Relaxed);
            }
        }
        if let Some(pts) = buffer.pts() {
            let previous = self.last_pts.swap(pts.nseconds() + 1, Ordering::Relaxed);
            if previous != 0 && pts.nseconds() + 1 < previous {
                self.backwards.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Open file descriptors of this process (the read_dir's own included, as in every sample).
fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The fields every line has: label, RSS, fds, threads, CPU.
fn process_fields(json: &mut Json, label: &str) {
    json.str("label", label);
    json.opt_num("rss_kib", proc_status("VmRSS:").map(|v| v as f64));
    json.opt_num("hwm_kib", peak_rss_kib().map(|v| v as f64));
    json.opt_num("fds", open_fds().map(|v| v as f64));
    json.opt_num("threads", threads().map(|v| v as f64));
    let cpu = cpu_ms();
    json.opt_num("user_ms", cpu.map(|c| c.0));
    json.opt_num("sys_ms", cpu.map(|c| c.1));
}

fn emit(json: Json) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", json.finish());
    let _ = out.flush();
}

fn run(args: &Args) -> Result<(), String> {
    let _log = watch_log(false);
    {
        // Before anything is built: what the process holds with GStreamer initialised only.
        let mut json = Json::default();
        json.str("phase", "before");
        process_fields(&mut json, &args.label);
        emit(json);
    }
    let description = format!(
        "{} name=src ! {} ! fakesink name=sink sync=true enable-last-sample=false",
        args.src, args.caps
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| format!("cannot build '{description}': {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the description did not make a pipeline".to_owned())?;
    let src = pipeline.by_name("src").ok_or("no source in the pipeline")?;
    let sink = pipeline
        .by_name("sink")
        .ok_or("no fakesink in the pipeline")?;
    let counts = Arc::new(Counts::default());
    let probe_counts = Arc::clone(&counts);
    sink.static_pad("sink")
        .ok_or("a fakesink has no sink pad")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer() {
                probe_counts.frame(buffer);
            }
            gst::PadProbeReturn::Ok
        });
    let bus = pipeline.bus().ok_or("a pipeline has a bus")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("the pipeline did not start: {e}"))?;

    let outcome = (|| {
        let waited = Instant::now();
        while counts.frames.load(Ordering::Relaxed) == 0 {
            if waited.elapsed() > args.timeout {
                return Err(format!("no frame within {:?}", args.timeout));
            }
            wait_for_error(&bus, Duration::from_millis(20))?;
        }
        let first = Instant::now();
        let end = first + Duration::from_secs_f64(args.minutes * 60.0);
        let mut sample = 0u64;
        loop {
            let mut json = Json::default();
            json.num("sample", sample as f64);
            json.num("t_s", first.elapsed().as_secs_f64());
            json.num("frames", counts.frames.load(Ordering::Relaxed) as f64);
            json.num("lost", counts.lost.load(Ordering::Relaxed) as f64);
            json.num(
                "pts_backwards",
                counts.backwards.load(Ordering::Relaxed) as f64,
            );
            let stats = src_stats(&src);
            json.opt_num(
                "element_lost",
                stats
                    .as_ref()
                    .and_then(|s| field_u64(s, "frames-lost"))
                    .map(|v| v as f64),
            );
            process_fields(&mut json, &args.label);
            emit(json);
            sample += 1;
            let next = first + args.sample.mul_f64(sample as f64);
            if next > end + Duration::from_millis(500) {
                return Ok(());
            }
            wait_for_error(&bus, next.saturating_duration_since(Instant::now()))?;
        }
    })();
    let stopped = pipeline.set_state(gst::State::Null);
    drop((src, sink, bus, pipeline));
    let mut json = Json::default();
    json.str("phase", "end");
    json.num("frames", counts.frames.load(Ordering::Relaxed) as f64);
    json.opt_str("error", outcome.as_ref().err().map(String::as_str));
    process_fields(&mut json, &args.label);
    emit(json);
    stopped.map_err(|e| format!("the pipeline did not stop: {e}"))?;
    outcome
}
