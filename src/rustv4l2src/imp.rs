//! The GObject subclass behind `rustv4l2src`: GStreamer's calls (properties, state changes,
//! BaseSrc and PushSrc, GstColorBalance) mapped onto the capture session and the files beside
//! this one. The URI handler is `uri.rs`'s, the answers to GstTuner and GstVideoOrientation
//! `tuning.rs`'s and `orienting.rs`'s. It decides nothing about V4L2.
//!
//! Locks: `session` and `settings` are never held together but for `settings` taken after
//! `session`; `stats` and `poller` are taken alone and only for a moment, so `unlock()` never
//! waits behind a thread blocked in poll(), and reading `stats` never waits behind the device.
//! Nothing is posted on the bus while any of them is held (a synchronous bus handler may call
//! back in), and no control ioctl runs under `session`, which the capture loop needs.

use super::alive::reconnect::{self, Reconnect};
use super::alive::restart::Restart;
use super::alive::signal::{self, Signal};
use super::face::settings::{self, COLOR_CONTROLS, Followup, Settings};
use super::face::stats::Stats;
use super::interfaces::colorbalance::{self, Channels, ColorBalanceImpl};
use super::interfaces::orientation;
use super::knobs::controls::{self, Which};
use super::shared::{CAT, lock};
use super::stream::allocation::{self, AUTO_MIN_BUFFERS};
use super::stream::capture::{Capture, Captured, Knobs};
use super::stream::session::{Gone, Session};
use super::stream::slots::DownstreamPool;
use super::stream::timeline;
use crate::caps;
use crate::v4l2::{Device, Poller};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use std::sync::{Arc, LazyLock, Mutex};

pub struct RustV4l2Src {
    // Read by the files beside this one that implement on this type (`uri.rs`,
    // `prepare_format.rs`, ...).
    pub(super) settings: Mutex<Settings>,
    pub(super) session: Mutex<Session>,
    /// Reached by `unlock()` from another thread; cloned out before any wait.
    poller: Mutex<Option<Arc<Poller>>>,
    pub(super) stats: Mutex<Stats>,
}

impl Default for RustV4l2Src {
    fn default() -> Self {
        RustV4l2Src {
            settings: Mutex::new(Settings::default()),
            session: Mutex::new(Session::Closed),
            poller: Mutex::new(None),
            stats: Mutex::new(Stats::default()),
        }
    }
}

impl RustV4l2Src {
    /// Opens the device and probes what it can capture, unless already open; applies the
    /// control properties before anything streams. With `reconnect`, a device that is not
    /// there is no error: the session is `Lost` and capture waits for it.
    pub(super) fn open(&self) -> Result<(), gst::ErrorMessage> {
        {
            let session = lock(&self.session);
            if !session.is_closed() {
                return Ok(());
            }
            if let Some(gone) = session.lost() {
                gst::info!(
                    CAT,
                    imp = self,
                    "Reopening {}, lost {:?} ago",
                    gone.path,
                    gone.since.elapsed()
                );
            }
        }
        let settings = lock(&self.settings).clone();
        let mut opened = match Session::open_as_set(&settings) {
            Ok(opened) => opened,
            Err(unopened) if unopened.absent && settings.reconnect => {
                let first = {
                    let mut session = lock(&self.session);
                    let first = session.lost().is_none();
                    if first {
                        *session = Session::Lost(Gone {
                            path: settings.device.clone(),
                            since: std::time::Instant::now(),
                            identity: None,
                            asked: None,
                            frame_duration: None,
                            last_pts: None,
                            error: unopened.error,
                        });
                    }
                    first
                };
                if first {
                    reconnect::announce_absent(self.obj().upcast_ref(), &settings.device);
                }
                return Ok(());
            }
            Err(unopened) => return Err(unopened.into()),
        };
        opened.set_geometry(opened.decide_geometry(&settings)?);
        let warnings = controls::apply_controls(&opened.device, &settings, Which::All).warnings;
        let absent = opened.source.absent.as_ref().map(|a| a.loss);
        {
            let mut session = lock(&self.session);
            if session.is_closed() {
                *session = Session::Open(opened);
            }
        }
        self.post_warnings(warnings);
        signal::at_start(self.obj().upcast_ref(), &settings, absent)
    }

    fn close(&self) {
        lock(&self.session).close();
        gst::info!(CAT, imp = self, "Closed device");
    }

    fn post_warnings(&self, warnings: Vec<String>) {
        for warning in warnings {
            gst::element_imp_warning!(self, gst::ResourceError::Settings, ("{}", warning));
        }
    }

    /// The open device, taken out of the session so that ioctls on it run without its lock.
    pub(super) fn device(&self) -> Option<Arc<Device>> {
        lock(&self.session).device().cloned()
    }

    /// Applies a control property that just changed, if the device is open, and tells
    /// GstColorBalance listeners about each colour control it set.
    fn control_changed(&self, name: &str) {
        let Some(device) = self.device() else { return };
        let settings = lock(&self.settings).clone();
        let applied = controls::apply_controls(&device, &settings, Which::Only(name));
        self.post_warnings(applied.warnings);
        let changed: Vec<_> = self
            .with_channels(|channels| {
                applied
                    .colors
                    .iter()
                    .filter_map(|&(i, value)| Some((channels.channel(i)?.clone(), value)))
                    .collect()
            })
            .unwrap_or_default();
        // Outside the locks: a handler may well read the value back.
        let obj = self.obj();
        for (channel, value) in changed {
            obj.value_changed(&channel, value);
        }
    }

    /// Runs `f` on the open device's colour balance channels, found on first use (with the
    /// device's ioctls run outside the session's lock); `None` while closed.
    fn with_channels<R>(&self, f: impl FnOnce(&Channels) -> R) -> Option<R> {
        let device = {
            let session = lock(&self.session);
            let opened = session.opened()?;
            if let Some(channels) = opened.channels.get() {
                return Some(f(channels));
            }
            Arc::clone(&opened.device)
        };
        let specs = controls::color_channels(&device).unwrap_or_else(|e| {
            gst::warning!(CAT, imp = self, "No colour balance channels: {}", e);
            Vec::new()
        });
        let session = lock(&self.session);
        let opened = session
            .opened()
            .filter(|o| Arc::ptr_eq(&o.device, &device))?;
        let channels = opened.channels.get_or_init(|| {
            gst::debug!(
                CAT,
                imp = self,
                "Colour balance channels: {:?}",
                specs.iter().map(|c| &c.label).collect::<Vec<_>>()
            );
            Channels::new(specs)
        });
        Some(f(channels))
    }

    /// Which colour control `channel` stands for, if it is one of the open device's channels.
    fn channel_control(&self, channel: &gst_video::ColorBalanceChannel) -> Option<usize> {
        self.with_channels(|channels| channels.key_of(channel))
            .flatten()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for RustV4l2Src {
    const NAME: &'static str = "GstRustV4l2Src";
    type Type = super::RustV4l2Src;
    type ParentType = gst_base::PushSrc;
    type Interfaces = (
        gst::URIHandler,
        gst_video::ColorBalance,
        gst_video::VideoOrientation,
    );
}

// The vtables of GstColorBalance and GstVideoOrientation are `interfaces/`'s, calling this type's
// `ColorBalanceImpl` (below) and `OrientationImpl` (`orienting.rs`).
colorbalance::implement!(RustV4l2Src);
orientation::implement!(RustV4l2Src);

impl ObjectImpl for RustV4l2Src {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(settings::properties);
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        settings::signals()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        // The buffers are exported, or not, when they are allocated; a change while they exist
        // would take effect at some later renegotiation, or never.
        if name == "io-mode" && self.obj().current_state() > gst::State::Ready {
            gst::warning!(
                CAT,
                imp = self,
                "io-mode can only change in NULL or READY; staying at {:?}",
                lock(&self.settings).io_mode
            );
            return;
        }
        let followup = lock(&self.settings).set(name, value);
        gst::info!(CAT, imp = self, "{} set to {:?}", name, value);
        if followup == Followup::ApplyControl {
            self.control_changed(name);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let name = pspec.name();
        // The device's value once open, read without the session's lock.
        if let Some(v) = controls::device_value(name, || self.device()) {
            return v;
        }
        match name {
            "stats" => lock(&self.stats).to_structure().to_value(),
            "pixel-aspect-ratio" if lock(&self.settings).pixel_aspect_ratio.is_some() => {
                lock(&self.settings).pixel_aspect_ratio.to_value()
            }
            "device-fd" if lock(&self.session).is_closed() => {
                lock(&self.settings).device_fd.to_value()
            }
            "device-name" | "flags" | "device-fd" | "crop-bounds" | "pixel-aspect-ratio" => {
                lock(&self.session).property(name)
            }
            _ => lock(&self.settings)
                .get(name)
                .unwrap_or_else(|| unimplemented!("property {}", name)),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
    }
}

impl GstObjectImpl for RustV4l2Src {}

impl ElementImpl for RustV4l2Src {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Video4Linux2 source (Rust, zero-copy)",
                "Source/Video",
                "Captures video from a V4L2 device, handing the driver's buffers downstream without copying",
                "rustv4l2src developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps::template_caps(),
                )
                .expect("static pad template is valid"),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        // Open on NULL->READY, as v4l2src does, so that caps queries in READY see the device.
        if transition == gst::StateChange::NullToReady
            && let Err(msg) = self.open()
        {
            self.post_error_message(msg);
            return Err(gst::StateChangeError);
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::ReadyToNull {
            self.close();
        }
        Ok(ret)
    }
}

impl BaseSrcImpl for RustV4l2Src {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        self.open()?;
        let poller = Poller::new().map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Could not create a wake-up eventfd: {}", e)
            )
        })?;
        *lock(&self.poller) = Some(Arc::new(poller));
        *lock(&self.stats) = Stats::default();
        gst::info!(CAT, imp = self, "Started");
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        {
            let mut session = lock(&self.session);
            session.stop();
            session.forget_timeline();
        }
        *lock(&self.poller) = None;
        gst::info!(CAT, imp = self, "Stopped");
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let caps = lock(&self.session)
            .opened_mut()
            .map(|o| o.device_caps())
            .unwrap_or_else(|| self.obj().src_pad().pad_template_caps());
        Some(match filter {
            Some(filter) => filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn negotiate(&self) -> Result<(), gst::LoggableError> {
        // Not the base class's way: see `negotiating.rs`.
        self.negotiate_with_device()
    }

    fn fixate(&self, caps: gst::Caps) -> gst::Caps {
        let fixed = caps::fixate(caps);
        gst::debug!(CAT, imp = self, "Fixated to {}", fixed);
        fixed
    }

    fn set_caps(&self, new_caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        self.apply_caps(new_caps).map(|_| ())
    }

    fn decide_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        // Buffers come from the device, never from a pool: read what downstream says it holds,
        // then drop its pools so the base class does not allocate one for nothing. Only
        // `io-mode=dmabuf-import` keeps the first, which it captures into (`import.rs`).
        let downstream_min = query
            .allocation_pools()
            .map(|(_, _, min, _)| min)
            .max()
            .unwrap_or(0);
        let import = lock(&self.settings).io_mode == settings::IoMode::DmabufImport;
        let downstream_pool = DownstreamPool::of(query).filter(|_| import);
        while query.allocation_pools().next().is_some() {
            query.remove_nth_allocation_pool(0);
        }
        if lock(&self.session).lost().is_some() || lock(&self.session).signal_absent() {
            // Waiting for the device (`reconnect`) or its signal: buffers come once it is back.
            return Ok(());
        }
        let request = {
            let settings = lock(&self.settings);
            allocation::Request {
                wanted: settings.buffer_count,
                max: settings::MAX_BUFFER_COUNT,
                downstream_min,
                video_meta: query
                    .find_allocation_meta::<gst_video::VideoMeta>()
                    .is_some(),
                io_mode: settings.io_mode,
                downstream_pool,
            }
        };
        // Unplugged meanwhile (with `reconnect`): the capture loop waits for the device.
        let failed = |msg: Option<gst::ErrorMessage>| {
            if self.lost_while_starting("allocating buffers") {
                return Ok(());
            }
            if let Some(msg) = msg {
                self.post_error_message(msg);
            }
            Err(gst::loggable_error!(CAT, "Buffer allocation failed"))
        };
        if import {
            // Downstream's pool stays in the query: GstBaseSrc keeps it active for the stream.
            return match super::stream::import::allocate(&self.session, &request) {
                Ok(pool) => {
                    query.add_allocation_pool(Some(&pool.pool), pool.size, pool.min, pool.max);
                    Ok(())
                }
                Err(msg) => failed(msg),
            };
        }
        let allocated = lock(&self.session).allocate(&request);
        allocated.or_else(|msg| failed(Some(msg)))
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let latency = lock(&self.session).stream().and_then(|stream| {
                let buffers = match (&stream.queue, &stream.import) {
                    (Some(queue), _) => queue.len(),
                    (None, Some(import)) => import.len(),
                    (None, None) => AUTO_MIN_BUFFERS as usize,
                };
                Some(timeline::latency(stream.frame_duration?, buffers))
            });
            if let Some((min, max)) = latency {
                q.set(true, min, max);
                return true;
            }
        }
        BaseSrcImplExt::parent_query(self, query)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(poller) = &*lock(&self.poller) {
            poller.set_flushing(true);
        }
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(stream) = lock(&self.session).stream_mut() {
            stream.pts.forget();
        }
        if let Some(poller) = &*lock(&self.poller) {
            poller.set_flushing(false);
        }
        Ok(())
    }
}

impl PushSrcImpl for RustV4l2Src {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let poller = lock(&self.poller).clone().ok_or(gst::FlowError::Flushing)?;
        let knobs = {
            let settings = lock(&self.settings);
            Knobs {
                timeout_ms: settings.timeout_ms,
                timeout_action: settings.timeout_action,
                copy_threshold: settings.copy_threshold,
                low_latency: settings.low_latency,
                reconnect: settings.reconnect,
            }
        };
        let obj = self.obj();
        let waiting = Reconnect {
            element: obj.upcast_ref(),
            session: &self.session,
            stats: &self.stats,
            poller: Arc::clone(&poller),
            settings: &self.settings,
        };
        let signal = Signal {
            element: obj.upcast_ref(),
            session: &self.session,
            stats: &self.stats,
            poller: Arc::clone(&poller),
            settings: &self.settings,
        };
        let restart = Restart {
            element: obj.upcast_ref(),
            session: &self.session,
            stats: &self.stats,
        };
        let capture = Capture {
            element: obj.upcast_ref(),
            session: &self.session,
            stats: &self.stats,
            poller,
            knobs,
        };
        loop {
            if knobs.reconnect {
                waiting.wait()?;
            }
            match capture.next_buffer()? {
                Captured::Buffer(buffer) => return Ok(CreateSuccess::NewBuffer(buffer)),
                Captured::Lost { path, reason } => reconnect::announce_lost(
                    obj.upcast_ref(),
                    &self.stats,
                    &self.session,
                    &path,
                    &reason,
                ),
                Captured::SourceChanged => signal.changed()?,
                Captured::StreamFailed { path, reason } => restart.restart(&path, &reason)?,
                Captured::NoSignal => {
                    if let Some(black) = signal.wait()? {
                        return Ok(CreateSuccess::NewBuffer(black));
                    }
                }
            }
        }
    }
}

impl ColorBalanceImpl for RustV4l2Src {
    /// The open device's channels, or NULL (the empty list) while closed. See `Channels` for
    /// how long the list stays valid.
    fn color_channel_list(&self) -> *const glib::ffi::GList {
        self.with_channels(|channels| channels.as_ptr())
            .unwrap_or(std::ptr::null())
    }

    /// The same as setting the property, so the value is kept for the next open too, the
    /// property reads it, and `value-changed` follows once the driver has it. A channel from an
    /// earlier open, or from nowhere, changes nothing.
    fn set_channel_value(&self, channel: Option<&gst_video::ColorBalanceChannel>, value: i32) {
        let Some((channel, i)) = channel.and_then(|c| Some((c, self.channel_control(c)?))) else {
            gst::warning!(
                CAT,
                imp = self,
                "Colour balance channel {:?} is not a channel of the open device (it is closed, \
                 or was reopened since the channel was listed); {} not set",
                channel.map(|c| c.label()),
                value
            );
            return;
        };
        let (name, _) = COLOR_CONTROLS[i];
        // Within the range the channel advertises, which is the driver's, so the driver never
        // sees a value it would refuse.
        let clamped = value.clamp(channel.min_value(), channel.max_value());
        if clamped != value {
            gst::warning!(
                CAT,
                imp = self,
                "{} {} is outside the device's range {}..{}; setting {}",
                name,
                value,
                channel.min_value(),
                channel.max_value(),
                clamped
            );
        }
        self.obj().set_property(name, clamped);
    }

    /// What the property reads (the driver's value).
    fn channel_value(&self, channel: Option<&gst_video::ColorBalanceChannel>) -> i32 {
        match channel.and_then(|c| self.channel_control(c)) {
            Some(i) => self.obj().property(COLOR_CONTROLS[i].0),
            None => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "Colour balance channel {:?} is not a channel of the open device; reads 0",
                    channel.map(|c| c.label())
                );
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gst::glib;

    #[test]
    fn color_balance_has_no_channels_while_closed_and_ignores_strays() {
        use gst_video::prelude::*;
        gst::init().unwrap();
        let element = glib::Object::new::<super::super::RustV4l2Src>();
        let balance = element
            .dynamic_cast_ref::<gst_video::ColorBalance>()
            .expect("implements GstColorBalance");
        assert_eq!(
            balance.balance_type(),
            gst_video::ColorBalanceType::Hardware
        );
        assert!(balance.list_channels().is_empty());
        // A channel that is not the element's: neither applied nor kept for the next open.
        let stray = crate::rustv4l2src::interfaces::colorbalance::new_channel("brightness", 0, 255);
        let fired = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = fired.clone();
        balance.connect_value_changed(move |_, _, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        balance.set_value(&stray, 10);
        assert_eq!(balance.value(&stray), 0);
        assert_eq!(element.property::<i32>("brightness"), 0);
        assert_eq!(fired.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
