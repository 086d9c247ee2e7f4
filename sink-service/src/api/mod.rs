// SPDX-License-Identifier: MIT OR Apache-2.0
//! The HTTPS API: what integrators, dashboards and security reviewers use.
//!
//! Every request goes through the same gate, in this order: route (404/405), API key (401),
//! rate limit (429), tenant — a key of tenant B asking for anything under `/v1/t/A/` hears
//! 404, exactly as for a tenant that does not exist — then the route's scope (403). The routes
//! and their scopes are one table ([`ROUTES`]); the OpenAPI document (`openapi.json`, served at
//! `/v1/openapi.json`) states the same scope per operation as `x-veil-scope`, and a test keeps
//! the two equal. Handlers are plain functions of a parsed request ([`handlers`]); the HTTP and
//! TLS glue is [`server`].

pub mod console;
pub mod data;
pub mod forwarded;
pub mod handlers;
pub mod hello;
pub mod keys;
pub mod ratelimit;
pub mod rollup;
pub mod server;
pub mod session;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::audit::{Action, AuditLog};
use crate::config::{ApiConfig, Config, parse_duration};
use crate::store::{Store, now_ns};
use keys::{ApiKey, KeyStore, Scope};
use ratelimit::{Quota, RateLimiter};

pub const OPENAPI: &str = include_str!("../../openapi.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Health,
    OpenApi,
    Streams,
    Metrics,
    Events,
    Inspections,
    Compliance,
    Integrity,
    AcknowledgeIntegrity,
    Rollup,
    Export,
    ListKeys,
    CreateKey,
    GetKey,
    RotateKey,
    RevokeKey,
    ListWebhooks,
    CreateWebhook,
    GetWebhook,
    DeleteWebhook,
    Deliveries,
    Audit,
    ListImages,
    GetImage,
    SessionBegin,
    SessionShow,
    SessionEnd,
}

pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// `None`: public (no key).
    pub scope: Option<Scope>,
    pub op: Op,
}

const fn route(method: &'static str, path: &'static str, scope: Option<Scope>, op: Op) -> Route {
    Route {
        method,
        path,
        scope,
        op,
    }
}

use Scope::*;
pub const ROUTES: &[Route] = &[
    route("GET", "/v1/health", None, Op::Health),
    // Console sessions: the key is checked by the operation itself (a key's body, or the
    // session's cookie), whatever its scopes.
    route("POST", "/v1/session", None, Op::SessionBegin),
    route("GET", "/v1/session", None, Op::SessionShow),
    route("DELETE", "/v1/session", None, Op::SessionEnd),
    route("GET", "/v1/openapi.json", None, Op::OpenApi),
    route("GET", "/v1/t/{tenant}/streams", Some(Read), Op::Streams),
    route("GET", "/v1/t/{tenant}/metrics", Some(Read), Op::Metrics),
    route("GET", "/v1/t/{tenant}/events", Some(Read), Op::Events),
    route(
        "GET",
        "/v1/t/{tenant}/inspections",
        Some(Read),
        Op::Inspections,
    ),
    route(
        "GET",
        "/v1/t/{tenant}/compliance",
        Some(Read),
        Op::Compliance,
    ),
    route("GET", "/v1/t/{tenant}/integrity", Some(Read), Op::Integrity),
    route(
        "POST",
        "/v1/t/{tenant}/integrity/{alert_id}/acknowledge",
        Some(Write),
        Op::AcknowledgeIntegrity,
    ),
    route(
        "GET",
        "/v1/t/{tenant}/rollups/{dimension}",
        Some(Analytics),
        Op::Rollup,
    ),
    route("GET", "/v1/t/{tenant}/export", Some(Export), Op::Export),
    route("GET", "/v1/t/{tenant}/keys", Some(Admin), Op::ListKeys),
    route("POST", "/v1/t/{tenant}/keys", Some(Admin), Op::CreateKey),
    route(
        "GET",
        "/v1/t/{tenant}/keys/{key_id}",
        Some(Admin),
        Op::GetKey,
    ),
    route(
        "POST",
        "/v1/t/{tenant}/keys/{key_id}/rotate",
        Some(Admin),
        Op::RotateKey,
    ),
    route(
        "DELETE",
        "/v1/t/{tenant}/keys/{key_id}",
        Some(Admin),
        Op::RevokeKey,
    ),
    route(
        "GET",
        "/v1/t/{tenant}/webhooks",
        Some(Webhooks),
        Op::ListWebhooks,
    ),
    route(
        "POST",
        "/v1/t/{tenant}/webhooks",
        Some(Webhooks),
        Op::CreateWebhook,
    ),
    route(
        "GET",
        "/v1/t/{tenant}/webhooks/{webhook_id}",
        Some(Webhooks),
        Op::GetWebhook,
    ),
    route(
        "DELETE",
        "/v1/t/{tenant}/webhooks/{webhook_id}",
        Some(Webhooks),
        Op::DeleteWebhook,
    ),
    route(
        "GET",
        "/v1/t/{tenant}/webhooks/{webhook_id}/deliveries",
        Some(Webhooks),
        Op::Deliveries,
    ),
    route("GET", "/v1/t/{tenant}/audit", Some(Admin), Op::Audit),
    route("GET", "/v1/t/{tenant}/images", Some(Images), Op::ListImages),
    route(
        "GET",
        "/v1/t/{tenant}/images/{image_id}",
        Some(Images),
        Op::GetImage,
    ),
];

/// The route pattern `path` matches (a metrics label: never a tenant's name or an id),
/// `console` for the console's files, `unmatched` otherwise.
pub fn route_label(path: &str) -> &'static str {
    if path == "/" || path.starts_with("/console") {
        return "console";
    }
    ROUTES
        .iter()
        .find(|r| match_path(r.path, path).is_some())
        .map_or("unmatched", |r| r.path)
}

/// The path parameters of `path` if it matches `pattern`.
pub fn match_path(pattern: &str, path: &str) -> Option<HashMap<&'static str, String>> {
    let mut params = HashMap::new();
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return Some(params),
            (Some(a), Some(b)) if a.starts_with('{') && a.ends_with('}') => {
                if b.is_empty() {
                    return None;
                }
                let name = &a[1..a.len() - 1];
                let decoded = percent_decode(b)?;
                params.insert(static_name(name), decoded);
            }
            (Some(a), Some(b)) if a == b => {}
            _ => return None,
        }
    }
}

/// Path parameter names are the table's own (a closed set).
fn static_name(name: &str) -> &'static str {
    match name {
        "tenant" => "tenant",
        "alert_id" => "alert_id",
        "dimension" => "dimension",
        "key_id" => "key_id",
        "webhook_id" => "webhook_id",
        "image_id" => "image_id",
        _ => "other",
    }
}

fn percent_decode(segment: &str) -> Option<String> {
    // `+` is a plus in a path (only queries use it for a space).
    let text = format!("x={}", segment.replace('+', "%2B"));
    form_urlencoded::parse(text.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// A parsed request, as the handlers see it.
#[derive(Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    pub peer: IpAddr,
    pub authorization: Option<String>,
    /// The `Cookie` header (a console session, [`session`]).
    pub cookie: Option<String>,
    /// The `X-CSRF-Token` header.
    pub csrf: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The browser's `Sec-Fetch-Site` header (`same-origin`, `same-site`, `cross-site`, `none`).
    pub fetch_site: Option<String>,
}

/// Without the credentials (a `{:?}` in a log must not print a key or a session cookie).
impl std::fmt::Debug for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Req")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("peer", &self.peer)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The method as a metrics label: one of a fixed set (clients choose methods freely).
pub fn method_label(method: &str) -> &'static str {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("other")
}

impl Req {
    /// The API key of `Authorization: Bearer <key>`.
    pub fn bearer(&self) -> Option<&str> {
        self.authorization
            .as_deref()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A streamed body: chunks from a producer thread.
pub type Chunks = tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>;

pub enum Body {
    Json(Value),
    Raw(&'static str, Bytes),
    Stream(&'static str, Chunks),
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Reply {
    pub fn json(status: u16, value: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Json(value),
        }
    }

    /// A rejection: the status, a stable error code and a reason for people.
    pub fn error(status: u16, reason: impl Into<String>) -> Reply {
        let code = match status {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            409 => "conflict",
            413 => "payload_too_large",
            429 => "rate_limited",
            502 => "bad_gateway",
            503 => "unavailable",
            504 => "gateway_timeout",
            _ => "internal",
        };
        Reply::json(status, json!({"error": code, "reason": reason.into()}))
    }

    pub fn not_found() -> Reply {
        Reply::error(404, "no such resource")
    }

    pub fn with(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// The API's state.
pub struct Api {
    pub store: Arc<Store>,
    pub keys: KeyStore,
    pub audit: Arc<AuditLog>,
    pub config: ApiConfig,
    pub webhook_policy: crate::webhooks::Policy,
    tiers: HashMap<String, Quota>,
    limiter: RateLimiter,
    failures: RateLimiter,
    success_interval: Duration,
    /// When a key's success from an address was last logged.
    logged: Mutex<HashMap<(String, IpAddr), Instant>>,
    /// Reads of tenants other services own ([`crate::federation`]); `None`: this store only.
    pub federation: Option<crate::federation::Federation>,
    /// Console sessions.
    pub sessions: session::Sessions,
}

/// A duration setting that must not be zero, its name in the error.
fn positive_duration(name: &str, text: &str) -> anyhow::Result<Duration> {
    let d = parse_duration(text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    anyhow::ensure!(
        !d.is_zero(),
        "{name} = {text:?}: a session must last longer than 0"
    );
    Ok(d)
}

pub fn quota(requests: u32, window: &str) -> anyhow::Result<Quota> {
    Ok(Quota {
        requests,
        window: parse_duration(window)?,
    })
}

impl Api {
    pub fn new(config: &Config, store: Arc<Store>, audit: Arc<AuditLog>) -> anyhow::Result<Api> {
        let api = config.api.clone().unwrap_or_default();
        let mut tiers = HashMap::new();
        for (name, t) in &api.tiers {
            tiers.insert(name.clone(), quota(t.requests, &t.window)?);
        }
        Ok(Api {
            keys: KeyStore::open(&store)?,
            store,
            audit,
            webhook_policy: config.webhooks.policy()?,
            tiers,
            limiter: RateLimiter::default(),
            failures: RateLimiter::default(),
            success_interval: parse_duration(&config.audit.success_interval)?,
            logged: Mutex::new(HashMap::new()),
            federation: None,
            sessions: session::Sessions::new(
                positive_duration("api.session_idle", &api.session_idle)?,
                positive_duration("api.session_max", &api.session_max)?,
            ),
            config: api,
        })
    }

    pub fn has_tier(&self, tier: &str) -> bool {
        self.tiers.contains_key(tier)
    }

    pub fn note(&self, action: Action<'_>) {
        self.audit.note(&self.store, action);
    }

    fn failure_quota(&self) -> Quota {
        Quota {
            requests: self.config.auth_failures_per_minute.max(1),
            window: Duration::from_secs(60),
        }
    }

    /// Authenticates; the refusal is logged (and counted against the address).
    fn authenticate(&self, req: &Req, tenant: Option<&str>) -> Result<ApiKey, Reply> {
        let now = Instant::now();
        let token = req.bearer();
        match self.keys.authenticate(token, now_ns()) {
            Ok(key) => {
                self.note_success(&key, req, now, "key");
                Ok(key)
            }
            Err(refusal) => self.refuse(req, tenant, &refusal, now),
        }
    }

    /// A key's successful authentication, logged once per `success_interval` and address.
    fn note_success(&self, key: &ApiKey, req: &Req, now: Instant, via: &str) {
        let first = self.logged.lock().is_ok_and(|mut l| {
            let slot = l.entry((key.id.clone(), req.peer));
            match slot {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    if now.duration_since(*o.get()) >= self.success_interval {
                        o.insert(now);
                        true
                    } else {
                        false
                    }
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(now);
                    true
                }
            }
        });
        if first {
            self.note(Action {
                actor: &format!("key:{}", key.id),
                tenant: Some(&key.tenant),
                source_ip: Some(&req.peer.to_string()),
                action: "auth.success",
                outcome: "success",
                detail: json!({"method": req.method, "path": req.path, "via": via}),
            });
        }
    }

    /// A failed authentication: logged, counted against the address, 401 (429 beyond the
    /// address's failures).
    fn refuse(
        &self,
        req: &Req,
        tenant: Option<&str>,
        refusal: &keys::Refusal,
        now: Instant,
    ) -> Result<ApiKey, Reply> {
        let ip = req.peer.to_string();
        // Failures are limited per address; a valid key is never locked out by them (the
        // secrets have 256 bits: the limit protects the log, not the keys).
        if let Some(wait) = self.failures.exhausted(&ip, self.failure_quota(), now) {
            return Err(
                Reply::error(429, "too many failed authentications from this address")
                    .with("retry-after", wait.to_string()),
            );
        }
        self.failures.check(&ip, self.failure_quota(), now);
        let actor = refusal
            .key_id()
            .map(|id| format!("key:{id}"))
            .unwrap_or_else(|| "anonymous".into());
        self.note(Action {
            actor: &actor,
            tenant,
            source_ip: Some(&ip),
            action: "auth.failure",
            outcome: "failure",
            detail: json!({"reason": refusal.reason(), "method": req.method, "path": req.path}),
        });
        Err(
            Reply::error(401, "missing, invalid, revoked or expired API key")
                .with("www-authenticate", "Bearer realm=\"veil\"".into()),
        )
    }

    /// The key behind a request: its bearer key or, without one, its console session's (the
    /// key looked up again: revoked, expired or rotated since ends the session). A change
    /// through a session needs the session's CSRF token (403 without it).
    fn authenticate_request(
        &self,
        req: &Req,
        tenant: Option<&str>,
    ) -> Result<(ApiKey, Option<session::Session>), Reply> {
        let cookie = req.cookie.as_deref().and_then(session::cookie_value);
        let (Some(cookie), None) = (cookie, req.bearer()) else {
            return self.authenticate(req, tenant).map(|k| (k, None));
        };
        let now = Instant::now();
        let live = self.sessions.find(cookie, now).and_then(|s| {
            let key = self.keys.get(&s.tenant, &s.key_id)?;
            let valid = key.hash == s.key_hash && key.revoked.is_none() && !key.expired(now_ns());
            valid.then_some((key, s))
        });
        let Some((key, s)) = live else {
            self.sessions.end(cookie);
            let refusal = keys::Refusal::Session;
            return Err(self
                .refuse(req, tenant, &refusal, now)
                .map_or_else(|r| r, |_| Reply::error(401, "session ended"))
                .with("set-cookie", session::clear_cookie()));
        };
        if req.method != "GET"
            && req.method != "HEAD"
            && !session::csrf_matches(&s, req.csrf.as_deref())
        {
            return Err(Reply::error(
                403,
                "a change through a console session needs its CSRF token (X-CSRF-Token)",
            ));
        }
        self.note_success(&key, req, now, "session");
        Ok((key, Some(s)))
    }

    /// `POST /v1/session` (an API key in the body for a session cookie), `GET` (the session,
    /// its CSRF token included) and `DELETE` (sign-out). Each begin and end is audited.
    fn session_op(&self, op: Op, req: &Req) -> Reply {
        let info = |key: &ApiKey, s: &session::Session| {
            let mut v = key.public();
            v["key_id"] = v["id"].clone();
            v["csrf_token"] = s.csrf.clone().into();
            v["idle_timeout_s"] = self.sessions.idle().as_secs().into();
            v
        };
        let audit = |key: &ApiKey, action: &str| {
            self.note(Action {
                actor: &format!("key:{}", key.id),
                tenant: Some(&key.tenant),
                source_ip: Some(&req.peer.to_string()),
                action,
                outcome: "success",
                detail: json!({}),
            })
        };
        match op {
            Op::SessionBegin => {
                // Login CSRF: a page elsewhere could post a form whose body reads as JSON and
                // sign the browser in to the attacker's tenant. A form cannot send this content
                // type without a CORS preflight, and browsers name a cross-site request.
                let json = req
                    .content_type
                    .as_deref()
                    .is_some_and(|c| c.trim_start().starts_with("application/json"));
                if !json {
                    return Reply::error(400, "sign in with Content-Type: application/json");
                }
                if matches!(req.fetch_site.as_deref(), Some("cross-site" | "same-site")) {
                    return Reply::error(403, "sign-in from another site is refused");
                }
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct SignIn {
                    api_key: String,
                }
                let token = serde_json::from_slice::<SignIn>(&req.body)
                    .ok()
                    .map(|b| b.api_key);
                let Some(token) = token else {
                    return Reply::error(400, "the body must be {\"api_key\": \"veil_...\"}");
                };
                let probe = Req {
                    authorization: Some(format!("Bearer {}", token.trim())),
                    cookie: None,
                    ..req.clone()
                };
                let key = match self.authenticate(&probe, None) {
                    Ok(key) => key,
                    Err(reply) => return reply,
                };
                if let (Err(refused), _) = self.rate_limit(&key, req) {
                    return refused;
                }
                match self.sessions.begin(
                    &key.tenant,
                    &key.id,
                    &key.hash,
                    token.trim(),
                    Instant::now(),
                ) {
                    Ok((cookie, s)) => {
                        audit(&key, "session.begin");
                        Reply::json(201, info(&key, &s)).with(
                            "set-cookie",
                            session::set_cookie(&cookie, self.sessions.max()),
                        )
                    }
                    Err(e) => {
                        tracing::error!("session: {e:#}");
                        Reply::error(500, "internal error (logged by the service)")
                    }
                }
            }
            _ => match self.authenticate_request(req, None) {
                Ok((key, Some(s))) if op == Op::SessionShow => Reply::json(200, info(&key, &s)),
                Ok((key, Some(_))) => {
                    if let Some(cookie) = req.cookie.as_deref().and_then(session::cookie_value) {
                        self.sessions.end(cookie);
                    }
                    audit(&key, "session.end");
                    Reply::json(200, json!({"signed_out": true}))
                        .with("set-cookie", session::clear_cookie())
                }
                Ok((_, None)) => {
                    Reply::error(401, "no console session (sign in: POST /v1/session)")
                }
                Err(reply) => reply,
            },
        }
    }

    /// The whole gate, then the handler, in an `api_request` span (method, path, status).
    pub fn respond(&self, req: &Req) -> Reply {
        let span = tracing::debug_span!(
            "api_request",
            method = %req.method,
            path = %req.path,
            status = tracing::field::Empty
        );
        let _entered = span.enter();
        let began = Instant::now();
        let reply = self.gate(req);
        span.record("status", reply.status);
        crate::prometheus::telemetry().api_request(
            route_label(&req.path),
            method_label(&req.method),
            reply.status,
            began.elapsed().as_secs_f64(),
        );
        tracing::debug!("answered");
        reply
    }

    fn gate(&self, req: &Req) -> Reply {
        if let Some(reply) = console::serve(&req.method, &req.path) {
            return reply;
        }
        let matches: Vec<(&Route, HashMap<&'static str, String>)> = ROUTES
            .iter()
            .filter_map(|r| match_path(r.path, &req.path).map(|p| (r, p)))
            .collect();
        if matches.is_empty() {
            return Reply::not_found();
        }
        let Some((route, params)) = matches.iter().find(|(r, _)| r.method == req.method) else {
            let allow: Vec<&str> = matches.iter().map(|(r, _)| r.method).collect();
            return Reply::error(405, format!("use {}", allow.join(", ")))
                .with("allow", allow.join(", "));
        };
        if matches!(
            route.op,
            Op::SessionBegin | Op::SessionShow | Op::SessionEnd
        ) {
            return self.session_op(route.op, req);
        }
        let Some(scope) = route.scope else {
            return handlers::handle(self, route.op, req, params, None);
        };
        let tenant = params.get("tenant").map(String::as_str);
        let (key, session) = match self.authenticate_request(req, tenant) {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        // Through a session, the handlers see the session's key as a bearer key would be (reads
        // forwarded to other owners carry it).
        let with_key;
        let req = match session {
            Some(s) => {
                with_key = Req {
                    authorization: Some(format!("Bearer {}", s.token)),
                    ..req.clone()
                };
                &with_key
            }
            None => req,
        };
        let (allowed, headers) = self.rate_limit(&key, req);
        let mut reply = if let Err(refused) = allowed {
            refused
        } else if tenant.is_some_and(|t| t != key.tenant) {
            // Another tenant's: as absent as a tenant that does not exist.
            Reply::not_found()
        } else if !key.has(scope) {
            Reply::error(403, format!("this key lacks the {} scope", scope.as_str()))
        } else {
            handlers::handle(self, route.op, req, params, Some(&key))
        };
        reply.headers.extend(headers);
        reply
    }

    /// The key's tier's sliding window: the rate-limit headers, and a 429 (logged once per
    /// window) when the key has used it up.
    fn rate_limit(
        &self,
        key: &ApiKey,
        req: &Req,
    ) -> (Result<(), Reply>, [(&'static str, String); 2]) {
        let tier = self
            .tiers
            .get(&key.tier)
            .or_else(|| self.tiers.get("standard"))
            .copied()
            .unwrap_or(Quota {
                requests: 600,
                window: Duration::from_secs(60),
            });
        let decision = self.limiter.check(&key.id, tier, Instant::now());
        let headers = decision.headers(&key.tier, tier);
        if decision.allowed {
            return (Ok(()), headers);
        }
        let logged = self.logged.lock().is_ok_and(|mut l| {
            let k = (format!("rate:{}", key.id), req.peer);
            let due = l.get(&k).is_none_or(|t| t.elapsed() >= tier.window);
            if due {
                l.insert(k, Instant::now());
            }
            due
        });
        if logged {
            self.note(Action {
                actor: &format!("key:{}", key.id),
                tenant: Some(&key.tenant),
                source_ip: Some(&req.peer.to_string()),
                action: "rate.limited",
                outcome: "denied",
                detail: json!({"tier": key.tier, "path": req.path}),
            });
        }
        let refused = Reply::error(429, format!("rate limit of tier {} reached", key.tier))
            .with("retry-after", decision.reset_s.to_string());
        (Err(refused), headers)
    }

    /// The gate of a Zenoh query (history or admin), the same as an HTTPS request's: the API
    /// key the query carries as its attachment (the token, UTF-8), authenticated, limited to
    /// its tier's rate and logged in the audit log like a request (`method` `ZENOH`, `path` the
    /// key expression; Zenoh tells a queryable no address, so `source_ip` is `::`); then the
    /// scope. The error is the reply's text: the same for a missing, unknown, wrong, revoked or
    /// expired key.
    pub fn authorize_query(
        &self,
        token: Option<&str>,
        key_expr: &str,
        scope: Scope,
    ) -> Result<ApiKey, String> {
        let req = Req {
            method: "ZENOH".into(),
            path: key_expr.into(),
            query: Vec::new(),
            body: Bytes::new(),
            peer: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            authorization: token.map(|t| format!("Bearer {}", t.trim())),
            cookie: None,
            csrf: None,
            content_type: None,
            fetch_site: None,
        };
        let refused = |reply: Reply| match reply.body {
            Body::Json(v) => format!("{} {}", reply.status, v["reason"].as_str().unwrap_or("")),
            _ => reply.status.to_string(),
        };
        // Zenoh gives no peer address, so every Zenoh client shares one failed-authentication
        // bucket: when it is full the refusal stays a 401 (its reason unchanged), only the
        // logging of further failures pauses.
        let key = self
            .authenticate(&req, None)
            .map_err(|reply| match reply.status {
                429 => "401 missing, invalid, revoked or expired API key".to_string(),
                _ => refused(reply),
            })?;
        self.rate_limit(&key, &req).0.map_err(refused)?;
        if !key.has(scope) {
            return Err(format!("403 this key lacks the {} scope", scope.as_str()));
        }
        Ok(key)
    }

    /// Periodic housekeeping: forget old rate-limit windows and logged successes.
    pub fn tidy(&self) {
        let now = Instant::now();
        let longest = self
            .tiers
            .values()
            .map(|q| q.window)
            .max()
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_secs(60));
        self.limiter.prune(longest, now);
        self.sessions.tidy(now);
        self.failures.prune(Duration::from_secs(60), now);
        let keep = self.success_interval.max(longest);
        if let Ok(mut l) = self.logged.lock() {
            l.retain(|_, t| now.duration_since(*t) < keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_patterns() {
        let p = match_path("/v1/t/{tenant}/keys/{key_id}", "/v1/t/acme/keys/0123").unwrap();
        assert_eq!(p["tenant"], "acme");
        assert_eq!(p["key_id"], "0123");
        assert!(match_path("/v1/t/{tenant}/keys", "/v1/t/acme/keys/x").is_none());
        assert!(match_path("/v1/t/{tenant}/keys", "/v1/t//keys").is_none());
        let p = match_path("/v1/t/{tenant}/streams", "/v1/t/a%20b/streams").unwrap();
        assert_eq!(p["tenant"], "a b");
    }

    #[test]
    fn the_openapi_document_states_each_routes_scope() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented = 0;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                documented += 1;
                let route = ROUTES
                    .iter()
                    .find(|r| r.path == path && r.method.eq_ignore_ascii_case(method))
                    .unwrap_or_else(|| panic!("{method} {path} is documented, not served"));
                let scope = op.get("x-veil-scope").and_then(Value::as_str);
                assert_eq!(scope, route.scope.map(Scope::as_str), "{method} {path}");
            }
        }
        assert_eq!(documented, ROUTES.len(), "a served route is not documented");
    }
}
