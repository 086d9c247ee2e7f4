// SPDX-License-Identifier: MIT OR Apache-2.0
//! `serve`: the Zenoh side. Subscribes to the records, ingests them in groups (one flush per
//! group, then the acknowledgements), answers history queries and admin queries, and sweeps
//! retention — until SIGTERM or SIGINT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use zenoh::Wait;

use crate::api::keys::Scope;
use crate::config::{Config, parse_duration};
use crate::ingest::{Ingest, Stats};
use crate::store::Store;

fn zerr(e: zenoh::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Serves until SIGTERM or SIGINT; `on_ready` gets one line saying what is being served, once
/// the service listens and has subscribed (the command line prints it: tests wait for it).
pub fn serve(
    config: &Config,
    store: Arc<Store>,
    on_ready: impl FnOnce(&str),
) -> anyhow::Result<()> {
    match config.trust.mode {
        crate::config::TrustMode::Tofu => tracing::warn!(
            "trust.mode = \"tofu\": any new key is trusted for a device name nobody has used yet \
             (a lab setting); enroll devices (`sink-service devices enroll`) and use \"enrolled\""
        ),
        mode => tracing::info!(?mode, "checkpoints trusted"),
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let owned = config.owned()?;
    let replicated = config.replicated()?;
    let mut gate = crate::replication::Gate::new(config.replication.keys()?);
    // Acknowledgements are signed and name the record they vouch for: a device given this
    // key's public half drops records from its spool on nothing else.
    let ack_key_path = config.store.ack_key_path();
    let ack_key = veil_wire::DeviceKey::load_or_create(&ack_key_path)
        .with_context(|| format!("the acknowledgement key {}", ack_key_path.display()))?;
    tracing::info!(public_key = %ack_key.public_hex(), "acknowledgements signed");
    // A replica's confirmation is signed like an acknowledgement: one key for both would let a
    // confirmation pass for the owner's acknowledgement at the device.
    anyhow::ensure!(
        !config
            .replication
            .replicas
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&ack_key.public_hex())),
        "replication.replicas lists this service's own acknowledgement key ({}): each replica \
         needs its own key (give each store its own key folder)",
        ack_key.public_hex()
    );
    let zenoh_config = config.zenoh()?;
    let grace = config.ownership_grace(&zenoh_config);
    let session = zenoh::open(zenoh_config)
        .wait()
        .map_err(zerr)
        .context("opening the Zenoh session")?;
    let claims = claim_ownership(&session, &store.id(), &owned, grace)?;
    // Every owned and replicated set into one queue: a sample is one set's (they do not
    // intersect).
    let (samples, subscriber) = std::sync::mpsc::sync_channel::<zenoh::sample::Sample>(16_384);
    let mut subscribers = Vec::new();
    for ke in owned.iter().chain(&replicated) {
        let tx = samples.clone();
        subscribers.push(
            session
                .declare_subscriber(ke.clone())
                .callback(move |sample| {
                    // Blocks the transport when full: back-pressure, not loss.
                    let _ = tx.send(sample);
                })
                .wait()
                .map_err(zerr)?,
        );
    }
    drop(samples);
    // The replicas' confirmations (an owner whose acknowledgements wait for them).
    let (confirmations, confirmed) = std::sync::mpsc::sync_channel::<(String, Vec<u8>)>(16_384);
    let mut confirmation_subscribers = Vec::new();
    for replica in &config.replication.replicas {
        let tx = confirmations.clone();
        confirmation_subscribers.push(
            session
                .declare_subscriber(format!(
                    "{}/{}/**",
                    crate::replication::CONFIRM_PREFIX,
                    replica.to_ascii_lowercase()
                ))
                .callback(move |sample| {
                    let _ = tx.send((
                        sample.key_expr().to_string(),
                        sample.payload().to_bytes().to_vec(),
                    ));
                })
                .wait()
                .map_err(zerr)?,
        );
    }
    drop(confirmations);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let mut threads = Vec::new();
    let audit = Arc::new(crate::audit::AuditLog::open(&store)?);
    audit.record(
        &store,
        crate::audit::Action {
            actor: "service",
            tenant: None,
            source_ip: None,
            action: "config.load",
            outcome: "success",
            detail: serde_json::json!({"config_sha256": config.sha256, "api": config.api.is_some(),
                "webhooks": config.api.is_some(), "forward": config.audit.forward.iter().map(|t| &t.name).collect::<Vec<_>>()}),
        },
    )?;
    store.flush()?;

    // One gate for both transports: the API keys, their scopes, rate limits and audit entries
    // guard the HTTPS API and the Zenoh queries alike.
    let mut api = crate::api::Api::new(config, store.clone(), audit.clone())?;
    api.federation = Some(crate::federation::Federation::start(
        &session,
        owned.clone(),
        Duration::from_millis(api.config.federation_timeout_ms),
    )?);
    let api = Arc::new(api);
    // The HTTPS API and the webhook deliveries.
    if config.api.is_some() {
        store.set_notify(true);
        threads.push(crate::api::server::start(api.clone(), stop.clone())?);
        let (store, stop) = (store.clone(), stop.clone());
        let policy = config.webhooks.policy()?;
        threads.push(std::thread::spawn(move || {
            crate::webhooks::run(&store, &policy, &stop)
        }));
    }
    // Operations metrics, on a listener of their own.
    if let Some(metrics) = &config.metrics {
        let targets = config
            .audit
            .forward
            .iter()
            .map(|t| t.name.clone())
            .collect();
        threads.push(crate::prometheus::serve(
            &metrics.listen,
            store.clone(),
            audit.clone(),
            targets,
            stop.clone(),
        )?);
    }
    // The audit log to the SIEM targets.
    for target in config.audit.forward.clone() {
        let (store, stop) = (store.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            crate::siem::run(&store, &target, &stop)
        }));
    }

    // History queries: an API key with the read scope, in the query's attachment; the answer
    // holds only the key's tenant (another tenant's key space answers like an absent one), and
    // of it only what this service owns: one queryable per owned set, each answering its set,
    // so a query spanning several owners gets each record once, from its owner.
    for ke in &owned {
        let queryable = session.declare_queryable(ke.clone()).wait().map_err(zerr)?;
        let (store, stop, api, ke) = (store.clone(), stop.clone(), api.clone(), ke.clone());
        let all_owned = owned.clone();
        threads.push(std::thread::spawn(move || {
            answer_history(&store, &api, &queryable, &ke, &all_owned, &stop)
        }));
    }

    // Admin: verification while serving (sled is single-process), and counters.
    let admin = session
        .declare_queryable(format!("{}/*", config.zenoh.admin))
        .wait()
        .map_err(zerr)?;
    {
        let (store, stop, stats, api) = (store.clone(), stop.clone(), stats.clone(), api.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let Ok(Some(query)) = admin.recv_timeout(Duration::from_millis(100)) else {
                    continue;
                };
                let key = query.key_expr().to_string();
                let api_key = match api.authorize_query(
                    attached_token(&query).as_deref(),
                    &key,
                    Scope::Admin,
                ) {
                    Ok(k) => k,
                    Err(refused) => {
                        let _ = query.reply_err(refused).wait();
                        continue;
                    }
                };
                let body = if !api_key.stations.is_whole_tenant() {
                    // verify and stats cover the whole tenant (stats: the whole service).
                    let _ = query
                        .reply_err("403 a station-scoped key cannot use the admin queries")
                        .wait();
                    continue;
                } else if key.ends_with("/verify") {
                    crate::verify::verify_tenant(&store, &api_key.tenant).map(|r| {
                        let mut report = serde_json::to_value(&r).unwrap_or_default();
                        // Service-wide parts (the quarantine, the service's audit log) are
                        // not the tenant's: left out rather than shown as zeros.
                        if let Some(fields) = report.as_object_mut() {
                            fields.remove("audit");
                            fields.remove("quarantined");
                        }
                        serde_json::json!({"ok": r.ok(), "tenant": api_key.tenant, "report": report})
                    })
                } else if key.ends_with("/stats") {
                    // Service-wide counters: no names, no content.
                    Ok(stats
                        .lock()
                        .map(|s| serde_json::to_value(&*s).unwrap_or_default())
                        .unwrap_or_default())
                } else {
                    Err(anyhow::anyhow!(
                        "unknown admin query {key}: use verify or stats"
                    ))
                };
                match body {
                    Ok(v) => {
                        let _ = query.reply(key, v.to_string()).wait();
                    }
                    Err(e) => {
                        let _ = query.reply_err(e.to_string()).wait();
                    }
                }
            }
        }));
    }

    // Retention, of the records and of the audit log.
    let keep = config.retention();
    let audit_keep = config
        .audit
        .keep
        .as_deref()
        .map(parse_duration)
        .transpose()?;
    if !keep.is_empty() || audit_keep.is_some() {
        let (store, stop) = (store.clone(), stop.clone());
        let every = parse_duration(&config.retention.sweep_interval)?;
        let targets = config.audit.forward.clone();
        threads.push(std::thread::spawn(move || {
            let mut last = Instant::now();
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(100));
                if last.elapsed() >= every {
                    last = Instant::now();
                    match crate::retention::sweep(&store, &keep, crate::store::now_ns()) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(records = n, "retention deleted records"),
                        Err(e) => tracing::error!("retention: {e:#}"),
                    }
                    if let Some(k) = audit_keep {
                        let before = crate::store::now_ns().saturating_sub(k.as_nanos() as u64);
                        let unsent = crate::siem::low_water(&store, &targets).saturating_add(1);
                        match crate::audit::sweep(&store, before, unsent) {
                            Ok(0) => {}
                            Ok(n) => {
                                tracing::info!(entries = n, "audit retention deleted entries")
                            }
                            Err(e) => tracing::error!("audit retention: {e:#}"),
                        }
                    }
                }
            }
        }));
    }

    let list = |sets: &[zenoh::key_expr::OwnedKeyExpr]| {
        sets.iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut roles = Vec::new();
    if !owned.is_empty() {
        roles.push(format!(
            "owns {} (stored, acknowledged{}, history)",
            list(&owned),
            match config.replication.replicas.len() {
                0 => String::new(),
                n => format!(" once {n} replica(s) confirmed"),
            }
        ));
    }
    if !replicated.is_empty() {
        roles.push(format!(
            "replicates {} (stored, confirmed to the owner)",
            list(&replicated)
        ));
    }
    on_ready(&format!(
        "sink-service: ready — store {} (id {}), {}, admin on {}/{{verify,stats}}",
        store.path.display(),
        store.id(),
        roles.join("; "),
        config.zenoh.admin
    ));
    let confirmer = ack_key.public_hex();
    // Chain units whose records came from a replicated set (confirmed, not acknowledged).
    let mut replica_units = std::collections::HashSet::new();
    let mut next_backup = match &config.backup {
        Some(schedule) => Some((schedule, parse_duration(&schedule.every)?)),
        None => None,
    }
    .map(|(schedule, every)| (schedule, every, Instant::now() + every));
    let mut ingest = Ingest::new(store.clone(), config.trust.clone(), config.limits.clone());
    let group = Duration::from_millis(config.limits.ack_interval_ms);
    let mut last_commit = Instant::now();
    let mut pending = false;
    let mut gave_way = None;
    while !stop.load(Ordering::Acquire) {
        if let Some(overlap) = claims.lost() {
            // Another store keeps these records: stop before acknowledging anything more
            // (what is staged stays unacknowledged; its devices send it to the owner).
            tracing::error!(%overlap, "another store announced part of this one's key space first: stopping");
            stop.store(true, Ordering::Release);
            gave_way = Some(overlap);
            break;
        }
        let sample = subscriber.recv_timeout(group).ok();
        if let Some(sample) = &sample {
            let payload = sample.payload().to_bytes();
            if !replicated.is_empty()
                && crate::ownership::owner_entry(&replicated, sample.key_expr().as_str()).is_some()
                && let Some((names, _)) =
                    veil_wire::Names::parse_record_key(sample.key_expr().as_str())
            {
                replica_units.insert(names.ack_key());
            }
            match ingest.take(sample.key_expr().as_str(), &payload) {
                Ok(outcome) => {
                    if let crate::ingest::Outcome::Quarantined(reason) = &outcome {
                        tracing::warn!(key = %sample.key_expr(), bytes = payload.len(), %reason, "quarantined");
                    }
                    pending = true
                }
                // The store's own trouble (disk): say it, keep serving; the device resends.
                Err(e) => {
                    tracing::error!(key = %sample.key_expr(), "could not store a record: {e:#}")
                }
            }
        }
        // Checked again here: the announcement may have come while waiting for a sample, and
        // nothing more may be acknowledged after it (the loop's top then stops).
        if pending
            && claims.lost().is_none()
            && (sample.is_none() || last_commit.elapsed() >= group)
        {
            let span = tracing::debug_span!("ingest_group", units = ingest.staged()).entered();
            let began = Instant::now();
            let committed = ingest.commit();
            let telemetry = crate::prometheus::telemetry();
            telemetry.committed(began.elapsed().as_secs_f64());
            match committed {
                Ok(acks) => {
                    for (names, upto, hash) in acks {
                        telemetry.unit_stored(&unit_label(&names), upto);
                        if replica_units.contains(&names.ack_key()) {
                            // A replica confirms to the owner; devices never hear from it.
                            // Above the records' priority: behind a router queue full of
                            // records (blocking ones) a confirmation would be dropped, and the
                            // owner would wait for it while the records pile up.
                            let key = crate::replication::confirm_key(&confirmer, &names);
                            let _ = session
                                .put(key, ack_key.sign_ack(&names, upto, &hash).to_vec())
                                .priority(zenoh::qos::Priority::InteractiveHigh)
                                .wait();
                        } else if let Some(due) =
                            gate.stored(&names, upto, &hash, |seq| ingest.hash_at(&names, seq))
                        {
                            acknowledge(&session, &ack_key, &due);
                        }
                    }
                }
                Err(e) => tracing::error!("could not commit: {e:#}"),
            }
            drop(span);
            if let Ok(mut s) = stats.lock() {
                *s = ingest.stats.clone();
            }
            telemetry.ingest(&ingest.stats);
            pending = false;
            last_commit = Instant::now();
        }
        // Replicas' confirmations: what they hold may open acknowledgements (not after another
        // store took over part of this one's sets).
        while claims.lost().is_none()
            && let Ok((key, payload)) = confirmed.try_recv()
        {
            let (Some((replica, names)), Some(ack)) = (
                crate::replication::parse_confirm_key(&key),
                veil_wire::Ack::from_slice(&payload),
            ) else {
                tracing::warn!(%key, "not a replica's confirmation");
                continue;
            };
            tracing::debug!(%key, seq = ack.seq, "confirmation");
            match gate.confirmed(&replica, &names, &ack, |seq| ingest.hash_at(&names, seq)) {
                Ok(Some(due)) => acknowledge(&session, &ack_key, &due),
                Ok(None) => {}
                Err(reason) => tracing::warn!(%key, reason, "replica confirmation refused"),
            }
        }
        // Scheduled backups between group commits: a consistent cut of the records (ingest
        // waits meanwhile; devices keep what is unacknowledged).
        if !pending
            && let Some((schedule, every, due)) = &mut next_backup
            && Instant::now() >= *due
        {
            let began = Instant::now();
            match crate::backup::scheduled(&store, schedule) {
                Ok((file, entries)) => tracing::info!(
                    file = %file.display(),
                    entries,
                    ms = began.elapsed().as_millis() as u64,
                    "scheduled backup written"
                ),
                Err(e) => tracing::error!("scheduled backup failed: {e:#}"),
            }
            *due = Instant::now() + *every;
        }
    }
    if gave_way.is_none() {
        let _ = ingest.commit();
    }
    // Nothing reads the queue any more: undeclare, so that no Zenoh thread stays blocked on a
    // full queue while the session closes.
    drop(subscribers);
    drop(subscriber);
    drop(confirmation_subscribers);
    drop(confirmed);
    for t in threads {
        let _ = t.join();
    }
    let _ = session.close().wait();
    store.flush()?;
    tracing::info!(received = ingest.stats.received, "stopped");
    match gave_way {
        Some(overlap) => Err(crate::ownership::OwnershipConflict(overlap).into()),
        None => Ok(()),
    }
}

/// Signs and sends an acknowledgement to the device of its chain unit.
fn acknowledge(
    session: &zenoh::Session,
    ack_key: &veil_wire::DeviceKey,
    (names, upto, hash): &crate::replication::Due,
) {
    let ack = ack_key.sign_ack(names, *upto, hash);
    let _ = session.put(names.ack_key(), ack.to_vec()).wait();
    crate::prometheus::telemetry().unit_acknowledged(&unit_label(names), *upto);
}

/// A chain unit as the metrics name it: `tenant/site/device/stream`.
fn unit_label(names: &veil_wire::Names) -> String {
    format!(
        "{}/{}/{}/{}",
        names.tenant, names.site, names.device, names.stream
    )
}

/// The API key a query carries as its attachment (the token as UTF-8), if any.
fn attached_token(query: &zenoh::query::Query) -> Option<String> {
    let bytes = query.attachment()?.to_bytes();
    std::str::from_utf8(&bytes)
        .ok()
        .map(|t| t.trim().to_owned())
}

/// Answers history queries on `queryable` (declared on `owned`) until `stop`; the API keys'
/// housekeeping runs here too (every 10 s).
fn answer_history(
    store: &Store,
    api: &crate::api::Api,
    queryable: &zenoh::query::Queryable<zenoh::handlers::FifoChannelHandler<zenoh::query::Query>>,
    owned: &zenoh::key_expr::OwnedKeyExpr,
    all_owned: &[zenoh::key_expr::OwnedKeyExpr],
    stop: &AtomicBool,
) {
    let mut tidied = Instant::now();
    while !stop.load(Ordering::Acquire) {
        if tidied.elapsed() >= Duration::from_secs(10) {
            api.tidy();
            tidied = Instant::now();
        }
        let Ok(Some(query)) = queryable.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        if let Some(read) = query.parameters().get(crate::api::forwarded::API_PARAMETER) {
            answer_forwarded(store, api, &query, read, owned, all_owned);
            continue;
        }
        let key = match api.authorize_query(
            attached_token(&query).as_deref(),
            query.key_expr().as_str(),
            Scope::Read,
        ) {
            Ok(key) => key,
            Err(refused) => {
                let _ = query.reply_err(refused).wait();
                continue;
            }
        };
        let answer = crate::query::parse_range(query.parameters().as_str())
            .map_err(anyhow::Error::msg)
            .and_then(|range| {
                crate::query::history(
                    store,
                    query.key_expr(),
                    range,
                    Some(&key.tenant),
                    &|kind, site, device, stream| {
                        key.may_read(kind) && key.stations.admits(site, device, stream)
                    },
                )
            });
        match answer {
            Ok(records) => {
                for (key, bytes) in records {
                    // Records stored before the owned set narrowed are another owner's now.
                    if crate::ownership::owner_entry(std::slice::from_ref(owned), &key).is_some() {
                        let _ = query.reply(key, bytes).wait();
                    }
                }
                // A federated read ([`crate::federation`]) counts the owners that answered.
                if query
                    .parameters()
                    .contains_key(crate::federation::ANSWERED_PARAMETER)
                {
                    let _ = query
                        .reply(
                            crate::federation::answered_key(&store.id(), owned),
                            Vec::<u8>::new(),
                        )
                        .wait();
                }
            }
            Err(e) => {
                let _ = query.reply_err(format!("{e}")).wait();
            }
        }
    }
}

/// Answers a forwarded read ([`crate::api::forwarded`]) for the owned set `owned`: its items
/// in the set's answered marker, read with the attached key as this store knows it. A key of
/// another tenant gets an empty answer (as a history query does); something whose site is not
/// known is answered by the first of `all_owned` that holds part of the tenant, so once.
fn answer_forwarded(
    store: &Store,
    api: &crate::api::Api,
    query: &zenoh::query::Query,
    read: &str,
    owned: &zenoh::key_expr::OwnedKeyExpr,
    all_owned: &[zenoh::key_expr::OwnedKeyExpr],
) {
    use crate::api::forwarded::{Read, answer};
    use zenoh::key_expr::KeyExpr;
    let Some(read) = Read::parse(read) else {
        let _ = query
            .reply_err(format!(
                "400 api={read:?} is not a read this store forwards"
            ))
            .wait();
        return;
    };
    let key = match api.authorize_query(
        attached_token(query).as_deref(),
        query.key_expr().as_str(),
        read.scope(),
    ) {
        Ok(key) => key,
        Err(refused) => {
            let _ = query.reply_err(refused).wait();
            return;
        }
    };
    let tenant = key.tenant.clone();
    let asked = KeyExpr::try_from(format!("veil/{tenant}/**"))
        .is_ok_and(|all| all.intersects(query.key_expr()));
    // Each item is answered by the first of this store's sets that holds its records (so
    // once, also when sets are split by site or by kind).
    let in_set = |read: Read, item: &serde_json::Value| {
        let Ok(k) = KeyExpr::try_from(crate::api::forwarded::item_key(&tenant, read, item)) else {
            return false;
        };
        all_owned.iter().find(|o| o.intersects(&k)) == Some(owned)
    };
    let parameters = query.parameters();
    let get = |name: &str| parameters.get(name).map(str::to_owned);
    let items = match asked {
        true => answer(store, &tenant, &key, read, &get, &in_set),
        false => Ok(Vec::new()),
    };
    match items.and_then(|items| Ok(serde_json::to_vec(&items)?)) {
        Ok(document) => {
            let _ = query
                .reply(
                    crate::federation::answered_key(&store.id(), owned),
                    document,
                )
                .wait();
        }
        // A bad parameter says which; the store's own trouble stays in its log.
        Err(e) if e.to_string().starts_with("400 ") => {
            let _ = query.reply_err(e.to_string()).wait();
        }
        Err(e) => {
            tracing::error!("forwarded read: {e:#}");
            let _ = query
                .reply_err("500 internal error (logged by the store)")
                .wait();
        }
    }
}

/// Announces this store's owned sets (liveliness tokens, held while the returned tokens live)
/// and refuses to go on when another store announced an intersecting set first
/// ([`crate::ownership`]: the earlier announcement keeps the set). It waits `grace` for
/// announcements still crossing the mesh; an intersecting set that wins later (two halves of a
/// mesh joining) is reported through [`ClaimTokens::lost`], and the store stops.
///
/// Errors: each overlap this store must give way to, naming both sets and the other store.
fn claim_ownership(
    session: &zenoh::Session,
    store_id: &str,
    owned: &[zenoh::key_expr::OwnedKeyExpr],
    grace: Duration,
) -> anyhow::Result<ClaimTokens> {
    use crate::ownership::{Claim, Role, TOKEN_PREFIX, overlaps, parse_token, token_key};
    let started = crate::store::now_ns();
    let ours: Vec<Claim> = owned
        .iter()
        .map(|ke| Claim {
            role: Role::Owner,
            store: store_id.to_owned(),
            started,
            key_expr: ke.clone(),
        })
        .collect();
    let mut tokens = Vec::new();
    for claim in &ours {
        tokens.push(
            session
                .liveliness()
                .declare_token(token_key(claim))
                .wait()
                .map_err(zerr)?,
        );
    }
    let pattern = format!("{TOKEN_PREFIX}/**");
    // Every announcement, those already there included (history): the ones this store must
    // give way to go to `lost`, the others (which give way) are logged once each.
    let lost: Arc<Mutex<Option<String>>> = Arc::default();
    let (judge, verdict) = (ours.clone(), lost.clone());
    let reported = Mutex::new(std::collections::HashSet::new());
    let watcher = session
        .liveliness()
        .declare_subscriber(pattern.as_str())
        .history(true)
        .callback(move |sample| {
            if sample.kind() != zenoh::sample::SampleKind::Put {
                return;
            }
            let Some(claim) = parse_token(sample.key_expr().as_str()) else {
                return;
            };
            for overlap in overlaps(&judge, std::slice::from_ref(&claim)) {
                if overlap.theirs_first {
                    if let Ok(mut v) = verdict.lock() {
                        v.get_or_insert(overlap.text);
                    }
                } else if reported.lock().is_ok_and(|mut r| r.insert(overlap.text.clone())) {
                    tracing::error!(overlap = %overlap.text, "another store announced part of this one's key space");
                }
            }
        })
        .wait()
        .map_err(zerr)?;
    // The announcements known now, then those still on their way.
    let replies = session
        .liveliness()
        .get(pattern.as_str())
        .timeout(Duration::from_secs(3))
        .wait()
        .map_err(zerr)?;
    let mut seen = Vec::new();
    while let Ok(reply) = replies.recv() {
        if let Ok(sample) = reply.result()
            && let Some(claim) = parse_token(sample.key_expr().as_str())
        {
            seen.push(claim);
        }
    }
    std::thread::sleep(grace);
    let mut first: Vec<String> = overlaps(&ours, &seen)
        .into_iter()
        .filter(|o| o.theirs_first)
        .map(|o| o.text)
        .collect();
    if let Some(later) = lost.lock().ok().and_then(|l| l.clone())
        && !first.contains(&later)
    {
        first.push(later);
    }
    if !first.is_empty() {
        return Err(crate::ownership::OwnershipConflict(first.join("; ")).into());
    }
    tracing::info!(
        sets = owned.len(),
        others = seen.iter().filter(|c| c.store != store_id).count(),
        "ownership announced"
    );
    Ok(ClaimTokens {
        _tokens: tokens,
        _watcher: watcher,
        lost,
    })
}

/// The announcement of this store's sets: withdrawn when dropped (and by Zenoh when the
/// session dies).
struct ClaimTokens {
    _tokens: Vec<zenoh::liveliness::LivelinessToken>,
    _watcher: zenoh::pubsub::Subscriber<()>,
    /// Set when a store that announced first claims part of this one's sets.
    lost: Arc<Mutex<Option<String>>>,
}

impl ClaimTokens {
    fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }
}
