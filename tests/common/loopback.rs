//! v4l2loopback: a capture node fed by a `gst-launch-1.0 ... ! v4l2sink` writer, for what vivid
//! cannot give (compressed formats, a driver without `VIDIOC_EXPBUF`, foreign timestamps).
//! The module is out of tree: `scripts/setup-deps` builds it for the VM's kernel.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gstrustv4l2::v4l2::Device;

use super::TIMEOUT;

/// The loopback node, the module loaded once per run (root in the VM), the same way by every
/// test binary so that they can run one after the other in one VM.
pub fn node() -> String {
    const NODE: &str = "/dev/video20";
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        let status = Command::new("modprobe")
            .args([
                "v4l2loopback",
                "devices=1",
                "exclusive_caps=1",
                "card_label=loop",
                "video_nr=20",
                // Enough buffers that frames held by the test and appsink are lent, not
                // copied (its default is 2).
                "max_buffers=8",
            ])
            .status()
            .expect("modprobe runs");
        assert!(
            status.success(),
            "modprobe v4l2loopback failed ({status}): scripts/setup-deps builds the module for \
             the VM's kernel (v4l2loopback-dkms)"
        );
    });
    // Without udev the node may be missing: make it from sysfs, as scripts/vm-run does.
    let sys = Path::new("/sys/class/video4linux/video20/dev");
    let deadline = Instant::now() + TIMEOUT;
    while !Path::new(NODE).exists() {
        if let Ok(numbers) = std::fs::read_to_string(sys)
            && let Some((major, minor)) = numbers.trim().split_once(':')
        {
            let _ = Command::new("mknod")
                .args(["-m", "660", NODE, "c", major, minor])
                .status();
        }
        assert!(Instant::now() < deadline, "{NODE} never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    NODE.to_string()
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
