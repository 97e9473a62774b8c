//! The driver seen from beside the element: `v4l2-ctl` (vivid's controls and inputs, what the
//! driver really holds), its button controls pressed from this process, the platform device
//! behind a node, and a node that comes back after vivid disconnected it.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::TIMEOUT;
use gstrustv4l2::v4l2::{Device, FormatRequest, Fourcc};

/// Runs `v4l2-ctl args`, failing the test if it does not finish within `TIMEOUT`.
pub fn v4l2_ctl(args: &[&str]) -> Output {
    let mut child = Command::new("v4l2-ctl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("v4l2-ctl starts (v4l-utils installed?)");
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().expect("wait for v4l2-ctl").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("v4l2-ctl {args:?} ran over {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().expect("v4l2-ctl output")
}

/// As `v4l2_ctl`, failing the test unless it succeeds; returns what it printed.
pub fn v4l2_ctl_ok(args: &[&str]) -> String {
    let out = v4l2_ctl(args);
    assert!(
        out.status.success(),
        "v4l2-ctl {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `device` can be opened again (vivid brings a disconnected node back once every
/// file handle on it is closed). Returns how long that took, or `None` after `limit`.
pub fn wait_for_node(device: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(device)
            .is_ok()
        {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The platform device whose driver made `node` (vivid makes all its instances on one).
pub fn platform_device_of(node: &str) -> String {
    let name = Path::new(node)
        .file_name()
        .unwrap_or_else(|| panic!("{node} has no file name"));
    let link = Path::new("/sys/class/video4linux")
        .join(name)
        .join("device");
    let target = std::fs::read_link(&link)
        .unwrap_or_else(|e| panic!("reading the link {}: {e}", link.display()));
    target
        .file_name()
        .unwrap_or_else(|| panic!("{} leads nowhere", link.display()))
        .to_string_lossy()
        .into_owned()
}

/// The id of `device`'s control `name`, from `v4l2-ctl --list-ctrls`.
pub fn control_id(device: &str, name: &str) -> u32 {
    let out = v4l2_ctl(&["-d", device, "--list-ctrls"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    listing
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == name).then_some(())?;
            u32::from_str_radix(words.next()?.strip_prefix("0x")?, 16).ok()
        })
        .unwrap_or_else(|| panic!("{device} has no control {name}:\n{listing}"))
}

/// `struct v4l2_control`, for VIDIOC_S_CTRL.
#[repr(C)]
struct V4l2Control {
    id: u32,
    value: i32,
}

nix::ioctl_readwrite!(vidioc_s_ctrl, b'V', 28, V4l2Control);

/// Presses the button control `id` of `device` from this process, and returns when the driver
/// had handled it: a precise start for measuring what follows (`v4l2-ctl` takes a while to
/// start and to exit under emulation).
pub fn press_button(device: &str, id: u32) -> Instant {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .unwrap_or_else(|e| panic!("open {device}: {e}"));
    let mut control = V4l2Control { id, value: 1 };
    // SAFETY: VIDIOC_S_CTRL reads and writes one `struct v4l2_control`, which `control` is, on
    // an fd that stays open for the call.
    unsafe { vidioc_s_ctrl(std::os::fd::AsRawFd::as_raw_fd(&file), &mut control) }
        .unwrap_or_else(|e| panic!("VIDIOC_S_CTRL {id:#x} on {device}: {e}"));
    let pressed = Instant::now();
    // The element still has the node open, so closing ours does not bring it back yet.
    drop(file);
    pressed
}

/// Switches vivid's node to its S-Video input, PAL (720x576, crop bounds that size), and back
/// to the webcam input at 640x360, with its default crop, when dropped, pass or fail.
pub struct SVideoInput(String);

impl SVideoInput {
    pub fn select(device: &str) -> SVideoInput {
        v4l2_ctl_ok(&["-d", device, "-i", "2"]);
        v4l2_ctl_ok(&["-d", device, "-s", "pal"]);
        SVideoInput(device.to_string())
    }

    /// Puts the node back as when dropped, without switching it now: for a test whose element
    /// selects the input itself.
    pub fn restore_later(device: &str) -> SVideoInput {
        SVideoInput(device.to_string())
    }
}

impl Drop for SVideoInput {
    fn drop(&mut self) {
        if let Ok(device) = Device::open(Path::new(&self.0))
            && let Ok(Some(default)) = device.crop_default()
        {
            let _ = device.set_crop(default);
        }
        // Not `v4l2_ctl`, which panics on a hang: this may run while a failed test unwinds.
        let _ = Command::new("v4l2-ctl")
            .args(["-d", &self.0, "-i", "0"])
            .stdout(Stdio::null())
            .status();
        if let Ok(device) = Device::open(Path::new(&self.0)) {
            let _ = device.s_fmt(&FormatRequest::new(Fourcc::new(b"YUYV"), 640, 360));
        }
    }
}

/// vivid's HDMI input (3), playing a source of one of its DV-timings presets (`dv_timings`
/// menu: 0 640x480p59, 4 720x576p50, 9 1280x720p60, ...) with the signal as `mode` says
/// (`dv_timings_signal_mode`: 1 no signal, 2 no lock, 3 out of range, 4 the selected preset).
/// Dropping it puts back the webcam input and the signal as it was.
pub struct HdmiInput(String);

pub const SIGNAL_NO_SIGNAL: u32 = 1;
pub const SIGNAL_NO_LOCK: u32 = 2;
pub const SIGNAL_OUT_OF_RANGE: u32 = 3;
pub const SIGNAL_SELECTED: u32 = 4;

impl HdmiInput {
    /// Selects the HDMI input with the receiver set to `current` (a preset index) and the
    /// source sending `preset`.
    pub fn select(device: &str, current: u32, preset: u32) -> HdmiInput {
        hdmi_select(device, current, preset);
        HdmiInput(device.to_string())
    }

    /// The source now sends `preset`, or no signal as `mode` says.
    pub fn send(&self, mode: u32, preset: u32) {
        hdmi_send(&self.0, mode, preset).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Selects vivid's HDMI input with the receiver set to preset `current` and the source sending
/// `preset` (`HdmiInput::select` without the guard that puts the webcam input back).
pub fn hdmi_select(device: &str, current: u32, preset: u32) {
    v4l2_ctl_ok(&["-d", device, "-i", "3"]);
    v4l2_ctl_ok(&[
        "-d",
        device,
        &format!("--set-dv-bt-timings=index={current}"),
    ]);
    hdmi_send(device, SIGNAL_SELECTED, preset).unwrap_or_else(|e| panic!("{e}"));
}

/// The HDMI source of `device` now sends `preset`, or no signal as `mode` says (1 no signal,
/// 2 no lock, 3 out of range, 4 the preset); why not, if `v4l2-ctl` failed.
pub fn hdmi_send(device: &str, mode: u32, preset: u32) -> Result<(), String> {
    let setting = format!("dv_timings_signal_mode={mode},dv_timings={preset}");
    let out = v4l2_ctl(&["-d", device, "-c", &setting]);
    out.status.success().then_some(()).ok_or_else(|| {
        format!(
            "v4l2-ctl -d {device} -c {setting}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

impl Drop for HdmiInput {
    fn drop(&mut self) {
        // Not `v4l2_ctl`, which panics on a hang: this may run while a failed test unwinds.
        for args in [
            vec!["-c", "dv_timings_signal_mode=0,dv_timings=0"],
            vec!["--set-dv-bt-timings=index=9"],
            vec!["-i", "0"],
        ] {
            let _ = Command::new("v4l2-ctl")
                .args(["-d", &self.0])
                .args(args)
                .stdout(Stdio::null())
                .status();
        }
    }
}

pub fn set_control(device: &str, name: &str, value: i64) {
    v4l2_ctl_ok(&["-d", device, "-c", &format!("{name}={value}")]);
}

/// Sets a vivid control for the rest of the test and puts it back to `default` when dropped.
pub struct Control {
    device: String,
    name: &'static str,
    default: i64,
}

impl Control {
    pub fn set(device: &str, name: &'static str, value: i64, default: i64) -> Control {
        let guard = Control {
            device: device.to_string(),
            name,
            default,
        };
        set_control(device, name, value);
        guard
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let setting = format!("{}={}", self.name, self.default);
        let out = v4l2_ctl(&["-d", &self.device, "-c", &setting]);
        if !out.status.success() {
            eprintln!(
                "could not reset {setting} on {}: {}",
                self.device,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
