// SPDX-License-Identifier: MIT OR Apache-2.0
//! The writer thread: turns queued items into chained records, signs checkpoints, appends them
//! to the spool in groups (one flush per group, at most `flush_interval` after the group's
//! first item arrived) and tells the publisher there is more to send.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use serde_json::Value;
use veil_wire::record::{canonical_json, sha256_hex};
use veil_wire::{DeviceKey, Kind, Names, Record};

use crate::spool::Spool;

/// What the streaming thread (and the element) hand to the writer.
pub enum Input {
    /// A chained record to be.
    Record {
        kind: Kind,
        capture_ns: u64,
        pts: Option<u64>,
        body: Value,
    },
    /// Per-frame boxes: best-effort, outside the chain, never spooled.
    Detections {
        capture_ns: u64,
        pts: Option<u64>,
        body: Value,
    },
    /// The pipeline's configuration; recorded when it differs from the last one recorded, or
    /// always when `force` (at start).
    Config {
        body: Value,
        force: bool,
    },
    /// Append everything before this, close with a checkpoint, and reply with the last sequence
    /// number.
    Flush(SyncSender<u64>),
    Stop,
}

/// What to do when the spool holds `max_pending` unacknowledged records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse new records, count them, and record the loss (an `integrity` record) as soon as
    /// there is room again. The video never waits.
    DropNew,
    /// Wait for room: the queue fills and the streaming thread ends up waiting.
    Block,
}

#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub flush_interval: Duration,
    pub max_group: usize,
    pub checkpoint_every: u64,
    pub checkpoint_period: Duration,
    pub max_pending: u64,
    pub overflow: Overflow,
    /// Set when the element stops: a writer blocked on a full spool goes over the bound
    /// rather than lose records or hang.
    pub stopping: Arc<AtomicBool>,
}

/// What the writer reports (the element turns these into bus messages).
#[derive(Debug, Clone, PartialEq)]
pub enum WriterEvent {
    /// Records `first..=last` are durably in the spool.
    Queued {
        first: u64,
        last: u64,
    },
    /// The spool was full; `dropped` records were refused so far in this overflow.
    Overflow {
        dropped: u64,
    },
    Error(String),
}

pub trait Sink: Send {
    /// New records are in the spool.
    fn spooled(&self);
    /// Best-effort records to publish right away.
    fn detections(&self, records: Vec<Record>);
    fn report(&self, event: WriterEvent);
}

pub struct Writer {
    names: Names,
    key: DeviceKey,
    spool: Arc<Spool>,
    settings: WriterSettings,
    sink: Box<dyn Sink>,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    /// Records refused at the spool's bound since the last `integrity` record about it, and
    /// the capture-time span they covered.
    dropped: u64,
    dropped_span: Option<(u64, u64)>,
    detections_next: u64,
    /// The group being built: continues the spool's chain.
    group: Vec<Record>,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Digest that tells configurations apart.
pub fn config_digest(body: &Value) -> String {
    sha256_hex(&canonical_json(body).unwrap_or_default())
}

impl Writer {
    pub fn new(
        names: Names,
        key: DeviceKey,
        spool: Arc<Spool>,
        settings: WriterSettings,
        sink: Box<dyn Sink>,
    ) -> Writer {
        let detections_next = spool.detections_next();
        Writer {
            names,
            key,
            spool,
            settings,
            sink,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            dropped: 0,
            dropped_span: None,
            detections_next,
            group: Vec::new(),
        }
    }

    /// Runs until `Input::Stop` or until every sender is gone, then closes the chain with a
    /// checkpoint.
    pub fn run(mut self, rx: Receiver<Input>) {
        loop {
            let idle = self
                .settings
                .checkpoint_period
                .saturating_sub(self.last_checkpoint.elapsed());
            let first = match rx.recv_timeout(idle.max(Duration::from_millis(1))) {
                Ok(item) => item,
                Err(RecvTimeoutError::Timeout) => {
                    self.periodic_checkpoint();
                    self.commit();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let deadline = Instant::now() + self.settings.flush_interval;
            let mut stop = self.take(first);
            while !stop && self.group.len() < self.settings.max_group {
                let wait = deadline.saturating_duration_since(Instant::now());
                let item = if wait.is_zero() {
                    match rx.try_recv() {
                        Ok(item) => item,
                        Err(_) => break,
                    }
                } else {
                    match rx.recv_timeout(wait) {
                        Ok(item) => item,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => {
                            stop = true;
                            break;
                        }
                    }
                };
                stop = self.take(item);
            }
            self.periodic_checkpoint();
            self.commit();
            if stop {
                break;
            }
        }
        self.close();
        self.commit();
    }

    /// Handles one input; true when the writer must stop.
    fn take(&mut self, item: Input) -> bool {
        let result = match item {
            Input::Record {
                kind,
                capture_ns,
                pts,
                body,
            } => self.chained(kind, capture_ns, pts, body),
            Input::Detections {
                capture_ns,
                pts,
                body,
            } => self.detections(capture_ns, pts, body),
            Input::Config { body, force } => self.config(body, force),
            Input::Flush(reply) => {
                self.close();
                self.commit();
                let _ = reply.send(self.spool.last_seq());
                Ok(())
            }
            Input::Stop => return true,
        };
        if let Err(e) = result {
            self.sink.report(WriterEvent::Error(e));
        }
        false
    }

    fn has_room(&self) -> bool {
        self.spool.pending() + (self.group.len() as u64) < self.settings.max_pending
    }

    fn chained(
        &mut self,
        kind: Kind,
        capture_ns: u64,
        pts: Option<u64>,
        body: Value,
    ) -> Result<(), String> {
        if !self.has_room() {
            match self.settings.overflow {
                Overflow::DropNew => {
                    self.dropped += 1;
                    let (from, to) = self.dropped_span.unwrap_or((capture_ns, capture_ns));
                    self.dropped_span = Some((from.min(capture_ns), to.max(capture_ns)));
                    if self.dropped == 1 || self.dropped.is_power_of_two() {
                        self.sink.report(WriterEvent::Overflow {
                            dropped: self.dropped,
                        });
                    }
                    return Ok(());
                }
                Overflow::Block => {
                    // Commit what is built so the publisher can send it, then wait for room.
                    self.commit();
                    while !self.has_room() && !self.settings.stopping.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        if self.dropped > 0 {
            // There is room again: first say what was lost, in the chain itself.
            let (from, to) = self.dropped_span.take().unwrap_or_default();
            let body = veil_wire::event::IntegrityEvent::SpoolOverflow {
                dropped: self.dropped,
                first_capture_time: veil_wire::time::format_time(from),
                last_capture_time: veil_wire::time::format_time(to),
                max_pending: self.settings.max_pending,
            }
            .body();
            self.dropped = 0;
            self.push(Kind::Integrity, now_ns(), None, body)?;
        }
        self.push(kind, capture_ns, pts, body)?;
        if self.since_checkpoint >= self.settings.checkpoint_every {
            self.checkpoint()?;
        }
        Ok(())
    }

    fn detections(&mut self, capture_ns: u64, pts: Option<u64>, body: Value) -> Result<(), String> {
        let seq = self.detections_next;
        self.detections_next += 1;
        let r = Record::new(
            &self.names,
            seq,
            capture_ns,
            pts,
            Kind::Detections,
            body,
            None,
        )
        .map_err(|e| e.to_string())?;
        self.sink.detections(vec![r]);
        Ok(())
    }

    fn config(&mut self, body: Value, force: bool) -> Result<(), String> {
        let digest = config_digest(&body);
        if !force && self.spool.config_digest().as_deref() == Some(digest.as_str()) {
            return Ok(());
        }
        self.chained(Kind::Config, now_ns(), None, body)?;
        self.spool
            .set_config_digest(&digest)
            .map_err(|e| e.to_string())
    }

    fn push(
        &mut self,
        kind: Kind,
        capture_ns: u64,
        pts: Option<u64>,
        body: Value,
    ) -> Result<(), String> {
        let (seq, prev) = match self.group.last() {
            Some(r) => (r.seq + 1, r.hash.clone()),
            None => (self.spool.next_seq(), self.spool.head()),
        };
        let r = Record::new(&self.names, seq, capture_ns, pts, kind, body, Some(prev))
            .map_err(|e| e.to_string())?;
        self.group.push(r);
        if kind == Kind::Checkpoint {
            self.since_checkpoint = 0;
            self.last_checkpoint = Instant::now();
        } else {
            self.since_checkpoint += 1;
        }
        Ok(())
    }

    /// Signs the current head (the last record built, or the spool's).
    fn checkpoint(&mut self) -> Result<(), String> {
        let (seq, head) = match self.group.last() {
            Some(r) => (r.seq, r.hash.clone()),
            None => (self.spool.last_seq(), self.spool.head()),
        };
        if seq == 0 {
            return Ok(());
        }
        let n = &self.names;
        let cp = self
            .key
            .sign_checkpoint(&n.tenant, &n.device, &n.stream, seq, &head);
        let body = serde_json::to_value(cp).map_err(|e| e.to_string())?;
        self.push(Kind::Checkpoint, now_ns(), None, body)
    }

    fn periodic_checkpoint(&mut self) {
        if self.last_checkpoint.elapsed() >= self.settings.checkpoint_period {
            self.close();
        }
    }

    /// At EOS and stop (and periodically): nothing left unsigned.
    fn close(&mut self) {
        if self.since_checkpoint > 0
            && let Err(e) = self.checkpoint()
        {
            self.sink.report(WriterEvent::Error(e));
        }
    }

    /// Appends the group to the spool (one flush) and reports it as queued.
    fn commit(&mut self) {
        let _ = self.spool.set_detections_next(self.detections_next);
        if self.group.is_empty() {
            return;
        }
        let group = std::mem::take(&mut self.group);
        match self.spool.append(&group) {
            Ok(()) => {
                let (first, last) = (group[0].seq, group[group.len() - 1].seq);
                self.sink.report(WriterEvent::Queued { first, last });
                self.sink.spooled();
            }
            Err(e) => {
                // The chain state did not advance: the same sequence numbers are built again
                // from the next group on, and the loss is visible here.
                self.sink.report(WriterEvent::Error(format!(
                    "{} records not spooled: {e}",
                    group.len()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;
    use std::sync::mpsc::sync_channel;
    use veil_wire::ChainVerifier;

    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<WriterEvent>>>);

    impl Sink for Collect {
        fn spooled(&self) {}
        fn detections(&self, _: Vec<Record>) {}
        fn report(&self, event: WriterEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    fn settings(max_pending: u64) -> WriterSettings {
        WriterSettings {
            flush_interval: Duration::from_millis(5),
            max_group: 64,
            checkpoint_every: 4,
            checkpoint_period: Duration::from_secs(60),
            max_pending,
            overflow: Overflow::DropNew,
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs a writer over `items` to the end; returns the spooled records and the reports.
    fn write(
        dir: &std::path::Path,
        settings: WriterSettings,
        items: Vec<Input>,
    ) -> (Vec<Record>, Vec<WriterEvent>) {
        let spool = Arc::new(Spool::open(dir, &[7; 32]).unwrap());
        let names = Names::new("t", "s", "d", "x").unwrap();
        let sink = Collect::default();
        let writer = Writer::new(
            names,
            DeviceKey::from_seed([3; 32]),
            spool.clone(),
            settings,
            Box::new(sink.clone()),
        );
        let (tx, rx) = sync_channel(16);
        let thread = std::thread::spawn(move || writer.run(rx));
        for item in items {
            tx.send(item).unwrap();
        }
        tx.send(Input::Stop).unwrap();
        thread.join().unwrap();
        let records = (spool.acked() + 1..=spool.last_seq())
            .map(|seq| Record::from_slice(&spool.get(seq).unwrap().unwrap().1).unwrap())
            .collect();
        let events = sink.0.lock().unwrap().clone();
        (records, events)
    }

    fn event(n: u64) -> Input {
        Input::Record {
            kind: Kind::Event,
            capture_ns: n,
            pts: Some(n),
            body: json!({"n": n}),
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("veil-writer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn records_are_chained_checkpointed_and_reported_queued() {
        let dir = temp("chain");
        let (records, events) = write(&dir, settings(1000), (1..=10).map(event).collect());
        let mut verifier =
            ChainVerifier::with_pinned_key(&DeviceKey::from_seed([3; 32]).public_hex());
        for r in &records {
            verifier.push(r).unwrap();
        }
        // 10 events, a checkpoint after every 4, and one closing the chain at stop.
        let kinds: Vec<Kind> = records.iter().map(|r| r.kind).collect();
        assert_eq!(kinds.iter().filter(|&&k| k == Kind::Checkpoint).count(), 3);
        assert_eq!(*kinds.last().unwrap(), Kind::Checkpoint);
        assert_eq!(verifier.state().signed_upto, records.len() as u64 - 1);
        let queued = events.iter().filter_map(|e| match e {
            WriterEvent::Queued { last, .. } => Some(*last),
            _ => None,
        });
        assert_eq!(queued.max(), Some(records.len() as u64));

        // A restart continues the same chain.
        let (more, _) = write(&dir, settings(1000), vec![event(11)]);
        assert_eq!(more.len(), records.len() + 2);
        for r in &more[records.len()..] {
            verifier.push(r).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_spool_drops_new_records_and_records_the_loss() {
        let dir = temp("full");
        let spool = Arc::new(Spool::open(&dir, &[7; 32]).unwrap());
        let names = Names::new("t", "s", "d", "x").unwrap();
        let sink = Collect::default();
        let writer = Writer::new(
            names,
            DeviceKey::from_seed([3; 32]),
            spool.clone(),
            settings(5),
            Box::new(sink.clone()),
        );
        let (tx, rx) = sync_channel(16);
        let thread = std::thread::spawn(move || writer.run(rx));
        for n in 1..=12 {
            tx.send(event(n)).unwrap();
        }
        let (reply, done) = sync_channel(1);
        tx.send(Input::Flush(reply)).unwrap();
        // Room for 5 unacknowledged records: 4 events and their checkpoint; 8 refused.
        assert_eq!(done.recv().unwrap(), 5);
        assert!(
            sink.0
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, WriterEvent::Overflow { dropped: 1 }))
        );
        // The store acknowledges: room again, and the first record says what was lost.
        spool.ack(5).unwrap();
        tx.send(event(13)).unwrap();
        tx.send(Input::Stop).unwrap();
        thread.join().unwrap();
        let loss = Record::from_slice(&spool.get(6).unwrap().unwrap().1).unwrap();
        assert_eq!(loss.kind, Kind::Integrity);
        assert_eq!(loss.body["type"], "spool-overflow");
        assert_eq!(loss.body["dropped"], 8);
        let next = Record::from_slice(&spool.get(7).unwrap().unwrap().1).unwrap();
        assert_eq!(next.body["n"], 13);
        drop(spool);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn configuration_is_recorded_when_it_changes() {
        let dir = temp("config");
        let config = |v: u32, force: bool| Input::Config {
            body: json!({"threshold": v}),
            force,
        };
        let (records, _) = write(
            &dir,
            settings(1000),
            vec![
                config(1, true),
                config(1, false),
                config(2, false),
                config(2, false),
            ],
        );
        let configs: Vec<&Record> = records.iter().filter(|r| r.kind == Kind::Config).collect();
        assert_eq!(configs.len(), 2);
        assert_eq!(configs[1].body["threshold"], 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
