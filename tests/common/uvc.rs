//! The virtual UVC camera (`examples/uvc_camera`): one daemon per test binary, cameras added by
//! serial, and the frame number its pictures carry read back from captured luma.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The camera program built with this test executable (`cargo build --examples`, which
/// `scripts/test` runs): target/<profile>/examples/uvc_camera.
fn program() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let program = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("examples/uvc_camera");
    assert!(
        program.exists(),
        "{} is missing: build it with cargo build --examples (scripts/test does)",
        program.display()
    );
    program
}

/// The daemon's abstract socket name: this binary's own.
fn socket() -> String {
    format!("uvc-camera-test-{}", std::process::id())
}

/// `uvc_camera ARGS` against this binary's daemon: its answer, or a failed test.
pub fn command(args: &[&str]) -> String {
    daemon();
    let out = Command::new(program())
        .args(args)
        .env("UVC_CAMERA_SOCKET", socket())
        .output()
        .expect("uvc_camera runs");
    assert!(
        out.status.success(),
        "uvc_camera {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts this binary's daemon once; it unplugs its cameras and ends when the binary ends.
fn daemon() {
    static DAEMON: Mutex<Option<Child>> = Mutex::new(None);
    let mut daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    if daemon.is_some() {
        return;
    }
    let child = Command::new(program())
        .args(["serve", "--with-parent"])
        .env("UVC_CAMERA_SOCKET", socket())
        .stdin(Stdio::null())
        .spawn()
        .expect("uvc_camera serve starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = SocketAddr::from_abstract_name(socket().as_bytes()).expect("a socket name");
    while UnixStream::connect_addr(&addr).is_err() {
        assert!(Instant::now() < deadline, "uvc_camera serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    *daemon = Some(child);
}

/// A camera plugged in for one test, removed (unplugged) when dropped.
pub struct Camera {
    pub serial: String,
    pub node: String,
}

impl Camera {
    /// A camera with `serial` and the extra `add` options (`--formats yuy2`, `--pid 0x0103`).
    pub fn add(serial: &str, options: &[&str]) -> Camera {
        let mut args = vec!["add", serial];
        args.extend_from_slice(options);
        let node = command(&args);
        assert!(node.starts_with("/dev/video"), "uvc_camera add said {node}");
        Camera {
            serial: serial.to_string(),
            node,
        }
    }

    /// The daemon's `state` line as key=value pairs.
    pub fn state(&self) -> std::collections::HashMap<String, String> {
        command(&["state", &self.serial])
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub fn unplug(&self) {
        command(&["unplug", &self.serial]);
    }

    /// Plugs it back (into another port); the node it got.
    pub fn plug(&mut self) -> String {
        self.node = command(&["plug", &self.serial]);
        self.node.clone()
    }

    pub fn fault(&self, verb: &str, arg: &str) {
        command(&[verb, &self.serial, arg]);
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = Command::new(program())
            .args(["remove", &self.serial])
            .env("UVC_CAMERA_SOCKET", socket())
            .output();
    }
}

/// The frame number a camera picture carries: 16 blocks of 8x8 along the top rows, bit 15
/// first, white for 1 (see `examples/uvc_camera/picture.rs`), read from luma rows `stride`
/// bytes apart, every `step`th byte a luma sample (2 for YUY2, 1 for a Y plane).
pub fn frame_number(luma: &[u8], stride: usize, step: usize) -> u16 {
    let mut n = 0u16;
    for bit in 0..16 {
        let at = 4 * stride + (bit * 8 + 4) * step;
        n = n << 1 | u16::from(luma.get(at).is_some_and(|&v| v > 128));
    }
    n
}
