//! What reaches a pipeline's sink (caps, buffers, GAP events) and its bus (element messages,
//! warnings, errors), recorded in order as it comes, and the checks made on it: timestamps that
//! only grow across signal loss, source changes and reconnects.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::TIMEOUT;

/// What the sink's pad saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Caps(gst::Caps),
    /// A buffer's PTS (`None`: it had none, which `assert_monotonic` fails).
    Buffer(Option<gst::ClockTime>),
    /// A GAP event's timestamp and duration.
    Gap(gst::ClockTime, Option<gst::ClockTime>),
}

type Log<T> = Arc<Mutex<Vec<(Instant, T)>>>;

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records what reaches the sink and the bus, from when it is made.
pub struct Watch {
    seen: Log<Seen>,
    messages: Log<gst::Message>,
}

impl Watch {
    /// Watches `sink`'s sink pad and `bus` (through its sync handler, which passes every
    /// message on, so that `bus.pop()` still finds them).
    pub fn new(sink: &gst::Element, bus: &gst::Bus) -> Watch {
        Watch::checking(sink, bus, |_, _| {})
    }

    /// As `new`, with `check` called on every buffer at the sink (with its pad, whose current
    /// caps are those it came under) before it is recorded: a panic there fails the test.
    pub fn checking(
        sink: &gst::Element,
        bus: &gst::Bus,
        check: impl Fn(&gst::Pad, &gst::BufferRef) + Send + Sync + 'static,
    ) -> Watch {
        let seen: Log<Seen> = Arc::default();
        let record = Arc::clone(&seen);
        sink.static_pad("sink")
            .expect("a sink has a sink pad")
            .add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                move |pad, info| {
                    let what = match &info.data {
                        Some(gst::PadProbeData::Buffer(b)) => {
                            check(pad, b);
                            Some(Seen::Buffer(b.pts()))
                        }
                        Some(gst::PadProbeData::Event(e)) => match e.view() {
                            gst::EventView::Caps(c) => Some(Seen::Caps(c.caps_owned())),
                            gst::EventView::Gap(g) => {
                                let (ts, d) = g.get();
                                Some(Seen::Gap(ts, d))
                            }
                            _ => None,
                        },
                        _ => None,
                    };
                    if let Some(what) = what {
                        locked(&record).push((Instant::now(), what));
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        let messages: Log<gst::Message> = Arc::default();
        let record = Arc::clone(&messages);
        bus.set_sync_handler(move |_, msg| {
            if matches!(
                msg.type_(),
                gst::MessageType::Element | gst::MessageType::Warning | gst::MessageType::Error
            ) {
                locked(&record).push((Instant::now(), msg.clone()));
            }
            gst::BusSyncReply::Pass
        });
        Watch { seen, messages }
    }

    pub fn seen(&self) -> Vec<(Instant, Seen)> {
        locked(&self.seen).clone()
    }

    /// The GAP events so far: timestamp and duration.
    pub fn gaps(&self) -> Vec<(gst::ClockTime, Option<gst::ClockTime>)> {
        locked(&self.seen)
            .iter()
            .filter_map(|(_, s)| match s {
                Seen::Gap(ts, d) => Some((*ts, *d)),
                _ => None,
            })
            .collect()
    }

    /// The caps events so far.
    pub fn caps(&self) -> Vec<gst::Caps> {
        locked(&self.seen)
            .iter()
            .filter_map(|(_, s)| match s {
                Seen::Caps(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// When the buffers that reached the sink after `after` came.
    pub fn buffers_after(&self, after: Instant) -> Vec<Instant> {
        locked(&self.seen)
            .iter()
            .filter(|(at, s)| *at > after && matches!(s, Seen::Buffer(_)))
            .map(|(at, _)| *at)
            .collect()
    }

    pub fn messages(&self) -> Vec<(Instant, gst::Message)> {
        locked(&self.messages).clone()
    }

    /// The element messages named `name` so far.
    pub fn element_messages(&self, name: &str) -> Vec<(Instant, gst::Structure)> {
        self.messages()
            .into_iter()
            .filter_map(|(at, msg)| match msg.view() {
                gst::MessageView::Element(e) => e
                    .structure()
                    .filter(|s| s.name() == name)
                    .map(|s| (at, s.to_owned())),
                _ => None,
            })
            .collect()
    }

    pub fn warnings(&self) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter_map(|(_, msg)| match msg.view() {
                gst::MessageView::Warning(w) => Some(w.error().to_string()),
                _ => None,
            })
            .collect()
    }

    pub fn errors(&self) -> Vec<gst::glib::Error> {
        self.messages()
            .into_iter()
            .filter_map(|(_, msg)| match msg.view() {
                gst::MessageView::Error(e) => Some(e.error()),
                _ => None,
            })
            .collect()
    }

    /// Waits for the `n`th element message named `name` (1 = the first); fails the test if it
    /// does not come within `limit`.
    pub fn wait_element(&self, name: &str, n: usize, limit: Duration) -> (Instant, gst::Structure) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = self.element_messages(name).into_iter().nth(n - 1) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {name} (#{n}) within {limit:?}; messages: {:?}",
                self.messages()
                    .iter()
                    .map(|(_, m)| format!("{:?}", m.view()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `count` buffers reached the sink after `after`, failing the test if they do
    /// not within `TIMEOUT`; returns when the `count`th came.
    pub fn wait_buffers(&self, after: Instant, count: usize) -> Instant {
        self.wait_buffers_within(after, count, TIMEOUT)
    }

    /// As `wait_buffers`, within `limit`.
    pub fn wait_buffers_within(&self, after: Instant, count: usize, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.buffers_after(after);
            if let Some(at) = got.get(count - 1) {
                return *at;
            }
            assert!(
                Instant::now() < deadline,
                "{} buffers of {count} within {limit:?}; warnings {:?}, errors {:?}",
                got.len(),
                self.warnings(),
                self.errors()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Buffers and GAP events came in time order: each one's timestamp (a buffer's PTS, a GAP's
    /// start) after the one's before, and at or after the end of the GAP before; and every
    /// buffer has a PTS.
    pub fn assert_monotonic(&self) {
        let seen = self.seen();
        // What came before item `i`, for failure messages (the whole log may be thousands).
        let context = |i: usize| &seen[i.saturating_sub(4)..=i];
        let mut last: Option<gst::ClockTime> = None;
        let mut gap_end: Option<gst::ClockTime> = None;
        for (i, (_, what)) in seen.iter().enumerate() {
            let ts = match what {
                Seen::Caps(_) => continue,
                Seen::Buffer(pts) => {
                    pts.unwrap_or_else(|| panic!("buffer {i} has no PTS: {:?}", context(i)))
                }
                Seen::Gap(ts, _) => *ts,
            };
            if let Some(last) = last {
                assert!(
                    ts > last,
                    "item {i} at {ts}, not after the one before at {last}: {:?}",
                    context(i)
                );
            }
            if let Some(end) = gap_end {
                assert!(
                    ts >= end,
                    "item {i} at {ts}, before the end {end} of the GAP before: {:?}",
                    context(i)
                );
            }
            if let Seen::Gap(ts, d) = what {
                gap_end = Some(*ts + d.unwrap_or_default());
            }
            last = Some(ts);
        }
    }
}
