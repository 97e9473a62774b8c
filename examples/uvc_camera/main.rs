//! uvc-camera: virtual USB video cameras that the kernel's own uvcvideo driver binds to, for the
//! device tests (and for anyone) inside the test VM. Each camera is a program-side USB device
//! speaking USB/IP over a socket handed to the stock `vhci-hcd` module; uvcvideo streams from it
//! over a bulk endpoint. See docs/testing.md ("A virtual USB camera") for the commands.
//!
//!   uvc_camera serve [--with-parent]       run the daemon that holds the cameras (root, in the VM);
//!                                          --with-parent: unplug them all and end when the
//!                                          process that started it ends (the tests use it)
//!   uvc_camera add SERIAL [--formats yuy2,mjpeg] [--vid 0xVVVV] [--pid 0xPPPP] [--name NAME]
//!                                          plug in a new camera; prints its /dev/video node
//!   uvc_camera unplug SERIAL | plug SERIAL (prints the node) | remove SERIAL
//!   uvc_camera stall SERIAL MS | error SERIAL [N] | short SERIAL [N]
//!   uvc_camera state SERIAL               frames sent, brightness, contrast, SET_CURs seen
//!   uvc_camera stop                        unplug every camera and end the daemon
//!   uvc_camera picture yuy2|mjpeg WxH N FILE  write frame N as the camera sends it (no daemon)
//!
//! The daemon listens on the abstract Unix socket named $UVC_CAMERA_SOCKET (default
//! "uvc-camera"): no file, so it works on any file system (the VM's shared folders cannot hold
//! a socket) and goes away with the daemon.

mod descriptors;
mod jpeg;
mod link;
mod picture;
mod usbip;
mod uvc;
mod vhci;

use descriptors::{Format, Identity, Kind, Size};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn socket_name() -> String {
    std::env::var("UVC_CAMERA_SOCKET").unwrap_or_else(|_| "uvc-camera".to_string())
}

fn socket_addr() -> Result<SocketAddr, String> {
    let name = socket_name();
    SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| format!("socket name {name}: {e}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(verb) = args.first() else {
        eprintln!(
            "usage: uvc_camera serve | add SERIAL [...] | unplug | plug | stall | error | short | state | stop"
        );
        std::process::exit(2);
    };
    if verb == "serve" {
        if let Err(e) = serve(args.iter().any(|a| a == "--with-parent")) {
            eprintln!("uvc-camera: {e}");
            std::process::exit(1);
        }
        return;
    }
    if verb == "picture" {
        if let Err(e) = write_picture(&args[1..]) {
            eprintln!("uvc-camera: {e}");
            std::process::exit(2);
        }
        return;
    }
    match request(&args.join(" ")) {
        Ok(reply) => println!("{reply}"),
        Err(e) => {
            eprintln!("uvc-camera: {e}");
            std::process::exit(1);
        }
    }
}

/// Sends one command line to the daemon and returns its answer, or its error.
fn request(line: &str) -> Result<String, String> {
    let mut stream = UnixStream::connect_addr(&socket_addr()?).map_err(|e| {
        format!(
            "no daemon on socket '{}' ({e}): start one with 'uvc_camera serve'",
            socket_name()
        )
    })?;
    writeln!(stream, "{line}").map_err(|e| e.to_string())?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| e.to_string())?;
    let reply = reply.trim_end();
    match reply.strip_prefix("ok") {
        Some(rest) => Ok(rest.trim().to_string()),
        None => Err(reply.strip_prefix("error ").unwrap_or(reply).to_string()),
    }
}

/// One camera the daemon holds: plugged in (a link and the vhci port) or not.
struct Held {
    camera: Arc<uvc::Camera>,
    plugged: Option<(link::Link, u32)>,
}

type Cameras = Arc<Mutex<HashMap<String, Held>>>;

fn serve(with_parent: bool) -> Result<(), String> {
    vhci::load()?;
    let listener = UnixListener::bind_addr(&socket_addr()?)
        .map_err(|e| format!("socket '{}': {e} (a daemon runs already?)", socket_name()))?;
    let cameras: Cameras = Arc::new(Mutex::new(HashMap::new()));
    if with_parent {
        let (cameras, parent) = (Arc::clone(&cameras), std::os::unix::process::parent_id());
        std::thread::spawn(move || {
            while std::os::unix::process::parent_id() == parent {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = handle(&cameras, "stop");
            std::process::exit(0);
        });
    }
    eprintln!("uvc-camera: listening on socket '{}'", socket_name());
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let mut line = String::new();
        if BufReader::new(&client).read_line(&mut line).is_err() {
            continue;
        }
        let stop = line.trim() == "stop";
        let reply = match handle(&cameras, line.trim()) {
            Ok(text) => format!("ok {text}"),
            Err(e) => format!("error {e}"),
        };
        let _ = writeln!(&client, "{reply}");
        if stop {
            break;
        }
    }
    Ok(())
}

fn lock(cameras: &Cameras) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
    cameras.lock().unwrap_or_else(|e| e.into_inner())
}

fn handle(cameras: &Cameras, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (verb, serial) = (words.first().copied().unwrap_or(""), words.get(1).copied());
    let number = |at: usize, default: u64| -> Result<u64, String> {
        words.get(at).map_or(Ok(default), |w| {
            w.parse().map_err(|_| format!("not a number: {w}"))
        })
    };
    if verb == "stop" {
        let all: Vec<Held> = lock(cameras).drain().map(|(_, held)| held).collect();
        for held in all {
            unplug(held);
        }
        return Ok(String::new());
    }
    let serial = serial.ok_or_else(|| format!("{verb}: which camera (its serial)?"))?;
    match verb {
        "add" => {
            if lock(cameras).contains_key(serial) {
                return Err(format!("a camera with serial {serial} exists"));
            }
            let camera = Arc::new(uvc::Camera::new(
                identity(serial, &words[2..])?,
                formats(&words[2..])?,
            ));
            lock(cameras).insert(
                serial.to_string(),
                Held {
                    camera,
                    plugged: None,
                },
            );
            plug(cameras, serial)
        }
        "plug" => plug(cameras, serial),
        "unplug" | "remove" => {
            let mut all = lock(cameras);
            let held = all
                .get_mut(serial)
                .ok_or_else(|| format!("no camera {serial}"))?;
            let plugged = held.plugged.take();
            let removed = if verb == "remove" {
                all.remove(serial)
            } else {
                None
            };
            drop(all);
            if let Some((link, port)) = plugged {
                vhci::detach(port)?;
                link.close();
            }
            drop(removed);
            Ok(String::new())
        }
        "stall" | "error" | "short" => {
            let all = lock(cameras);
            let held = all
                .get(serial)
                .ok_or_else(|| format!("no camera {serial}"))?;
            let mut state = held.camera.lock();
            match verb {
                "stall" => {
                    state.faults.stall_until =
                        Some(Instant::now() + Duration::from_millis(number(2, 1000)?))
                }
                "error" => state.faults.errors += number(2, 1)? as u32,
                _ => state.faults.shorts += number(2, 1)? as u32,
            }
            Ok(String::new())
        }
        "state" => {
            let all = lock(cameras);
            let held = all
                .get(serial)
                .ok_or_else(|| format!("no camera {serial}"))?;
            let state = held.camera.lock();
            Ok(format!(
                "frames-sent={} brightness={} contrast={} streaming={} port={} set-cur={} faulty={}",
                state.frames_sent,
                state.look.brightness,
                state.look.contrast,
                state.streaming.is_some(),
                held.plugged
                    .as_ref()
                    .map_or(-1, |(_, port)| i64::from(*port)),
                state.set_cur.join(","),
                state
                    .faulty
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ))
        }
        _ => Err(format!("unknown command {verb}")),
    }
}

fn unplug(held: Held) {
    if let Some((link, port)) = held.plugged {
        let _ = vhci::detach(port);
        link.close();
    }
}

/// Plugs camera `serial` into a free vhci port (another one than last time when there is one)
/// and waits for uvcvideo's capture node.
fn plug(cameras: &Cameras, serial: &str) -> Result<String, String> {
    let camera = {
        let all = lock(cameras);
        let held = all
            .get(serial)
            .ok_or_else(|| format!("no camera {serial}"))?;
        if held.plugged.is_some() {
            return Err(format!("camera {serial} is plugged in already"));
        }
        Arc::clone(&held.camera)
    };
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let port = vhci::attach(&theirs)?;
    drop(theirs);
    let link = link::Link::start(Arc::clone(&camera), ours).map_err(|e| e.to_string())?;
    if let Some(held) = lock(cameras).get_mut(serial) {
        held.plugged = Some((link, port));
    }
    vhci::capture_node(serial, Duration::from_secs(30))
}

fn identity(serial: &str, words: &[&str]) -> Result<Identity, String> {
    let option = |name: &str| {
        words
            .iter()
            .position(|w| *w == name)
            .and_then(|i| words.get(i + 1).copied())
    };
    let hex = |name: &str, default: u16| -> Result<u16, String> {
        option(name).map_or(Ok(default), |v| {
            u16::from_str_radix(v.trim_start_matches("0x"), 16)
                .map_err(|_| format!("{name} {v}: not hex"))
        })
    };
    Ok(Identity {
        // The Linux Foundation's vendor id, and a product id of no real camera.
        vendor: hex("--vid", 0x1d6b)?,
        product: hex("--pid", 0x0102)?,
        manufacturer: "rustv4l2src".to_string(),
        name: option("--name").unwrap_or("Virtual UVC Camera").to_string(),
        serial: serial.to_string(),
    })
}

/// The formats of `--formats yuy2,mjpeg` (both by default): YUY2 at 160x120 and 320x180, MJPEG at
/// 320x180 and 640x360, each at 30 and 15 fps. Small, because every byte crosses vhci's kernel
/// threads and a socket in an emulated machine.
fn formats(words: &[&str]) -> Result<Vec<Format>, String> {
    let list = words
        .iter()
        .position(|w| *w == "--formats")
        .and_then(|i| words.get(i + 1).copied())
        .unwrap_or("yuy2,mjpeg");
    list.split(',')
        .map(|name| match name {
            "yuy2" => Ok(Format {
                kind: Kind::Yuy2,
                sizes: vec![
                    Size {
                        width: 160,
                        height: 120,
                    },
                    Size {
                        width: 320,
                        height: 180,
                    },
                ],
            }),
            "mjpeg" => Ok(Format {
                kind: Kind::Mjpeg,
                sizes: vec![
                    Size {
                        width: 320,
                        height: 180,
                    },
                    Size {
                        width: 640,
                        height: 360,
                    },
                ],
            }),
            other => Err(format!("unknown format {other} (yuy2, mjpeg)")),
        })
        .collect()
}

/// `picture yuy2|mjpeg WxH N FILE`: frame N of that format and size, as the camera sends it.
fn write_picture(args: &[String]) -> Result<(), String> {
    let [kind, size, number, file] = args else {
        return Err("usage: uvc_camera picture yuy2|mjpeg WxH N FILE".to_string());
    };
    let (w, h) = size.split_once('x').ok_or("size: WxH")?;
    let size = Size {
        width: w.parse().map_err(|_| "width")?,
        height: h.parse().map_err(|_| "height")?,
    };
    let number: u64 = number.parse().map_err(|_| "N: a number")?;
    let look = picture::Look {
        brightness: 0,
        contrast: 100,
    };
    let bytes = match kind.as_str() {
        "yuy2" => picture::yuy2(size, number, look),
        "mjpeg" => picture::jpeg(size, number, look),
        other => return Err(format!("unknown format {other}")),
    };
    std::fs::write(file, bytes).map_err(|e| format!("{file}: {e}"))
}
