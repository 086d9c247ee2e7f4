//! End-to-end tests of Veil; see the files beside this one. Shared helpers only.

/// Registers every Veil plugin in this process (no GST_PLUGIN_PATH needed).
pub fn init() {
    let _ = gst::init();
    veil_meta::status::register();
    gstveilinference::plugin_register_static().expect("register veilinference");
}
