//! One plug-in of a camera: the socket `vhci-hcd` was handed, a thread answering what the host
//! sends (control requests at once, bulk IN URBs kept pending), and a thread that paces frames
//! by the clock and answers pending bulk URBs with their payloads. Replies go out under one lock
//! with the list of pending URBs, so an UNLINK never races a reply to the same URB.

use crate::descriptors::{Kind, MAX_PAYLOAD};
use crate::picture;
use crate::usbip::{self, Command, Submit};
use crate::uvc::Camera;
use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The payload header: 2 bytes, end of header always set.
const EOH: u8 = 0x80;
const ERR: u8 = 0x40;
const EOF: u8 = 0x02;

struct Wire {
    socket: UnixStream,
    /// Bulk IN URBs waiting for payload, oldest first.
    pending: VecDeque<Submit>,
}

struct Shared {
    wire: Mutex<Wire>,
    more: Condvar,
    closed: AtomicBool,
}

pub struct Link {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Link {
    /// Serves `camera` over `socket` (the end vhci does not have) until the host lets go.
    pub fn start(camera: Arc<Camera>, socket: UnixStream) -> std::io::Result<Link> {
        let reader = socket.try_clone()?;
        let shared = Arc::new(Shared {
            wire: Mutex::new(Wire {
                socket,
                pending: VecDeque::new(),
            }),
            more: Condvar::new(),
            closed: AtomicBool::new(false),
        });
        let answer = {
            let (shared, camera) = (Arc::clone(&shared), Arc::clone(&camera));
            std::thread::spawn(move || serve(&shared, &camera, reader))
        };
        let stream = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || stream(&shared, &camera))
        };
        Ok(Link {
            shared,
            threads: vec![answer, stream],
        })
    }

    /// Waits for both threads after the host let go (a detach closes the socket).
    pub fn close(mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        if let Ok(wire) = self.shared.wire.lock() {
            let _ = wire.socket.shutdown(std::net::Shutdown::Both);
        }
        self.shared.more.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Wire> {
    shared.wire.lock().unwrap_or_else(|e| e.into_inner())
}

fn serve(shared: &Shared, camera: &Camera, mut reader: UnixStream) {
    loop {
        let command = match usbip::read_command(&mut reader) {
            Ok(Some(command)) => command,
            Ok(None) => break,
            Err(e) => {
                if !shared.closed.load(Ordering::SeqCst) {
                    eprintln!("uvc-camera {}: {e}", camera.id.serial);
                }
                break;
            }
        };
        let mut wire = lock(shared);
        let sent = match command {
            Command::Submit(submit) if submit.ep == 0 => {
                let (status, data) = match camera.control(&submit.setup, &submit.data) {
                    Ok(data) => (0, data),
                    Err(()) => (usbip::EPIPE, Vec::new()),
                };
                usbip::write_reply(&mut wire.socket, &submit, status, &data)
            }
            Command::Submit(submit) if submit.direction == usbip::DIR_IN => {
                wire.pending.push_back(submit);
                shared.more.notify_all();
                Ok(())
            }
            // No OUT endpoint but the control one: refuse.
            Command::Submit(submit) => {
                usbip::write_reply(&mut wire.socket, &submit, usbip::EPIPE, &[])
            }
            Command::Unlink { seqnum, victim } => {
                let before = wire.pending.len();
                wire.pending.retain(|s| s.seqnum != victim);
                let status = if wire.pending.len() < before {
                    usbip::ECONNRESET
                } else {
                    0
                };
                usbip::write_unlinked(&mut wire.socket, seqnum, status)
            }
        };
        drop(wire);
        if sent.is_err() {
            break;
        }
    }
    shared.closed.store(true, Ordering::SeqCst);
    shared.more.notify_all();
}

/// Paces frames from the last commit at the committed interval; a frame whose time has passed
/// by more than an interval is skipped rather than sent in a burst (uvcvideo would drop one).
fn stream(shared: &Shared, camera: &Camera) {
    let mut commits_seen = 0;
    let mut next = Instant::now();
    let mut fid = 0u8;
    while !shared.closed.load(Ordering::SeqCst) {
        let (streaming, commits) = {
            let state = camera.lock();
            (state.streaming.clone(), state.commits)
        };
        let Some(streaming) = streaming else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let period = Duration::from_nanos(u64::from(streaming.interval) * 100);
        if commits != commits_seen {
            commits_seen = commits;
            next = Instant::now() + period;
        }
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(20)));
            continue;
        }
        while next + period < now {
            next += period;
        }
        next += period;

        let (number, look, error, short, stalled) = {
            let mut state = camera.lock();
            let stalled = state.faults.stall_until.is_some_and(|t| t > now);
            let error = !stalled && state.faults.errors > 0;
            let short = !stalled && !error && state.faults.shorts > 0;
            if error {
                state.faults.errors -= 1;
            }
            if short {
                state.faults.shorts -= 1;
            }
            (state.frames_sent, state.look, error, short, stalled)
        };
        if stalled {
            continue;
        }
        let mut frame = match streaming.format.kind {
            Kind::Yuy2 => picture::yuy2(streaming.size, number, look),
            Kind::Mjpeg => picture::jpeg(streaming.size, number, look),
        };
        if short {
            frame.truncate(frame.len() / 2);
        }
        let flags = EOH | fid | if error { ERR } else { 0 };
        // A new frame ID whether or not the frame got through: uvcvideo starts a frame on it.
        fid ^= 1;
        if send_frame(shared, &frame, flags) {
            let mut state = camera.lock();
            if error || short {
                state.faulty.push(number);
            }
            state.frames_sent += 1;
        }
    }
}

/// Sends one frame as payloads of at most `MAX_PAYLOAD` bytes, each answering the oldest
/// pending bulk URB (waiting for one as needed). False if the stream stopped meanwhile.
fn send_frame(shared: &Shared, frame: &[u8], flags: u8) -> bool {
    let chunk = MAX_PAYLOAD as usize - 2;
    let chunks = frame.len().div_ceil(chunk).max(1);
    for (i, bytes) in frame
        .chunks(chunk)
        .chain((frame.is_empty()).then_some(&[][..]))
        .enumerate()
    {
        let mut payload = Vec::with_capacity(bytes.len() + 2);
        let last = i + 1 == chunks;
        payload.extend_from_slice(&[2, flags | if last { EOF } else { 0 }]);
        payload.extend_from_slice(bytes);
        let mut wire = lock(shared);
        let deadline = Instant::now() + Duration::from_millis(500);
        let submit = loop {
            if shared.closed.load(Ordering::SeqCst) {
                return false;
            }
            if let Some(submit) = wire.pending.pop_front() {
                break submit;
            }
            if Instant::now() > deadline {
                // The host stopped asking (stream off): drop the rest of the frame.
                return false;
            }
            wire = shared
                .more
                .wait_timeout(wire, Duration::from_millis(50))
                .map(|(w, _)| w)
                .unwrap_or_else(|e| e.into_inner().0);
        };
        if usbip::write_reply(&mut wire.socket, &submit, 0, &payload).is_err() {
            return false;
        }
        let _ = wire.socket.flush();
    }
    true
}
