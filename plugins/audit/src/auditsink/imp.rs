// SPDX-License-Identifier: MIT OR Apache-2.0
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, LazyLock, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::VideoRegionOfInterestMeta;
use serde_json::{Value, json};

use veil_meta::events;
use veil_meta::time::{Timeline, now_ns, parse_start_time};

/// A step in PTS longer than this (ns) re-anchors the detection records' capture time.
const DETECTIONS_MAX_GAP_NS: u64 = 2_000_000_000;
use veil_wire::time::parse_time;
use veil_wire::{DeviceKey, Kind, Names};

use super::SpoolFull;
use crate::pipeline_config;
use crate::publisher::{self, Publisher, PublisherEvents, PublisherSettings, Shared};
use crate::spool::Spool;
use crate::writer::{Input, Overflow, Sink, Writer, WriterEvent, WriterSettings};
use veil_wire::spool_dirs;

static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| veil_meta::element::debug_category("auditsink", "Veil audit sink"));

/// Bus message: records `first..=last` are durably spooled (they will reach the store).
pub const MSG_QUEUED: &str = "veil-audit-queued";
/// Bus message: the store acknowledged every record up to `seq`.
pub const MSG_ACKED: &str = "veil-audit-acked";
/// Bus message at EOS: `last` queued, `acknowledged`, `complete`.
pub const MSG_EOS: &str = "veil-audit-eos";

const DEFAULT_TENANT: &str = "default";
const DEFAULT_SITE: &str = "default";
const DEFAULT_STREAM: &str = "default";
const DEFAULT_FLUSH_INTERVAL_MS: u32 = 20;
const DEFAULT_CHECKPOINT_INTERVAL: u32 = 100;
const DEFAULT_CHECKPOINT_PERIOD_S: u32 = 10;
const DEFAULT_MAX_SPOOL_RECORDS: u64 = 1_000_000;
const DEFAULT_EOS_TIMEOUT_MS: u32 = 10_000;
const DEFAULT_ACK_TIMEOUT_MS: u32 = 2_000;
const DEFAULT_QUEUE_SIZE: u32 = 4096;
const MAX_GROUP: usize = 4096;
/// Records sent and not yet acknowledged, at most.
const SEND_WINDOW: u64 = 16_384;

/// The host name, as a valid device name.
fn default_device() -> String {
    let host: String = glib::host_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if host.is_empty() {
        "device".into()
    } else {
        host
    }
}

fn default_spool_dir() -> PathBuf {
    match (std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME")) {
        (Some(state), _) => PathBuf::from(state).join("veil/spool"),
        (None, Some(home)) => PathBuf::from(home).join(".local/state/veil/spool"),
        (None, None) => PathBuf::from("/var/lib/veil/spool"),
    }
}

#[derive(Debug, Clone)]
struct Settings {
    tenant: String,
    site: String,
    device: String,
    stream: String,
    zenoh_config: Option<PathBuf>,
    spool_dir: Option<PathBuf>,
    key_file: Option<PathBuf>,
    store_public_key: Option<String>,
    detections: bool,
    start_time: Option<String>,
    flush_interval_ms: u32,
    checkpoint_interval: u32,
    checkpoint_period_s: u32,
    max_spool_records: u64,
    spool_full: SpoolFull,
    eos_timeout_ms: u32,
    ack_timeout_ms: u32,
    queue_size: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tenant: DEFAULT_TENANT.into(),
            site: DEFAULT_SITE.into(),
            device: default_device(),
            stream: DEFAULT_STREAM.into(),
            zenoh_config: None,
            spool_dir: None,
            key_file: None,
            store_public_key: None,
            detections: false,
            start_time: None,
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            checkpoint_period_s: DEFAULT_CHECKPOINT_PERIOD_S,
            max_spool_records: DEFAULT_MAX_SPOOL_RECORDS,
            spool_full: SpoolFull::default(),
            eos_timeout_ms: DEFAULT_EOS_TIMEOUT_MS,
            ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
            queue_size: DEFAULT_QUEUE_SIZE,
        }
    }
}

struct State {
    tx: SyncSender<Input>,
    writer: Option<JoinHandle<()>>,
    publisher: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    spool: Arc<Spool>,
    /// Capture time of the detection records (as the aggregator keeps it for files).
    timeline: Timeline,
    fixed_start_ns: Option<u64>,
    /// The last buffer's PTS: a buffer without one is taken at that time, not as a reset.
    last_pts: Option<u64>,
    last_queued: Arc<AtomicU64>,
    stopping: Arc<AtomicBool>,
    notify: Option<(glib::WeakRef<gst::Bin>, glib::SignalHandlerId)>,
    detections: bool,
    eos_timeout: Duration,
}

#[derive(Default)]
pub struct AuditSink {
    settings: Mutex<Settings>,
    caps: veil_meta::element::VideoCaps,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for AuditSink {
    const NAME: &'static str = "GstVeilAuditSink";
    type Type = super::AuditSink;
    type ParentType = gst_base::BaseSink;
}

/// Writer reports become bus messages.
struct WriterReports {
    element: glib::WeakRef<super::AuditSink>,
    shared: Arc<Shared>,
    last_queued: Arc<AtomicU64>,
}

impl Sink for WriterReports {
    fn spooled(&self) {
        self.shared.wake();
    }

    fn detections(&self, records: Vec<veil_wire::Record>) {
        self.shared.push_detections(records);
    }

    fn report(&self, event: WriterEvent) {
        let Some(element) = self.element.upgrade() else {
            return;
        };
        match event {
            WriterEvent::Queued { first, last } => {
                self.last_queued.fetch_max(last, Ordering::AcqRel);
                let s = gst::Structure::builder(MSG_QUEUED)
                    .field("first", first)
                    .field("last", last)
                    .build();
                let _ =
                    element.post_message(gst::message::Element::builder(s).src(&element).build());
            }
            WriterEvent::Overflow { dropped } => {
                gst::element_warning!(
                    element,
                    gst::ResourceError::NoSpaceLeft,
                    (
                        "The spool is full: {} records dropped so far (recorded as an integrity record)",
                        dropped
                    )
                );
            }
            WriterEvent::Error(message) => {
                gst::element_error!(
                    element,
                    gst::ResourceError::Write,
                    ("Could not spool records"),
                    ["{}", message]
                );
            }
        }
    }
}

struct PublisherReports {
    element: glib::WeakRef<super::AuditSink>,
}

impl PublisherEvents for PublisherReports {
    fn acked(&self, seq: u64) {
        if let Some(element) = self.element.upgrade() {
            let s = gst::Structure::builder(MSG_ACKED).field("seq", seq).build();
            let _ = element.post_message(gst::message::Element::builder(s).src(&element).build());
        }
    }

    fn unreachable(&self, reason: String) {
        if let Some(element) = self.element.upgrade() {
            gst::element_warning!(
                element,
                gst::ResourceError::OpenWrite,
                ("The store cannot be reached yet; records are spooled and sent once it can"),
                ["{}", reason]
            );
        }
    }

    fn connected(&self) {
        if let Some(element) = self.element.upgrade() {
            gst::info!(CAT, obj = element, "connected to the store");
        }
    }

    fn forged(&self, reason: &str) {
        if let Some(element) = self.element.upgrade() {
            gst::element_warning!(
                element,
                gst::StreamError::Decrypt,
                ("An acknowledgement was refused: {}", reason),
                [
                    "Records leave the spool only on acknowledgements the store key signed for them; the count is in the EOS message"
                ]
            );
        }
    }

    fn error(&self, message: String) {
        if let Some(element) = self.element.upgrade() {
            gst::warning!(CAT, obj = element, "{message}");
        }
    }
}

/// A custom event's structure as JSON (numbers, strings, booleans; the rest as text).
fn structure_json(s: &gst::StructureRef) -> Value {
    let mut map = serde_json::Map::new();
    for (name, value) in s.iter() {
        let v = if let Ok(b) = value.get::<bool>() {
            json!(b)
        } else if let Ok(x) = value.get::<u64>() {
            json!(x)
        } else if let Ok(x) = value.get::<i64>() {
            json!(x)
        } else if let Ok(x) = value.get::<u32>() {
            json!(x)
        } else if let Ok(x) = value.get::<i32>() {
            json!(x)
        } else if let Ok(x) = value.get::<f64>() {
            json!(x)
        } else if let Ok(x) = value.get::<&str>() {
            serde_json::from_str::<Value>(x)
                .ok()
                .filter(|_| name == "body")
                .unwrap_or_else(|| json!(x))
        } else {
            value
                .serialize()
                .map(|t| json!(t.as_str()))
                .unwrap_or(Value::Null)
        };
        map.insert(name.to_string(), v);
    }
    Value::Object(map)
}

impl AuditSink {
    fn top_level_bin(&self) -> Option<gst::Bin> {
        let mut top: gst::Object = self.obj().clone().upcast();
        while let Some(parent) = top.parent() {
            top = parent;
        }
        top.downcast::<gst::Bin>().ok()
    }

    /// Hands an item to the writer thread: waits only if the (bounded) queue is full.
    fn enqueue(&self, item: Input) -> Result<(), gst::FlowError> {
        let tx = match self.state.lock().unwrap().as_ref() {
            Some(state) => state.tx.clone(),
            None => return Err(gst::FlowError::Flushing),
        };
        match tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item)) => {
                gst::debug!(CAT, imp = self, "queue full, waiting for the writer");
                tx.send(item).map_err(|_| self.writer_gone())
            }
            Err(TrySendError::Disconnected(_)) => Err(self.writer_gone()),
        }
    }

    fn writer_gone(&self) -> gst::FlowError {
        gst::element_imp_error!(self, gst::CoreError::Failed, ("The spool writer stopped"));
        gst::FlowError::Error
    }

    /// A custom downstream event: the aggregator's events become records of their kind (by
    /// type, `veil_wire::event`); any other `veil-*` structure becomes an `event` record with its
    /// fields; anything else is not ours.
    fn custom_event(&self, s: &gst::StructureRef) -> Result<(), gst::FlowError> {
        let pts = s.get::<u64>("pts").ok();
        let item = match events::from_structure(s) {
            Some(Ok(event)) => Input::Record {
                kind: event.record_kind(),
                capture_ns: parse_time(event.capture_time()).unwrap_or_else(now_ns),
                pts,
                body: event.record_body(),
            },
            Some(Err(e)) => {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{}", e));
                return Err(gst::FlowError::Error);
            }
            None if s.name().starts_with(events::NAME_PREFIX) => Input::Record {
                kind: Kind::Event,
                capture_ns: s
                    .get::<&str>("capture-time")
                    .ok()
                    .and_then(parse_start_time)
                    .unwrap_or_else(now_ns),
                pts,
                body: json!({"type": s.name().as_str(), "fields": structure_json(s)}),
            },
            None => return Ok(()),
        };
        self.enqueue(item)
    }

    /// Appends everything, signs the head and waits for the store's acknowledgement.
    fn finish_at_eos(&self) {
        let (tx, shared, timeout) = match self.state.lock().unwrap().as_ref() {
            Some(s) => (s.tx.clone(), s.shared.clone(), s.eos_timeout),
            None => return,
        };
        let (reply_tx, reply_rx) = sync_channel(1);
        if tx.send(Input::Flush(reply_tx)).is_err() {
            return;
        }
        let Ok(last) = reply_rx.recv_timeout(timeout) else {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                ("The spool writer did not finish in time")
            );
            return;
        };
        let complete = last == 0 || shared.wait_acked(last, timeout);
        let acked = self
            .state
            .lock()
            .unwrap()
            .as_ref()
            .map(|s| s.spool.acked())
            .unwrap_or(0);
        let s = gst::Structure::builder(MSG_EOS)
            .field("last", last)
            .field("acknowledged", acked)
            .field("complete", complete)
            .field(
                "forged-acks",
                shared
                    .forged_acks
                    .load(std::sync::atomic::Ordering::Acquire),
            )
            .build();
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        if !complete {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                (
                    "The store acknowledged records up to {} of {}; the rest stay in the spool and are sent at the next start",
                    acked,
                    last
                )
            );
        }
    }

    fn open(&self, settings: &Settings) -> Result<State, gst::ErrorMessage> {
        let names = Names::new(
            &settings.tenant,
            &settings.site,
            &settings.device,
            &settings.stream,
        )
        .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{}", e)))?;
        let spool_root = settings.spool_dir.clone().unwrap_or_else(default_spool_dir);
        // No directory spells a name (spool_dirs); spools of earlier versions move into place.
        let moved = |e: std::io::Error| {
            gst::error_msg!(
                gst::ResourceError::OpenReadWrite,
                (
                    "Moving the spool of an earlier version under {}: {}",
                    spool_root.display(),
                    e
                )
            )
        };
        spool_dirs::adopt_device_dir(&spool_root, &names.tenant, &names.device).map_err(moved)?;
        let device_dir = spool_dirs::device_dir(&spool_root, &names.tenant, &names.device);
        let key_path = settings
            .key_file
            .clone()
            .unwrap_or_else(|| device_dir.join("device.key"));
        let key = DeviceKey::load_or_create(&key_path)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("Device key: {}", e)))?;
        spool_dirs::adopt_stream_dir(&device_dir, &key, &names.stream).map_err(moved)?;
        let spool_path = spool_dirs::stream_dir(&device_dir, &key, &names.stream);
        let spool = Arc::new(
            Spool::open(&spool_path, &key.derive_secret("spool"))
                .map_err(|e| gst::error_msg!(gst::ResourceError::OpenReadWrite, ("{}", e)))?,
        );
        let config = publisher::load_config(settings.zenoh_config.as_deref())
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{}", e)))?;
        gst::info!(
            CAT,
            imp = self,
            "chain {} resumes at {} ({} waiting for acknowledgement), key {}",
            names.unit(),
            spool.next_seq(),
            spool.pending(),
            key.public_hex()
        );

        let store_key = match settings.store_public_key.as_deref() {
            Some(text) => Some(crate::publisher::parse_store_keys(text).map_err(|e| {
                gst::error_msg!(gst::LibraryError::Settings, ("store-public-key: {}", e))
            })?),
            None => {
                gst::element_imp_warning!(
                    self,
                    gst::LibraryError::Settings,
                    ("store-public-key is not set: acknowledgements are not authenticated"),
                    [
                        "any peer that can publish on {} can make this device drop spooled records; set it to `sink-service keys public`",
                        names.ack_key()
                    ]
                );
                None
            }
        };
        let shared = Arc::new(Shared::new(spool.acked(), store_key));
        let element = self.obj().downgrade();
        let publisher = {
            let (names, spool, shared) = (names.clone(), spool.clone(), shared.clone());
            let events = Box::new(PublisherReports {
                element: element.clone(),
            });
            let settings = PublisherSettings {
                ack_timeout: Duration::from_millis(settings.ack_timeout_ms.into()),
                window: SEND_WINDOW,
            };
            move || {
                let Some(session) = publisher::connect(&config, &shared, events.as_ref()) else {
                    return;
                };
                match Publisher::new(session, names, spool, shared, settings, events) {
                    Ok(p) => p.run(),
                    Err(e) => gst::error!(CAT, "{e}"),
                }
            }
        };
        let publisher = std::thread::Builder::new()
            .name("auditsink-pub".into())
            .spawn(publisher)
            .map_err(|e| {
                gst::error_msg!(
                    gst::CoreError::Failed,
                    ("Could not start the publisher: {}", e)
                )
            })?;

        let last_queued = Arc::new(AtomicU64::new(spool.last_seq()));
        let stopping = Arc::new(AtomicBool::new(false));
        let writer = Writer::new(
            names,
            key,
            spool.clone(),
            WriterSettings {
                flush_interval: Duration::from_millis(settings.flush_interval_ms.into()),
                max_group: MAX_GROUP,
                checkpoint_every: settings.checkpoint_interval.max(1).into(),
                checkpoint_period: Duration::from_secs(settings.checkpoint_period_s.max(1).into()),
                max_pending: settings.max_spool_records,
                overflow: match settings.spool_full {
                    SpoolFull::DropNew => Overflow::DropNew,
                    SpoolFull::Block => Overflow::Block,
                },
                stopping: stopping.clone(),
            },
            Box::new(WriterReports {
                element,
                shared: shared.clone(),
                last_queued: last_queued.clone(),
            }),
        );
        let (tx, rx) = sync_channel(settings.queue_size.max(1) as usize);
        let writer = std::thread::Builder::new()
            .name("auditsink-spool".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| {
                gst::error_msg!(
                    gst::CoreError::Failed,
                    ("Could not start the spool writer: {}", e)
                )
            })?;

        let fixed_start = veil_meta::element::start_time_setting(settings.start_time.as_deref())?;
        Ok(State {
            tx,
            writer: Some(writer),
            publisher: Some(publisher),
            shared,
            spool,
            // Detection records' capture time only; the aggregator names the breaks in time.
            timeline: Timeline::new(DETECTIONS_MAX_GAP_NS),
            fixed_start_ns: fixed_start,
            last_pts: None,
            last_queued,
            stopping,
            notify: None,
            detections: settings.detections,
            eos_timeout: Duration::from_millis(settings.eos_timeout_ms.into()),
        })
    }

    /// Records the configuration now, and again whenever a Veil element's setting changes.
    fn watch_configuration(&self, state: &mut State) {
        let Some(top) = self.top_level_bin() else {
            return;
        };
        let _ = state.tx.try_send(Input::Config {
            body: pipeline_config::snapshot(&top),
            force: true,
        });
        let tx = state.tx.clone();
        let weak_top = top.downgrade();
        let handler = top.connect_deep_notify(None, move |_, object, pspec| {
            let Some(element) = object.downcast_ref::<gst::Element>() else {
                return;
            };
            if !pipeline_config::is_recorded_property(element, pspec.name()) {
                return;
            }
            if let Some(top) = weak_top.upgrade() {
                let _ = tx.try_send(Input::Config {
                    body: pipeline_config::snapshot(&top),
                    force: false,
                });
            }
        });
        state.notify = Some((top.downgrade(), handler));
    }

    fn detections_body(&self, state: &mut State, buffer: &gst::BufferRef) -> Option<Input> {
        let info = self.caps.get()?;
        let (w, h) = (info.width(), info.height());
        let pts = buffer.pts().map(|p| p.nseconds());
        let fixed = state.fixed_start_ns;
        let running = pts.or(state.last_pts).unwrap_or(0);
        state.last_pts = Some(running);
        let (capture_ns, _) = state
            .timeline
            .next(running, None, || fixed.unwrap_or_else(now_ns));
        // Label, confidence and normalized box only: no track ids, no landmarks, no pixels.
        let objects: Vec<Value> = buffer
            .iter_meta::<VideoRegionOfInterestMeta>()
            .map(|roi| {
                let d = veil_meta::Detection::from_roi(&roi, w, h);
                json!({
                    "label": d.label,
                    "confidence": (d.confidence * 1e4).round() / 1e4,
                    "box": [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max],
                })
            })
            .collect();
        Some(Input::Detections {
            capture_ns,
            pts,
            body: json!({"frame": {"width": w, "height": h}, "objects": objects}),
        })
    }
}

impl ObjectImpl for AuditSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let name = |n: &str, nick: &str, blurb: &str, default: &str| {
                glib::ParamSpecString::builder(n)
                    .nick(nick)
                    .blurb(blurb)
                    .default_value(Some(default))
                    .mutable_ready()
                    .build()
            };
            let path = |n: &str, nick: &str, blurb: &str| {
                glib::ParamSpecString::builder(n)
                    .nick(nick)
                    .blurb(blurb)
                    .mutable_ready()
                    .build()
            };
            let uint = |n: &str, nick: &str, blurb: &str, min: u32, default: u32| {
                glib::ParamSpecUInt::builder(n)
                    .nick(nick)
                    .blurb(blurb)
                    .minimum(min)
                    .default_value(default)
                    .mutable_ready()
                    .build()
            };
            let counter = |n: &str, nick: &str, blurb: &str| {
                glib::ParamSpecUInt64::builder(n)
                    .nick(nick)
                    .blurb(blurb)
                    .read_only()
                    .build()
            };
            vec![
                name("tenant", "Tenant", "Tenant the records belong to (first chunk of the key expressions)", DEFAULT_TENANT),
                name("site", "Site", "Site of the device", DEFAULT_SITE),
                glib::ParamSpecString::builder("device")
                    .nick("Device")
                    .blurb("Device name (default: the host name)")
                    .mutable_ready()
                    .build(),
                name("stream", "Stream", "Stream (camera) on the device; tenant + device + stream is one hash chain", DEFAULT_STREAM),
                path("zenoh-config", "Zenoh configuration", "Zenoh configuration file (JSON5); default: client of tcp/127.0.0.1:7447, no multicast scouting"),
                path("spool-dir", "Spool directory", "Where the spools and the device key live (default: $XDG_STATE_HOME/veil/spool or ~/.local/state/veil/spool)"),
                path("key-file", "Key file", "Ed25519 device key, created with mode 0600 on first use; refused when others can read it (default: device.key in the device's directory under spool-dir, named by a hash of tenant and device)"),
                glib::ParamSpecString::builder("store-public-key")
                    .nick("Store public key")
                    .blurb("The sink service's acknowledgement key (64 hex digits, `sink-service keys public`; during a rotation the current and the next, comma-separated): records leave the spool only on acknowledgements one of them signed for the record spooled at that sequence number; unset: any acknowledgement counts (development)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("detections")
                    .nick("Detections")
                    .blurb("Also publish per-frame boxes (label, confidence, normalized box; no track ids), best-effort and outside the chain")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                path("start-time", "Start time", "Capture time of the first frame for detections (RFC 3339 or seconds since the epoch), for files; default: the wall clock"),
                uint("flush-interval", "Flush interval", "Longest time (ms) a record waits before its group is written and flushed to the spool", 0, DEFAULT_FLUSH_INTERVAL_MS),
                uint("checkpoint-interval", "Checkpoint interval", "Sign a checkpoint after this many records", 1, DEFAULT_CHECKPOINT_INTERVAL),
                uint("checkpoint-period", "Checkpoint period", "Sign a checkpoint at least this often (seconds) while records come", 1, DEFAULT_CHECKPOINT_PERIOD_S),
                glib::ParamSpecUInt64::builder("max-spool-records")
                    .nick("Spool bound")
                    .blurb("Most records kept waiting for acknowledgement; see spool-full")
                    .minimum(1)
                    .default_value(DEFAULT_MAX_SPOOL_RECORDS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("spool-full", SpoolFull::default())
                    .nick("When the spool is full")
                    .blurb("drop-new: refuse new records and record how many (integrity record); block: the video waits")
                    .mutable_ready()
                    .build(),
                uint("eos-timeout", "EOS timeout", "At EOS, wait this long (ms) for the store to acknowledge everything", 0, DEFAULT_EOS_TIMEOUT_MS),
                uint("ack-timeout", "Acknowledgement timeout", "Send again from the first unacknowledged record after this long (ms) without acknowledgement", 50, DEFAULT_ACK_TIMEOUT_MS),
                uint("queue-size", "Queue size", "Items the streaming thread may hand over before it waits for the spool writer", 1, DEFAULT_QUEUE_SIZE),
                counter("queued", "Queued", "Sequence number of the last record durably spooled"),
                counter("acknowledged", "Acknowledged", "Highest sequence number the store acknowledged"),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let text = || veil_meta::element::string_value(value);
        let path = || veil_meta::element::path_value(value);
        match pspec.name() {
            "tenant" => s.tenant = text().unwrap_or_else(|| DEFAULT_TENANT.into()),
            "site" => s.site = text().unwrap_or_else(|| DEFAULT_SITE.into()),
            "device" => s.device = text().unwrap_or_else(default_device),
            "stream" => s.stream = text().unwrap_or_else(|| DEFAULT_STREAM.into()),
            "zenoh-config" => s.zenoh_config = path(),
            "spool-dir" => s.spool_dir = path(),
            "key-file" => s.key_file = path(),
            "store-public-key" => s.store_public_key = text(),
            "detections" => s.detections = value.get().unwrap_or(false),
            "start-time" => s.start_time = text(),
            "flush-interval" => {
                s.flush_interval_ms = value.get().unwrap_or(DEFAULT_FLUSH_INTERVAL_MS)
            }
            "checkpoint-interval" => {
                s.checkpoint_interval = value.get().unwrap_or(DEFAULT_CHECKPOINT_INTERVAL)
            }
            "checkpoint-period" => {
                s.checkpoint_period_s = value.get().unwrap_or(DEFAULT_CHECKPOINT_PERIOD_S)
            }
            "max-spool-records" => {
                s.max_spool_records = value.get().unwrap_or(DEFAULT_MAX_SPOOL_RECORDS)
            }
            "spool-full" => s.spool_full = value.get().unwrap_or_default(),
            "eos-timeout" => s.eos_timeout_ms = value.get().unwrap_or(DEFAULT_EOS_TIMEOUT_MS),
            "ack-timeout" => s.ack_timeout_ms = value.get().unwrap_or(DEFAULT_ACK_TIMEOUT_MS),
            "queue-size" => s.queue_size = value.get().unwrap_or(DEFAULT_QUEUE_SIZE),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).to_value();
        match pspec.name() {
            "tenant" => s.tenant.to_value(),
            "site" => s.site.to_value(),
            "device" => s.device.to_value(),
            "stream" => s.stream.to_value(),
            "zenoh-config" => path(&s.zenoh_config),
            "spool-dir" => path(&s.spool_dir),
            "key-file" => path(&s.key_file),
            "store-public-key" => s.store_public_key.to_value(),
            "detections" => s.detections.to_value(),
            "start-time" => s.start_time.to_value(),
            "flush-interval" => s.flush_interval_ms.to_value(),
            "checkpoint-interval" => s.checkpoint_interval.to_value(),
            "checkpoint-period" => s.checkpoint_period_s.to_value(),
            "max-spool-records" => s.max_spool_records.to_value(),
            "spool-full" => s.spool_full.to_value(),
            "eos-timeout" => s.eos_timeout_ms.to_value(),
            "ack-timeout" => s.ack_timeout_ms.to_value(),
            "queue-size" => s.queue_size.to_value(),
            "queued" | "acknowledged" => {
                drop(s);
                let state = self.state.lock().unwrap();
                let v = state.as_ref().map_or(0, |st| {
                    if pspec.name() == "queued" {
                        st.last_queued.load(Ordering::Acquire)
                    } else {
                        st.spool.acked()
                    }
                });
                v.to_value()
            }
            other => {
                gst::warning!(CAT, imp = self, "unknown property {other}");
                pspec.default_value().clone()
            }
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        // A sink that renders nothing: no reason to pace to the clock, and no reason to keep a
        // reference to the last frame (it would be a copy of the pixels).
        obj.set_sync(false);
        obj.set_enable_last_sample(false);
    }
}

impl GstObjectImpl for AuditSink {}

impl ElementImpl for AuditSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Veil audit sink",
                "Sink/Metadata",
                "Publishes the aggregator's events (and optionally boxes without track ids) as signed, hash-chained records over Zenoh, through a durable spool; never pixels",
                "Veil developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &gst::Caps::new_any(),
                )
                .expect("sink pad template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSinkImpl for AuditSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let mut state = self.open(&settings)?;
        self.watch_configuration(&mut state);
        *self.state.lock().unwrap() = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let Some(mut state) = self.state.lock().unwrap().take() else {
            return Ok(());
        };
        if let Some((top, handler)) = state.notify.take()
            && let Some(top) = top.upgrade()
        {
            top.disconnect(handler);
        }
        // The writer drains what was queued and closes the chain with a checkpoint; then the
        // publisher stops. Whatever is not acknowledged stays in the spool for the next start.
        state.stopping.store(true, Ordering::Release);
        let _ = state.tx.send(Input::Stop);
        drop(state.tx);
        if let Some(w) = state.writer.take() {
            let _ = w.join();
        }
        state.shared.stop();
        if let Some(p) = state.publisher.take() {
            let _ = p.join();
        }
        state
            .spool
            .flush()
            .map_err(|e| gst::error_msg!(gst::ResourceError::Write, ("{}", e)))?;
        Ok(())
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        // Any caps are accepted (the sink reads metas and events, never pixels); raw video's
        // size is kept, whenever it comes, for the per-frame detections.
        if self.caps.set(*CAT, caps).is_err() && self.settings.lock().unwrap().detections {
            gst::warning!(
                CAT,
                imp = self,
                "detections asked for, but {caps} is not raw video: none will be published"
            );
        }
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let item = {
            let mut guard = self.state.lock().unwrap();
            let Some(state) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            if !state.detections {
                return Ok(gst::FlowSuccess::Ok);
            }
            self.detections_body(state, buffer)
        };
        if let Some(item) = item {
            self.enqueue(item)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::CustomDownstream(e) => {
                if let Some(s) = e.structure()
                    && self.custom_event(s).is_err()
                {
                    return false;
                }
            }
            gst::EventView::Eos(_) => self.finish_at_eos(),
            _ => {}
        }
        self.parent_event(event)
    }
}
