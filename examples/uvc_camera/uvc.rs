//! The camera's side of the control endpoint: USB's standard requests and UVC's class requests
//! (probe/commit on the streaming interface, brightness and contrast on the processing unit), and
//! the state they change. Every request uvcvideo sends gets an answer; one the camera does not
//! know stalls (`-EPIPE`), as a real camera's would.

use crate::descriptors::{self, Format, INTERVALS, Identity, MAX_PAYLOAD, PROCESSING_UNIT, Size};
use crate::picture::Look;
use std::sync::Mutex;
use std::time::Instant;

/// UVC 1.1's probe and commit controls are 34 bytes.
pub const PROBE_LEN: usize = 34;

const SET_CUR: u8 = 0x01;
const GET_CUR: u8 = 0x81;
const GET_MIN: u8 = 0x82;
const GET_MAX: u8 = 0x83;
const GET_RES: u8 = 0x84;
const GET_LEN: u8 = 0x85;
const GET_INFO: u8 = 0x86;
const GET_DEF: u8 = 0x87;

const PU_BRIGHTNESS: u8 = 0x02;
const PU_CONTRAST: u8 = 0x03;
const VS_PROBE: u8 = 0x01;
const VS_COMMIT: u8 = 0x02;

/// What a control request gets: bytes (possibly none), or a stall.
pub type Answer = Result<Vec<u8>, ()>;

/// The format, size and interval the host committed, with the frame's byte count.
#[derive(Debug, Clone)]
pub struct Streaming {
    pub format: Format,
    pub size: Size,
    /// 100 ns units.
    pub interval: u32,
}

/// Faults the camera was told to make.
#[derive(Debug, Default)]
pub struct Faults {
    /// No payload before then.
    pub stall_until: Option<Instant>,
    /// Frames still to send with the header's error bit.
    pub errors: u32,
    /// Frames still to send cut short.
    pub shorts: u32,
}

#[derive(Debug)]
pub struct State {
    pub probe: [u8; PROBE_LEN],
    pub streaming: Option<Streaming>,
    /// Bumped on every commit: the pacing starts again from there.
    pub commits: u64,
    pub look: Look,
    /// Every SET_CUR of a processing-unit control, as "brightness=N" or "contrast=N".
    pub set_cur: Vec<String>,
    pub faults: Faults,
    pub frames_sent: u64,
    /// Numbers of the frames sent with the error bit or cut short.
    pub faulty: Vec<u64>,
}

pub struct Camera {
    pub id: Identity,
    pub formats: Vec<Format>,
    pub state: Mutex<State>,
}

fn le16(v: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([v[at], v[at + 1]])
}

impl Camera {
    pub fn new(id: Identity, formats: Vec<Format>) -> Camera {
        let camera = Camera {
            id,
            formats,
            state: Mutex::new(State {
                probe: [0; PROBE_LEN],
                streaming: None,
                commits: 0,
                look: Look {
                    brightness: 0,
                    contrast: 100,
                },
                set_cur: Vec::new(),
                faults: Faults::default(),
                frames_sent: 0,
                faulty: Vec::new(),
            }),
        };
        let default = camera.negotiate(&[0; PROBE_LEN]).0;
        camera.lock().probe = default;
        camera
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The probe the camera answers for what the host asked: a format and frame it has (the
    /// first when the host named none), the nearest interval it offers, its frame and payload
    /// sizes.
    fn negotiate(&self, asked: &[u8]) -> ([u8; PROBE_LEN], Streaming) {
        let mut p = [0u8; PROBE_LEN];
        let n = asked.len().min(PROBE_LEN);
        p[..n].copy_from_slice(&asked[..n]);
        let f = usize::from(p[2]).clamp(1, self.formats.len());
        let format = self.formats[f - 1].clone();
        let s = usize::from(p[3]).clamp(1, format.sizes.len());
        let size = format.sizes[s - 1];
        let want = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        let interval = if want == 0 {
            INTERVALS[0]
        } else {
            *INTERVALS
                .iter()
                .min_by_key(|&&i| i.abs_diff(want))
                .unwrap_or(&INTERVALS[0])
        };
        p[2] = f as u8;
        p[3] = s as u8;
        p[4..8].copy_from_slice(&interval.to_le_bytes());
        p[18..22].copy_from_slice(&format.frame_bytes(size).to_le_bytes());
        p[22..26].copy_from_slice(&MAX_PAYLOAD.to_le_bytes());
        p[26..30].copy_from_slice(&48_000_000u32.to_le_bytes());
        // Frame ID and end-of-frame bits are used; payload format version 1.
        p[30] = 0x03;
        p[31..34].copy_from_slice(&[1, 1, 1]);
        (
            p,
            Streaming {
                format,
                size,
                interval,
            },
        )
    }

    /// A request on endpoint 0: `setup` and, for a host-to-device one, its `data`.
    pub fn control(&self, setup: &[u8; 8], data: &[u8]) -> Answer {
        let (kind, request) = (setup[0], setup[1]);
        let (value, index) = (le16(setup, 2), le16(setup, 4));
        match (kind, request) {
            // GET_DESCRIPTOR
            (0x80, 0x06) => match (value >> 8) as u8 {
                1 => Ok(descriptors::device(&self.id)),
                2 => Ok(descriptors::configuration(&self.formats)),
                3 => descriptors::string(&self.id, value as u8).ok_or(()),
                // No device qualifier (high speed only), no BOS (USB 2.0).
                _ => Err(()),
            },
            // GET_STATUS of the device, an interface, an endpoint.
            (0x80..=0x82, 0x00) => Ok(vec![0, 0]),
            (0x80, 0x08) => Ok(vec![1]),
            (0x81, 0x0a) => Ok(vec![0]),
            // SET_CONFIGURATION, SET/CLEAR_FEATURE on the device.
            (0x00, 0x09) | (0x00, 0x01) | (0x00, 0x03) => Ok(Vec::new()),
            // SET_INTERFACE: alternate setting 0, the only one; on the streaming interface it
            // ends a stream.
            (0x01, 0x0b) => {
                if index as u8 == descriptors::STREAMING_INTERFACE {
                    self.lock().streaming = None;
                }
                Ok(Vec::new())
            }
            // CLEAR_FEATURE(ENDPOINT_HALT): uvcvideo's "stream off" on a bulk camera.
            (0x02, 0x01) => {
                if index as u8 == descriptors::BULK_IN {
                    self.lock().streaming = None;
                }
                Ok(Vec::new())
            }
            (0x21, _) | (0xa1, _) => self.class(request, value, index, data),
            _ => Err(()),
        }
    }

    /// A UVC class request to an interface or an entity of it.
    fn class(&self, request: u8, value: u16, index: u16, data: &[u8]) -> Answer {
        let selector = (value >> 8) as u8;
        let (entity, interface) = ((index >> 8) as u8, index as u8);
        if interface == descriptors::STREAMING_INTERFACE {
            return self.streaming_request(request, selector, data);
        }
        match (entity, selector) {
            (PROCESSING_UNIT, PU_BRIGHTNESS) => self.pu_control(request, data, true),
            (PROCESSING_UNIT, PU_CONTRAST) => self.pu_control(request, data, false),
            // The interface's request error code: "no error".
            (0, 0x02) if request == GET_CUR => Ok(vec![0]),
            (0, 0x02) if request == GET_INFO => Ok(vec![0x01]),
            _ => Err(()),
        }
    }

    fn streaming_request(&self, request: u8, selector: u8, data: &[u8]) -> Answer {
        if selector != VS_PROBE && selector != VS_COMMIT {
            return Err(());
        }
        match request {
            SET_CUR => {
                let (probe, streaming) = self.negotiate(data);
                let mut state = self.lock();
                state.probe = probe;
                if selector == VS_COMMIT {
                    state.streaming = Some(streaming);
                    state.commits += 1;
                }
                Ok(Vec::new())
            }
            GET_CUR | GET_MIN | GET_MAX => Ok(self.lock().probe.to_vec()),
            GET_DEF => Ok(self.negotiate(&[0; PROBE_LEN]).0.to_vec()),
            GET_LEN => Ok(vec![PROBE_LEN as u8, 0]),
            GET_INFO => Ok(vec![0x03]),
            _ => Err(()),
        }
    }

    /// Brightness (-64..=64, signed) or contrast (0..=200): every request uvcvideo makes.
    fn pu_control(&self, request: u8, data: &[u8], brightness: bool) -> Answer {
        let (min, max, def): (i16, i16, i16) = if brightness {
            (-64, 64, 0)
        } else {
            (0, 200, 100)
        };
        let two = |v: i16| Ok(v.to_le_bytes().to_vec());
        match request {
            GET_INFO => Ok(vec![0x03]),
            GET_LEN => Ok(vec![2, 0]),
            GET_MIN => two(min),
            GET_MAX => two(max),
            GET_RES => two(1),
            GET_DEF => two(def),
            GET_CUR => {
                let look = self.lock().look;
                two(if brightness {
                    look.brightness
                } else {
                    look.contrast as i16
                })
            }
            SET_CUR if data.len() >= 2 => {
                let v = i16::from_le_bytes([data[0], data[1]]).clamp(min, max);
                let mut state = self.lock();
                if brightness {
                    state.look.brightness = v;
                    state.set_cur.push(format!("brightness={v}"));
                } else {
                    state.look.contrast = v as u16;
                    state.set_cur.push(format!("contrast={v}"));
                }
                Ok(Vec::new())
            }
            _ => Err(()),
        }
    }
}
