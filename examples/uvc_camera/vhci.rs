//! The stock `vhci-hcd` module's sysfs face: load it, plug a socket into a free high-speed port
//! ("port fd devid speed" into `attach`), pull it out (`detach`), and find the capture node
//! uvcvideo made for a camera, by its USB serial.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const VHCI: &str = "/sys/devices/platform/vhci_hcd.0";
/// USB_SPEED_HIGH.
const HIGH_SPEED: u32 = 3;

/// The port used last: the next plug takes the next free one, so a camera plugged back comes
/// back on another port, as a camera moved to another socket does.
static LAST_PORT: AtomicU32 = AtomicU32::new(u32::MAX);

pub fn load() -> Result<(), String> {
    if !Path::new(VHCI).exists() {
        let status = std::process::Command::new("modprobe")
            .arg("vhci-hcd")
            .status()
            .map_err(|e| format!("modprobe: {e}"))?;
        if !status.success() || !Path::new(VHCI).exists() {
            return Err(format!(
                "modprobe vhci-hcd failed ({status}): is this the test VM?"
            ));
        }
    }
    Ok(())
}

/// Free high-speed ports, from the `status` file ("hs  0000 004 ...": state 4 is free).
fn free_ports() -> Result<Vec<u32>, String> {
    let status = std::fs::read_to_string(Path::new(VHCI).join("status"))
        .map_err(|e| format!("{VHCI}/status: {e}"))?;
    Ok(status
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.first() == Some(&"hs") && f.get(2).and_then(|s| s.parse::<u32>().ok()) == Some(4))
                .then(|| f.get(1)?.parse().ok())
                .flatten()
        })
        .collect())
}

/// Hands `socket` to vhci as a high-speed device on a free port; returns the port.
pub fn attach(socket: &UnixStream) -> Result<u32, String> {
    let free = free_ports()?;
    let last = LAST_PORT.load(Ordering::SeqCst);
    let port = free
        .iter()
        .copied()
        .find(|&p| last != u32::MAX && p > last)
        .or_else(|| free.first().copied())
        .ok_or("no free high-speed vhci port")?;
    let devid = (1 << 16) | (port + 2);
    let line = format!("{port} {} {devid} {HIGH_SPEED}", socket.as_raw_fd());
    std::fs::write(Path::new(VHCI).join("attach"), &line)
        .map_err(|e| format!("{VHCI}/attach '{line}': {e}"))?;
    LAST_PORT.store(port, Ordering::SeqCst);
    Ok(port)
}

/// Unplugs the device on `port`.
pub fn detach(port: u32) -> Result<(), String> {
    std::fs::write(Path::new(VHCI).join("detach"), port.to_string())
        .map_err(|e| format!("{VHCI}/detach {port}: {e}"))
}

/// The USB device folder in sysfs a video node belongs to (the one with `serial`).
fn usb_device_of(node: &Path) -> Option<PathBuf> {
    let mut dir = std::fs::canonicalize(node.join("device")).ok()?;
    for _ in 0..4 {
        if dir.join("serial").exists() && dir.join("idVendor").exists() {
            return Some(dir);
        }
        dir = dir.parent()?.to_path_buf();
    }
    None
}

/// Waits for uvcvideo's capture node (index 0) of the camera with `serial`, keeps its USB
/// device awake (no autosuspend between captures), and makes its /dev node if udev did not.
pub fn capture_node(serial: &str, limit: Duration) -> Result<String, String> {
    let deadline = Instant::now() + limit;
    loop {
        for entry in std::fs::read_dir("/sys/class/video4linux")
            .into_iter()
            .flatten()
            .flatten()
        {
            let sys = entry.path();
            let index = std::fs::read_to_string(sys.join("index")).unwrap_or_default();
            if index.trim() != "0" {
                continue;
            }
            let Some(usb) = usb_device_of(&sys) else {
                continue;
            };
            let found = std::fs::read_to_string(usb.join("serial")).unwrap_or_default();
            if found.trim() != serial {
                continue;
            }
            let _ = std::fs::write(usb.join("power/control"), "on");
            let node = Path::new("/dev").join(entry.file_name());
            if !node.exists()
                && let Ok(numbers) = std::fs::read_to_string(sys.join("dev"))
                && let Some((major, minor)) = numbers.trim().split_once(':')
            {
                let _ = std::process::Command::new("mknod")
                    .args(["-m", "660"])
                    .arg(&node)
                    .args(["c", major, minor])
                    .status();
            }
            if node.exists() {
                return Ok(node.display().to_string());
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no capture node for camera {serial} within {limit:?} (dmesg says why)"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
