//! What every sandbox fake shares: a request log that tests and benchmarks read to count calls,
//! and fault and latency injection per route.
//!
//! Routes are named `METHOD /matched/path/{param}` (the axum route pattern), e.g.
//! `POST /services/data/{version}/composite`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Bodies above this are not kept in the log (they are still served).
const LOGGED_BODY_LIMIT: usize = 1 << 20;

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub service: &'static str,
    pub method: String,
    /// The route pattern, e.g. `GET /services/data/{version}/query`.
    pub route: String,
    /// The path and query as sent.
    pub uri: String,
    pub body: String,
    pub status: u16,
    /// True when the answer came from an injected fault.
    pub injected: bool,
}

/// A canned answer for the next requests to a route.
#[derive(Debug, Clone)]
pub struct Fault {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
    /// How many requests get this answer.
    pub times: usize,
}

impl Fault {
    /// Answers `status` with a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> Fault {
        Fault {
            status,
            body: body.to_string(),
            headers: vec![("content-type".into(), "application/json".into())],
            delay: Duration::ZERO,
            times: 1,
        }
    }

    pub fn times(mut self, n: usize) -> Fault {
        self.times = n;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delay(mut self, d: Duration) -> Fault {
        self.delay = d;
        self
    }
}

#[derive(Default)]
struct Inner {
    log: Vec<LoggedRequest>,
    faults: HashMap<String, Vec<Fault>>,
    latency: HashMap<String, Duration>,
    default_latency: Duration,
    chaos: Option<(ChaosPlan, FaultsFor)>,
    kill: Option<crate::kill::KillSwitch>,
}

/// The failures a fake answers on a route under chaos (its own error shapes).
pub type FaultsFor = fn(&str) -> Vec<Fault>;

/// What chaos did to one request.
#[derive(Debug, Clone)]
enum Act {
    /// Answered with a failure before doing anything.
    Fail(Box<Fault>),
    /// Done, but the answer never reaches the caller (the connection breaks mid-answer), as
    /// when a call times out after the server acted.
    LoseAnswer,
    /// Done and answered, then the caller's process dies before it can act on the answer.
    Crash,
}

/// Counts of what chaos injected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChaosStats {
    pub requests: usize,
    pub failures: usize,
    pub lost_answers: usize,
    pub crashes: usize,
}

struct PlanState {
    rng: rand::rngs::StdRng,
    rate: f64,
    crashes: bool,
    stats: ChaosStats,
}

/// One seeded source of faults shared by every fake, so a seed replays the same faults in the
/// same order: each request fails with probability `rate` (a failure of the fake's own shape, a
/// lost answer, or, for writes, a crash of the caller right after the effect).
#[derive(Clone)]
pub struct ChaosPlan {
    state: Arc<Mutex<PlanState>>,
    crashed: Arc<tokio::sync::Notify>,
}

impl ChaosPlan {
    pub fn new(seed: u64, rate: f64) -> ChaosPlan {
        use rand::SeedableRng;
        ChaosPlan {
            state: Arc::new(Mutex::new(PlanState {
                rng: rand::rngs::StdRng::seed_from_u64(seed),
                rate,
                crashes: true,
                stats: ChaosStats::default(),
            })),
            crashed: Arc::new(tokio::sync::Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PlanState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Turns chaos off (or on again) without losing its statistics.
    pub fn set_rate(&self, rate: f64) {
        self.lock().rate = rate;
    }

    /// Whether writes may crash their caller.
    pub fn set_crashes(&self, on: bool) {
        self.lock().crashes = on;
    }

    pub fn stats(&self) -> ChaosStats {
        self.lock().stats.clone()
    }

    /// Resolves when a request chose to crash its caller: race it against the caller's future
    /// and drop the caller.
    pub async fn crashed(&self) {
        self.crashed.notified().await
    }

    fn roll(&self, method: &str, failures: &[Fault]) -> Option<Act> {
        use rand::Rng;
        let mut s = self.lock();
        s.stats.requests += 1;
        let rate = s.rate;
        if rate <= 0.0 || !s.rng.random_bool(rate.min(1.0)) {
            return None;
        }
        let write = !matches!(method, "GET" | "HEAD");
        let kinds = failures.len() + 1 + usize::from(write && s.crashes);
        let pick = s.rng.random_range(0..kinds);
        let act = if pick < failures.len() {
            s.stats.failures += 1;
            Act::Fail(Box::new(failures[pick].clone()))
        } else if pick == failures.len() {
            s.stats.lost_answers += 1;
            Act::LoseAnswer
        } else {
            s.stats.crashes += 1;
            Act::Crash
        };
        Some(act)
    }
}

/// The log and the fault plan of one fake, shared with the tests that drive it.
#[derive(Clone)]
pub struct Observer {
    service: &'static str,
    inner: Arc<Mutex<Inner>>,
}

impl Observer {
    pub fn new(service: &'static str) -> Observer {
        Observer {
            service,
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// How many requests reached `route`.
    pub fn count(&self, route: &str) -> usize {
        self.lock().log.iter().filter(|r| r.route == route).count()
    }

    pub fn total(&self) -> usize {
        self.lock().log.len()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// The next `fault.times` requests to `route` get `fault` instead of the real answer.
    pub fn inject(&self, route: &str, fault: Fault) {
        self.lock()
            .faults
            .entry(route.to_string())
            .or_default()
            .push(fault);
    }

    /// Lets `plan` fail this fake's requests, with `faults` giving the failures of each route.
    pub fn set_chaos(&self, plan: ChaosPlan, faults: FaultsFor) {
        self.lock().chaos = Some((plan, faults));
    }

    /// Reports every write this fake answers with success to `switch` as an effect.
    pub fn set_kill(&self, switch: crate::kill::KillSwitch) {
        self.lock().kill = Some(switch);
    }

    /// A write was done: the caller's process may die now. Named by its route, and by the
    /// `action` of a form-encoded body (WHMCS names its calls so, on one route).
    fn written(&self, route: &str, body: &[u8]) {
        let switch = self.lock().kill.clone();
        if let Some(switch) = switch {
            let action = String::from_utf8_lossy(body)
                .split('&')
                .find_map(|pair| pair.strip_prefix("action=").map(str::to_string));
            let what = match action {
                Some(action) => format!("{} {route} {action}", self.service),
                None => format!("{} {route}", self.service),
            };
            switch.effect(what);
        }
    }

    fn chaos_act(&self, method: &str, route: &str) -> Option<Act> {
        let (plan, faults) = self.lock().chaos.clone()?;
        plan.roll(method, &faults(route))
    }

    fn crash(&self) {
        if let Some((plan, _)) = self.lock().chaos.as_ref() {
            plan.crashed.notify_one();
        }
    }

    /// Every answer from `route` takes `latency` from the request's arrival (or longer, if the
    /// fake's own work takes longer).
    pub fn set_latency(&self, route: &str, latency: Duration) {
        self.lock().latency.insert(route.to_string(), latency);
    }

    /// Every answer of this fake takes `latency` from the request's arrival (or longer, if the
    /// fake's own work takes longer).
    pub fn set_default_latency(&self, latency: Duration) {
        self.lock().default_latency = latency;
    }

    fn plan(&self, route: &str) -> (Duration, Option<Fault>) {
        let mut inner = self.lock();
        let latency = inner
            .latency
            .get(route)
            .copied()
            .unwrap_or(inner.default_latency);
        let fault = match inner.faults.get_mut(route) {
            Some(queue) if !queue.is_empty() => {
                let first = &mut queue[0];
                let fault = first.clone();
                first.times = first.times.saturating_sub(1);
                if first.times == 0 {
                    queue.remove(0);
                }
                Some(fault)
            }
            _ => None,
        };
        (latency, fault)
    }

    fn record(&self, entry: LoggedRequest) {
        self.lock().log.push(entry);
    }
}

/// Axum middleware (install with `route_layer`): applies latency and faults, then logs.
pub async fn observe(
    State(observer): State<Observer>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let arrived = tokio::time::Instant::now();
    let method = request.method().to_string();
    let route = format!(
        "{method} {}",
        matched.as_ref().map(|m| m.as_str()).unwrap_or("?")
    );
    let uri = request.uri().to_string();
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let logged_body = if bytes.len() <= LOGGED_BODY_LIMIT {
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        format!("<{} bytes>", bytes.len())
    };
    let (latency, fault) = observer.plan(&route);
    // The injected latency is the answer's time from arrival, the fake's own work included (as a
    // real service's response time includes its work): the fake acts at once and holds the answer
    // until `answer_at`, so a loaded test process does not add its work on top of the latency.
    // ASSUMED (the sandbox's model, not a documented fact of any of the APIs): a service's work is
    // done early in its response time, so a caller that gives up within the latency finds it done.
    let answer_at = arrived + latency;
    let act = match fault {
        Some(f) => Some(Act::Fail(Box::new(f))),
        None => observer.chaos_act(&method, &route),
    };
    let (response, injected) = match act {
        Some(Act::Fail(fault)) => {
            tokio::time::sleep_until(answer_at + fault.delay).await;
            (fault_response(&fault), true)
        }
        Some(Act::LoseAnswer) => {
            let done = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            tokio::time::sleep_until(answer_at).await;
            let (head, _) = done.into_parts();
            let broken = futures_util::stream::once(async {
                Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "answer lost",
                ))
            });
            (Response::from_parts(head, Body::from_stream(broken)), true)
        }
        Some(Act::Crash) => {
            let done = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            tokio::time::sleep_until(answer_at).await;
            observer.crash();
            (done, true)
        }
        None => {
            let done = next
                .run(Request::from_parts(parts, Body::from(bytes.clone())))
                .await;
            tokio::time::sleep_until(answer_at).await;
            if !matches!(method.as_str(), "GET" | "HEAD") && done.status().is_success() {
                observer.written(&route, &bytes);
            }
            (done, false)
        }
    };
    observer.record(LoggedRequest {
        service: observer.service,
        method,
        route,
        uri,
        body: logged_body,
        status: response.status().as_u16(),
        injected,
    });
    response
}

fn fault_response(fault: &Fault) -> Response {
    let mut response = Response::new(Body::from(fault.body.clone()));
    *response.status_mut() =
        StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &fault.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}
