//! v4l2loopback: a capture node fed by a `gst-launch-1.0 ... ! v4l2sink` writer, for what vivid
//! cannot give (compressed formats, a driver without `VIDIOC_EXPBUF`, foreign timestamps).
//! The module is out of tree: `scripts/setup-deps` builds it for the VM's kernel.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gstrustv4l2::v4l2::Device;

use super::TIMEOUT;

/// The loopback node with the module as the tests load it: `card_label=loop` and 8 buffers.
pub fn node() -> String {
    // Enough buffers that frames held by the test and appsink are lent, not copied (its
    // default is 2).
    load(&["card_label=loop", "max_buffers=8"])
}

/// The loopback node (`/dev/video20`, one device, `exclusive_caps=1`) with the module loaded
/// afresh with `params` besides those (among them `max_buffers=N`); no writer may be running.
///
/// Afresh, because v4l2loopback keeps state from one user to the next: the format the last
/// prober left (a device monitor's probe leaves the output at 48x32 YVYU) and its buffer
/// bookkeeping after a writer and its reader close. In the state an earlier test's writer and
/// reader left, a new `v4l2sink` writer dequeued a buffer it had never queued ("No free buffer
/// found in the pool at index 0") and ended at its second frame: seen when
/// `dmabuf::a_driver_without_export_gets_a_clear_error` ran right after itself, and after the
/// MJPEG rounds of tests/loopback.rs and tests/uvc.rs, as in CI (2 of 2 runs failed so).
pub fn load(params: &[&str]) -> String {
    const NODE: &str = "/dev/video20";
    assert!(
        params.iter().any(|p| p.starts_with("max_buffers=")),
        "params name max_buffers"
    );
    if Path::new("/sys/module/v4l2loopback").exists() {
        let out = Command::new("modprobe")
            .args(["-r", "v4l2loopback"])
            .output()
            .expect("modprobe runs");
        assert!(
            out.status.success(),
            "modprobe -r v4l2loopback failed ({}): is a writer or reader of an earlier test \
             still open? {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    modprobe(params);
    // Without udev the node may be missing: make it from sysfs, as scripts/vm-run does.
    let sys = Path::new("/sys/class/video4linux/video20/dev");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let numbers = std::fs::read_to_string(sys).unwrap_or_default();
        let numbers = numbers.trim();
        if let Some((major, minor)) = numbers.split_once(':') {
            // A node left from an earlier load may point at old numbers: make it again.
            let stale = std::fs::metadata(NODE).is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                let rdev = m.rdev();
                format!(
                    "{}:{}",
                    nix::sys::stat::major(rdev),
                    nix::sys::stat::minor(rdev)
                ) != numbers
            });
            if stale {
                let _ = std::fs::remove_file(NODE);
            }
            if !Path::new(NODE).exists() {
                let _ = Command::new("mknod")
                    .args(["-m", "660", NODE, "c", major, minor])
                    .status();
            }
            if Path::new(NODE).exists() {
                return NODE.to_string();
            }
        }
        assert!(Instant::now() < deadline, "{NODE} never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn modprobe(params: &[&str]) {
    let status = Command::new("modprobe")
        .args([
            "v4l2loopback",
            "devices=1",
            "exclusive_caps=1",
            "video_nr=20",
        ])
        .args(params)
        .status()
        .expect("modprobe runs");
    assert!(
        status.success(),
        "modprobe v4l2loopback failed ({status}): scripts/setup-deps builds the module for \
         the VM's kernel (v4l2loopback-dkms)"
    );
}

/// A `gst-launch-1.0` child feeding the loopback device, killed when dropped.
pub struct Writer(Child);

impl Writer {
    /// A live moving ball, I420 at `size` ("WxH") and 30 fps, through `encode` into `node`,
    /// once `node` can capture.
    pub fn feed(node: &str, size: &str, encode: &str) -> Writer {
        let (width, height) = size.split_once('x').expect("WxH");
        let mut writer = Writer::start(&format!(
            "videotestsrc is-live=true pattern=ball \
             ! video/x-raw,format=I420,width={width},height={height},framerate=30/1 \
             ! {encode} ! v4l2sink device={node}"
        ));
        writer.wait_for_capture(node);
        writer
    }

    /// `gst-launch-1.0 pipeline`, started and left to it.
    pub fn start(pipeline: &str) -> Writer {
        let child = Command::new("gst-launch-1.0")
            .args(pipeline.split_whitespace())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gst-launch-1.0 starts");
        Writer(child)
    }

    /// Waits until `node` can be opened as a capture device: with `exclusive_caps=1`,
    /// v4l2loopback offers capture only once its writer streams.
    pub fn wait_for_capture(&mut self, node: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while Device::open(Path::new(node)).is_err() {
            if let Ok(Some(status)) = self.0.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = self.0.stderr.take() {
                    use std::io::Read;
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("the writer ended ({status}) before {node} could capture:\n{err}");
            }
            assert!(
                Instant::now() < deadline,
                "{node} did not become a capture device within {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
