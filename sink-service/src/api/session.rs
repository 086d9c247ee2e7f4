// SPDX-License-Identifier: MIT OR Apache-2.0
//! Console sessions: an API key exchanged for a short-lived session held in a cookie, so the
//! browser never keeps the key itself.
//!
//! The cookie (`__Host-veil_session`, `HttpOnly; Secure; SameSite=Strict; Path=/`) carries 32 random
//! bytes; the service keeps only their SHA-256, with the key's id and the key's stored hash at
//! sign-in. Each request through a session looks the key up again: a revoked, expired or
//! rotated key ends its sessions at once. A session ends after `session_idle` without use or
//! `session_max` after sign-in, whichever comes first, at sign-out, and when the service
//! restarts (sessions are kept in memory only). Every change (any method but GET and HEAD)
//! made through a session must carry the session's CSRF token in `X-CSRF-Token` (the
//! synchronizer-token pattern of the OWASP CSRF cheat sheet; SameSite=Strict is the second
//! line).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::Digest;
use subtle::ConstantTimeEq;

/// The cookie's name: the `__Host-` prefix makes browsers refuse it unless Secure, Path=/ and
/// without Domain, so a sibling subdomain cannot plant one (RFC 6265bis §4.1.3.2).
pub const COOKIE: &str = "__Host-veil_session";

/// Sessions one key may hold at once; signing in again beyond ends its oldest.
pub const PER_KEY: usize = 16;

/// The header a change made through a session carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// One signed-in browser (no `Debug`: it holds the key).
#[derive(Clone)]
pub struct Session {
    pub tenant: String,
    pub key_id: String,
    /// The key's stored hash when the session began: a rotation changes it.
    pub key_hash: String,
    /// The key itself, in memory only: reads this store forwards to the tenant's other owners
    /// carry it, as a request with the key would ([`crate::federation`]).
    pub token: String,
    pub csrf: String,
    began: Instant,
    used: Instant,
}

/// The sessions of this service, by SHA-256 of their cookie value.
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    idle: Duration,
    max: Duration,
}

fn digest(cookie: &str) -> String {
    hex::encode(sha2::Sha256::digest(cookie.as_bytes()))
}

fn random_hex() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

impl Sessions {
    /// Sessions ending after `idle` without use or `max` after sign-in.
    pub fn new(idle: Duration, max: Duration) -> Sessions {
        Sessions {
            live: Mutex::new(HashMap::new()),
            idle,
            max,
        }
    }

    /// The longest a session can live (the cookie's `Max-Age`).
    pub fn max(&self) -> Duration {
        self.max
    }

    /// How long a session lives without a request.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// A new session for a key of `tenant`: (cookie value, session).
    ///
    /// Errors: no randomness from the system, a poisoned lock.
    pub fn begin(
        &self,
        tenant: &str,
        key_id: &str,
        key_hash: &str,
        token: &str,
        now: Instant,
    ) -> anyhow::Result<(String, Session)> {
        let (cookie, csrf) = (random_hex()?, random_hex()?);
        let session = Session {
            tenant: tenant.to_owned(),
            key_id: key_id.to_owned(),
            key_hash: key_hash.to_owned(),
            token: token.to_owned(),
            csrf,
            began: now,
            used: now,
        };
        let mut live = self
            .live
            .lock()
            .map_err(|_| anyhow::anyhow!("sessions poisoned"))?;
        // At most PER_KEY per key: a key's holder cannot fill the memory with sessions.
        let mut mine: Vec<(Instant, String)> = live
            .iter()
            .filter(|(_, s)| s.key_id == key_id && s.tenant == tenant)
            .map(|(id, s)| (s.began, id.clone()))
            .collect();
        if mine.len() >= PER_KEY {
            mine.sort();
            for (_, id) in mine.iter().take(mine.len() + 1 - PER_KEY) {
                live.remove(id);
            }
        }
        live.insert(digest(&cookie), session.clone());
        Ok((cookie, session))
    }

    /// The live session of `cookie`, marked used at `now`; an expired one is forgotten.
    pub fn find(&self, cookie: &str, now: Instant) -> Option<Session> {
        let mut live = self.live.lock().ok()?;
        let id = digest(cookie);
        let session = live.get_mut(&id)?;
        if now.duration_since(session.used) >= self.idle
            || now.duration_since(session.began) >= self.max
        {
            live.remove(&id);
            return None;
        }
        session.used = now;
        Some(session.clone())
    }

    /// Ends the session of `cookie`; whether there was one.
    pub fn end(&self, cookie: &str) -> bool {
        self.live
            .lock()
            .is_ok_and(|mut l| l.remove(&digest(cookie)).is_some())
    }

    /// Forgets expired sessions.
    pub fn tidy(&self, now: Instant) {
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, s| {
                now.duration_since(s.used) < self.idle && now.duration_since(s.began) < self.max
            });
        }
    }
}

/// Whether `presented` is the session's CSRF token (compared in constant time).
pub fn csrf_matches(session: &Session, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// The session cookie's value in a `Cookie` request header (RFC 6265 §5.4), if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty()).then_some(value)
    })
}

/// `Set-Cookie` for a new session living at most `max_age`.
pub fn set_cookie(value: &str, max_age: Duration) -> String {
    format!(
        "{COOKIE}={value}; Max-Age={}; Path=/; HttpOnly; Secure; SameSite=Strict",
        max_age.as_secs()
    )
}

/// `Set-Cookie` removing the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_too_long_or_too_old_and_at_sign_out() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(150));
        let t0 = Instant::now();
        let (cookie, s) = sessions
            .begin("acme", "k1", "h1", "veil_k1_secret", t0)
            .unwrap();
        assert_eq!(s.csrf.len(), 64);
        assert_ne!(cookie, s.csrf);
        // Used every 50 s: alive until the absolute limit.
        for step in 1..3 {
            let at = t0 + Duration::from_secs(50 * step);
            assert!(sessions.find(&cookie, at).is_some(), "at {step}");
        }
        assert!(
            sessions
                .find(&cookie, t0 + Duration::from_secs(150))
                .is_none()
        );
        // Idle for a minute: gone.
        let (idle, _) = sessions
            .begin("acme", "k1", "h1", "veil_k1_secret", t0)
            .unwrap();
        assert!(sessions.find(&idle, t0 + Duration::from_secs(61)).is_none());
        // Signed out: gone; an unknown cookie was never there.
        let (out, _) = sessions
            .begin("acme", "k1", "h1", "veil_k1_secret", t0)
            .unwrap();
        assert!(sessions.end(&out));
        assert!(sessions.find(&out, t0).is_none());
        assert!(!sessions.end("not-a-session"));
        assert!(sessions.live.lock().unwrap().keys().all(|k| *k != out));
        // Expired sessions are forgotten by the housekeeping, not only when their cookie returns.
        sessions.tidy(t0 + Duration::from_secs(3600));
        assert!(sessions.live.lock().unwrap().is_empty());
    }

    #[test]
    fn a_key_holds_at_most_per_key_sessions_the_oldest_ends_first() {
        let sessions = Sessions::new(Duration::from_secs(600), Duration::from_secs(6000));
        let t0 = Instant::now();
        let cookies: Vec<String> = (0..PER_KEY as u64 + 2)
            .map(|i| {
                let at = t0 + Duration::from_secs(i);
                sessions.begin("acme", "k1", "h1", "t", at).unwrap().0
            })
            .collect();
        let at = t0 + Duration::from_secs(100);
        assert!(sessions.find(&cookies[0], at).is_none());
        assert!(sessions.find(&cookies[1], at).is_none());
        assert!(sessions.find(&cookies[2], at).is_some());
        assert!(sessions.find(cookies.last().unwrap(), at).is_some());
        // Another key's sessions are not counted against this one.
        let other = sessions.begin("acme", "k2", "h2", "t", at).unwrap().0;
        assert!(sessions.find(&other, at).is_some());
    }

    #[test]
    fn only_the_cookie_digest_is_kept_and_csrf_must_match_exactly() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let (cookie, s) = sessions
            .begin("acme", "k1", "h1", "veil_k1_secret", Instant::now())
            .unwrap();
        assert!(!sessions.live.lock().unwrap().contains_key(&cookie));
        assert!(csrf_matches(&s, Some(&s.csrf)));
        assert!(!csrf_matches(&s, None));
        assert!(!csrf_matches(&s, Some("")));
        assert!(!csrf_matches(&s, Some(&s.csrf[1..])));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(
            cookie_value("a=1; __Host-veil_session=abc; b=2"),
            Some("abc")
        );
        assert_eq!(cookie_value("__Host-veil_session=abc"), Some("abc"));
        assert_eq!(cookie_value("veil_session=abc"), None);
        assert_eq!(cookie_value("__Host-veil_session="), None);
        assert_eq!(cookie_value(""), None);
        let set = set_cookie("abc", Duration::from_secs(3600));
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Max-Age=3600"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
