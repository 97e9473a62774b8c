//! No allocation per frame in steady state (issue 16, item 3): after a warm-up, the element
//! captures 300 frames without one Rust heap allocation in the whole process (this binary links
//! the element, so its `#[global_allocator]` sees the element's allocations on every thread),
//! without one new GStreamer mini-object (GstBuffer, GstMemory, or any other: counted by a
//! tracer's `mini-object-created` hook), and through no more distinct GstBuffers than the
//! driver has buffers: each driver buffer's GstBuffer is made once and recycled. In mmap and
//! dmabuf modes, on the single- and the multi-planar node. A frame the driver loses is the one
//! exception: the element tells of it with a QoS message (a mini-object, made for that event).
//!
//! GLib's own `g_malloc` (libc malloc) is not counted here, except through the mini-objects it
//! would make; the benchmark's instruction counts show the rest.
//!
//! Needs vivid's nodes (see `common`): run through `scripts/vm-run`.

mod common;

use common::{Control, TIMEOUT, change_state, element_bus_problems, setup};

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

/// Counts every allocation and reallocation of Rust code in this process, on any thread.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// GStreamer mini-objects created in this process since the tracer was made.
static MINI_OBJECTS: AtomicU64 = AtomicU64::new(0);

/// QoS messages the pipeline's bus has seen: the element posts one when the driver's sequence
/// numbers jump (frames lost while the VM's CPUs were elsewhere), and a message is a mini-object
/// made for that event, not for every frame.
static QOS_MESSAGES: AtomicU64 = AtomicU64::new(0);

/// A tracer that counts `mini-object-created`: every GstBuffer, GstMemory, event, message,
/// query, caps... made anywhere in the process.
#[derive(Default)]
pub struct MiniObjectCounter;

#[glib::object_subclass]
impl ObjectSubclass for MiniObjectCounter {
    const NAME: &'static str = "RustV4l2TestMiniObjectCounter";
    type Type = MiniObjectCounterTracer;
    type ParentType = gst::Tracer;
}

impl ObjectImpl for MiniObjectCounter {
    fn constructed(&self) {
        self.parent_constructed();
        self.register_hook(TracerHook::MiniObjectCreated);
    }
}

impl GstObjectImpl for MiniObjectCounter {}

impl TracerImpl for MiniObjectCounter {
    fn mini_object_created(&self, _ts: u64, _object: std::ptr::NonNull<gst::ffi::GstMiniObject>) {
        MINI_OBJECTS.fetch_add(1, Ordering::Relaxed);
    }
}

glib::wrapper! {
    pub struct MiniObjectCounterTracer(ObjectSubclass<MiniObjectCounter>)
        @extends gst::Tracer, gst::Object;
}

/// The tracer, made once: its hook stays registered for the life of the process.
fn count_mini_objects() {
    static TRACER: std::sync::OnceLock<MiniObjectCounterTracer> = std::sync::OnceLock::new();
    TRACER.get_or_init(glib::Object::new::<MiniObjectCounterTracer>);
}

const WARM_UP: u64 = 60;
const FRAMES: u64 = 300;
/// Distinct GstBuffers recorded; more than any driver's buffer count here.
const SEEN: usize = 64;

/// What the pad probe records, on the streaming thread, without allocating.
struct Window {
    frames: AtomicU64,
    first: [AtomicU64; 3],
    start: [AtomicU64; 3],
    end: [AtomicU64; 3],
    done: AtomicU64,
    buffers: [AtomicUsize; SEEN],
    overflow: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // a template for the array below, as intended
const ZERO: AtomicUsize = AtomicUsize::new(0);

static WINDOW: Window = Window {
    frames: AtomicU64::new(0),
    first: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
    start: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
    end: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
    done: AtomicU64::new(0),
    buffers: [ZERO; SEEN],
    overflow: AtomicU64::new(0),
};

impl Window {
    fn reset(&self) {
        self.frames.store(0, Ordering::SeqCst);
        self.done.store(0, Ordering::SeqCst);
        self.overflow.store(0, Ordering::SeqCst);
        for b in &self.buffers {
            b.store(0, Ordering::SeqCst);
        }
    }

    fn snapshot(into: &[AtomicU64; 3]) {
        into[0].store(ALLOCATIONS.load(Ordering::SeqCst), Ordering::SeqCst);
        into[1].store(MINI_OBJECTS.load(Ordering::SeqCst), Ordering::SeqCst);
        into[2].store(QOS_MESSAGES.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// One frame seen leaving the source.
    fn frame(&self, buffer: usize) {
        let n = self.frames.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            Self::snapshot(&self.first);
        } else if n == WARM_UP {
            Self::snapshot(&self.start);
        } else if n > WARM_UP && n <= WARM_UP + FRAMES {
            self.note(buffer);
            if n == WARM_UP + FRAMES {
                Self::snapshot(&self.end);
                self.done.store(1, Ordering::SeqCst);
            }
        }
    }

    fn note(&self, buffer: usize) {
        for slot in &self.buffers {
            match slot.compare_exchange(0, buffer, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return,
                Err(seen) if seen == buffer => return,
                Err(_) => {}
            }
        }
        self.overflow.fetch_add(1, Ordering::SeqCst);
    }

    fn distinct(&self) -> usize {
        self.buffers
            .iter()
            .filter(|b| b.load(Ordering::SeqCst) != 0)
            .count()
    }

    /// Counter `i` (0: Rust allocations, 1: mini-objects, 2: QoS messages) over the 300 frames.
    fn delta(&self, i: usize) -> u64 {
        self.end[i].load(Ordering::SeqCst) - self.start[i].load(Ordering::SeqCst)
    }

    /// Counter `i` over the warm-up, where the pool makes its buffers.
    fn warm_up(&self, i: usize) -> u64 {
        self.start[i].load(Ordering::SeqCst) - self.first[i].load(Ordering::SeqCst)
    }
}

/// Runs `rustv4l2src device=DEVICE SRC_PROPS ! CAPS ! fakesink` (a sink that makes nothing per
/// buffer) through warm-up and 300 frames, and asserts that nothing was allocated meanwhile.
fn assert_no_allocation(device: &str, src_props: &str, caps: &str) {
    let _guard = setup();
    assert_allocations(device, src_props, caps, false);
}

/// As `assert_no_allocation`; with `losing`, the driver is losing frames and the one QoS
/// message per loss must be there (and be all that was made).
fn assert_allocations(device: &str, src_props: &str, caps: &str, losing: bool) {
    count_mini_objects();
    WINDOW.reset();
    let ctx = format!("{device} {src_props} {caps}");
    let description = format!(
        "rustv4l2src name=src device={device} {src_props} ! {caps} ! \
         fakesink sync=false signal-handoffs=false enable-last-sample=false silent=true"
    );
    let pipeline = gst::parse::launch(&description)
        .unwrap_or_else(|e| panic!("cannot build '{description}': {e}"));
    let src = pipeline
        .downcast_ref::<gst::Bin>()
        .and_then(|bin| bin.by_name("src"))
        .expect("named src");
    let pad = src.static_pad("src").expect("a source has a src pad");
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(buffer) = info.buffer() {
            WINDOW.frame(buffer.as_ptr() as usize);
        }
        gst::PadProbeReturn::Ok
    })
    .expect("a buffer probe installs");
    pipeline
        .bus()
        .expect("a pipeline has a bus")
        .set_sync_handler(|_, message| {
            if let gst::MessageView::Qos(_) = message.view() {
                QOS_MESSAGES.fetch_add(1, Ordering::SeqCst);
            }
            gst::BusSyncReply::Pass
        });
    let _null = common::NullOnDrop(pipeline.clone());
    change_state(&pipeline, gst::State::Playing, TIMEOUT);

    // The VM's CPUs are slow: 360 frames at 30 fps take 12 s there when all is well.
    let limit = Duration::from_secs(120);
    let started = Instant::now();
    while WINDOW.done.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < limit,
            "{ctx}: only {} frames in {limit:?}:{}",
            WINDOW.frames.load(Ordering::SeqCst),
            element_bus_problems(&pipeline)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (allocations, mini_objects, qos, distinct) = (
        WINDOW.delta(0),
        WINDOW.delta(1),
        WINDOW.delta(2),
        WINDOW.distinct(),
    );
    let (warm_allocations, warm_mini_objects) = (WINDOW.warm_up(0), WINDOW.warm_up(1));
    let buffers = src.property::<gst::Structure>("stats");
    eprintln!(
        "{ctx}: over {FRAMES} frames after {WARM_UP}: {allocations} Rust allocations, \
         {mini_objects} new mini-objects ({qos} of them QoS messages for lost frames), \
         {distinct} distinct GstBuffers (warm-up from the \
         first frame: {warm_allocations} allocations, {warm_mini_objects} mini-objects); \
         stats {buffers}"
    );
    // The counters count: the pool made its other buffers (each a GstBuffer and its memories,
    // and a lease) during the warm-up.
    assert!(
        warm_allocations > 0 && warm_mini_objects >= 2 * (distinct as u64).saturating_sub(1),
        "{ctx}: the counters saw nothing during the warm-up ({warm_allocations} allocations, \
         {warm_mini_objects} mini-objects): they cannot prove anything"
    );
    assert_eq!(
        allocations, 0,
        "{ctx}: Rust code allocated {allocations} times over {FRAMES} frames"
    );
    assert!(
        !losing || qos > 0,
        "{ctx}: the driver was losing frames, and no QoS message told of it"
    );
    // A frame the driver lost (its sequence numbers jumped: the VM's CPUs were away longer
    // than the driver's buffers last) is told by one QoS message, as v4l2src does; that is the
    // only mini-object allowed, and only when it happened.
    assert_eq!(
        mini_objects.saturating_sub(qos),
        0,
        "{ctx}: {mini_objects} GStreamer mini-objects (buffers, memories, ...) were made over \
         {FRAMES} frames, of which {qos} QoS messages for lost frames"
    );
    assert_eq!(
        WINDOW.overflow.load(Ordering::SeqCst),
        0,
        "{ctx}: more than {SEEN} GstBuffers"
    );
    assert!(
        (2..=32).contains(&distinct),
        "{ctx}: {distinct} distinct GstBuffers over {FRAMES} frames: not recycled"
    );
    assert_eq!(
        buffers
            .get::<u64>("frames-copied")
            .expect("stats has frames-copied"),
        0,
        "{ctx}: copies"
    );
}

#[test]
fn mmap_single_planar_allocates_nothing_per_frame() {
    assert_no_allocation(
        &common::vivid_sp(),
        "io-mode=mmap",
        "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
    );
}

#[test]
fn dmabuf_single_planar_allocates_nothing_per_frame() {
    assert_no_allocation(
        &common::vivid_sp(),
        "io-mode=dmabuf",
        "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
    );
}

/// Y444 on the multi-planar node is `YM24`: three memories per buffer, each windowed per frame.
#[test]
fn mmap_multi_planar_allocates_nothing_per_frame() {
    assert_no_allocation(
        &common::vivid_mp(),
        "io-mode=mmap",
        "video/x-raw,format=Y444,width=640,height=360,framerate=15/1",
    );
}

#[test]
fn dmabuf_multi_planar_allocates_nothing_per_frame() {
    assert_no_allocation(
        &common::vivid_mp(),
        "io-mode=dmabuf",
        "video/x-raw,format=Y444,width=640,height=360,framerate=15/1",
    );
}

/// A frame the driver loses (vivid skips one in ten, its sequence numbers jump) makes one QoS
/// message and nothing else: still no Rust allocation and no other mini-object.
#[test]
fn lost_frames_make_only_their_qos_messages() {
    let _guard = setup();
    let device = common::vivid_sp();
    let _dropping = Control::set(&device, "percentage_of_dropped_buffers", 10, 0);
    assert_allocations(
        &device,
        "io-mode=mmap",
        "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
        true,
    );
}
