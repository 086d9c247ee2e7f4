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
