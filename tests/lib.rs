//! End-to-end tests of Veil; see the files beside this one. Shared helpers only.

/// Registers every Veil plugin in this process (no GST_PLUGIN_PATH needed).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(register_all);
}

fn register_all() {
    gst::init().expect("gst init");
    veil_meta::status::register();
    gstveilinference::plugin_register_static().expect("register veilinference");
    gstveilanonymizer::plugin_register_static().expect("register veilanonymizer");
    gstveilaggregator::plugin_register_static().expect("register veilaggregator");
    gstveilaudit::plugin_register_static().expect("register veilaudit");
}

pub mod store;

/// A path inside the repository (configs, pipelines, examples).
pub fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The Python of the venv that scripts/setup.sh makes for the Zenoh client examples.
pub fn python_client() -> std::path::PathBuf {
    let cache = std::env::var("VEIL_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/veil")
        });
    let python = cache.join("client-venv/bin/python");
    assert!(
        python.exists(),
        "missing {}: run scripts/setup.sh (the test command runs it for you)",
        python.display()
    );
    python
}

/// A Zenoh client of `endpoint` (e.g. `tcp/127.0.0.1:7447`), without multicast scouting.
pub fn client_config(endpoint: &str) -> zenoh::Config {
    let mut c = zenoh::Config::default();
    for (k, v) in [
        ("mode", "\"client\"".to_string()),
        ("connect/endpoints", format!("[\"{endpoint}\"]")),
        ("connect/exit_on_failure", "false".into()),
        ("scouting/multicast/enabled", "false".into()),
    ] {
        c.insert_json5(k, &v).expect("client config");
    }
    c
}

/// Runs a pipeline description to EOS (at most `timeout_s`); returns its element messages, and
/// its warnings as structures named `warning` (`text`, `debug`). Panics on an error.
pub fn run_to_eos(description: &str, timeout_s: u64) -> Vec<gst::Structure> {
    use gst::prelude::*;
    init();
    let pipeline = gst::parse::launch(description).expect("pipeline description");
    let bus = pipeline.bus().expect("bus");
    if pipeline.set_state(gst::State::Playing).is_err() {
        let error =
            bus.timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error]);
        let text = match error.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Error(e)) => format!("{} ({:?})", e.error(), e.debug()),
            _ => "no error message".into(),
        };
        panic!("the pipeline does not start: {text}");
    }
    let mut messages = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(timeout_s)) {
        match msg.view() {
            gst::MessageView::Element(e) => messages.extend(e.structure().map(|s| s.to_owned())),
            gst::MessageView::Warning(w) => messages.push(
                gst::Structure::builder("warning")
                    .field("text", w.error().to_string())
                    .field(
                        "debug",
                        w.debug().map(|d| d.to_string()).unwrap_or_default(),
                    )
                    .build(),
            ),
            gst::MessageView::Error(e) => panic!("{} ({:?})", e.error(), e.debug()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("to NULL");
    messages
}

/// From `auditsink`'s bus messages: the last sequence number queued, and whether the store
/// acknowledged everything at EOS.
pub fn audit_outcome(messages: &[gst::Structure]) -> (u64, bool) {
    let last = messages
        .iter()
        .filter(|s| s.name() == gstveilaudit::MSG_QUEUED)
        .filter_map(|s| s.get::<u64>("last").ok())
        .max()
        .unwrap_or(0);
    let complete = messages
        .iter()
        .find(|s| s.name() == gstveilaudit::MSG_EOS)
        .and_then(|s| s.get::<bool>("complete").ok())
        .unwrap_or(false);
    (last, complete)
}

/// A pseudo-random duration in `[min, max)` ms (kill moments in crash tests; no rand crate).
pub fn random_ms(min: u64, max: u64, salt: u64) -> std::time::Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let x = (nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    std::time::Duration::from_millis(min + (x >> 33) % (max - min))
}
