// SPDX-License-Identifier: MIT OR Apache-2.0
//! Ports and Zenoh client configurations on loopback.

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
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

/// A pseudo-random duration in `[min, max)` ms (kill moments in crash tests; no rand crate).
pub fn random_ms(min: u64, max: u64, salt: u64) -> std::time::Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let x = (nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    std::time::Duration::from_millis(min + (x >> 33) % (max - min))
}
