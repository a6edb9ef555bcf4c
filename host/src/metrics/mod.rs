//! The host's metrics, for Prometheus: connections, calls, traps, compiles,
//! deployments, refused frames and registry failures as they happen, and
//! the runtimes' instances, memory and compile cache read at each scrape
//! (see `runtimes`). `endpoint` serves them over HTTP.
//!
//! Nothing is recorded until [`enable`] is called, so a host that exports
//! no metrics pays one atomic load where it would record. Every family is
//! bounded in series: label values come partly from guests (a deployed
//! component names its own classes and exceptions), so past
//! [`MAX_SERIES_PER_FAMILY`] new label sets are counted under `_other`.

mod endpoint;
mod runtimes;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

pub use endpoint::{MAX_SCRAPES, SCRAPE_TIMEOUT, serve};
use runtimes::Runtimes;

use crate::exception::Exception;
use crate::wasm::Runtime;

/// How many label sets one family keeps apart; past it, new ones are
/// counted together under the value `_other`.
pub const MAX_SERIES_PER_FAMILY: usize = 2000;

/// The longest label value kept; longer ones are cut (at a character).
pub const MAX_LABEL_BYTES: usize = 64;

/// The value every label of the overflow series has.
const OTHER: &str = "_other";

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Starts recording the host's metrics (once per process; later calls
/// return the same metrics).
pub fn enable() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// The metrics, if they are being recorded.
pub(crate) fn recording() -> Option<&'static Metrics> {
    METRICS.get()
}

/// The host's metrics: see the module's documentation.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    runtimes: Runtimes,
    connections_open: Bounded<ServiceLabels, Gauge>,
    connections_accepted: Bounded<ServiceLabels, Counter>,
    connections_refused: Bounded<RefusalLabels, Counter>,
    calls: Bounded<CallLabels, Counter>,
    call_seconds: Bounded<MethodLabels, Histogram, fn() -> Histogram>,
    traps: Bounded<TrapLabels, Counter>,
    compile_seconds: Histogram,
    deployments: Family<OutcomeLabels, Counter>,
    deployments_live: Gauge,
    deploy_cache_lookups: Family<OutcomeLabels, Counter>,
    deploy_cache_components: Gauge,
    deploy_cache_bytes: Gauge,
    frames_too_large: Family<DirectionLabels, Counter>,
    registry_failures: Counter,
}

impl Metrics {
    fn new() -> Self {
        let metrics = Metrics {
            registry: Registry::with_prefix("wasm_rpyc"),
            runtimes: Runtimes::default(),
            connections_open: Bounded::new(ServiceLabels::other()),
            connections_accepted: Bounded::new(ServiceLabels::other()),
            connections_refused: Bounded::new(RefusalLabels::other()),
            calls: Bounded::new(CallLabels::other()),
            call_seconds: Bounded::with_constructor(MethodLabels::other(), call_histogram),
            traps: Bounded::new(TrapLabels::other()),
            compile_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 12)),
            deployments: Family::default(),
            deployments_live: Gauge::default(),
            deploy_cache_lookups: Family::default(),
            deploy_cache_components: Gauge::default(),
            deploy_cache_bytes: Gauge::default(),
            frames_too_large: Family::default(),
            registry_failures: Counter::default(),
        };
        metrics.registered()
    }

    /// These metrics, with every family in the registry.
    fn registered(mut self) -> Self {
        let registry = &mut self.registry;
        registry.register_collector(Box::new(self.runtimes.clone()));
        registry.register(
            "connections_open",
            "Connections served now, per service",
            self.connections_open.family.clone(),
        );
        registry.register(
            "connections_accepted",
            "Connections given a slot, per service",
            self.connections_accepted.family.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused, per service and reason (per_address: its address has its \
             share; full: every slot is taken)",
            self.connections_refused.family.clone(),
        );
        registry.register(
            "calls",
            "Calls into services, per service, method (Class.method for an object's) and \
             outcome (ok, or the class of the exception raised)",
            self.calls.family.clone(),
        );
        registry.register_with_unit(
            "call_duration",
            "How long calls into services took, waiting on the peer included",
            Unit::Seconds,
            self.call_seconds.family.clone(),
        );
        registry.register(
            "traps",
            "Guest instances stopped, per service and kind (cpu_budget, deadline, memory, or \
             the trap's code); each is replaced by a fresh instance",
            self.traps.family.clone(),
        );
        registry.register_with_unit(
            "compile_duration",
            "How long loading a component took (compiled, or read from the compile cache)",
            Unit::Seconds,
            self.compile_seconds.clone(),
        );
        registry.register(
            "deployments",
            "Components handed to DEPLOY, per outcome (deployed, or failed: refused, or not a service)",
            self.deployments.clone(),
        );
        registry.register(
            "deployments_live",
            "Deployed services running now",
            self.deployments_live.clone(),
        );
        registry.register(
            "deploy_cache_lookups",
            "Deployed components looked up in DEPLOY's cache of compiled components, per \
             outcome (hit, miss)",
            self.deploy_cache_lookups.clone(),
        );
        registry.register(
            "deploy_cache_components",
            "Compiled components DEPLOY's cache holds",
            self.deploy_cache_components.clone(),
        );
        registry.register_with_unit(
            "deploy_cache",
            "Compiled code DEPLOY's cache holds",
            Unit::Bytes,
            self.deploy_cache_bytes.clone(),
        );
        registry.register(
            "frames_too_large",
            "Frames refused for exceeding the connection's limit, per direction (in: from the \
             peer, whose connection is closed; out: a reply or call that failed alone)",
            self.frames_too_large.clone(),
        );
        registry.register(
            "registry_failures",
            "Registrations with the RPyC registry that failed",
            self.registry_failures.clone(),
        );
        registry.register(
            "build",
            "The host's version",
            Info::new(VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            }),
        );
        self
    }

    /// Reports the instances, guest memory and compile cache of `runtime`
    /// at every scrape, for as long as it lives (several runtimes add up).
    pub fn watch(&self, runtime: &Runtime) {
        self.runtimes.watch(runtime);
    }

    /// The metrics in the OpenMetrics text format, as a scrape gets them.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// A connection to `service` got a slot; it counts as open until the
    /// returned guard is dropped.
    pub(crate) fn connection_opened(&self, service: &str) -> Open {
        let labels = ServiceLabels::new(service);
        self.connections_accepted.get(labels.clone()).inc();
        let open = self.connections_open.get(labels);
        open.inc();
        Open(open)
    }

    /// A connection to `service` was refused, for `reason`.
    pub(crate) fn connection_refused(&self, service: &str, reason: Refusal) {
        let labels = RefusalLabels {
            service: label(service),
            reason: reason.as_str().to_owned(),
        };
        self.connections_refused.get(labels).inc();
    }

    /// A call to `service`'s `method` (`Class.method` for an object's)
    /// ended with `result` after `elapsed`.
    pub(crate) fn call<T>(
        &self,
        service: &str,
        method: &str,
        result: &Result<T, Exception>,
        elapsed: Duration,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(exception) => &exception.type_name,
        };
        let method = MethodLabels {
            service: label(service),
            method: label(method),
        };
        let call = CallLabels {
            service: method.service.clone(),
            method: method.method.clone(),
            outcome: label(outcome),
        };
        self.calls.get(call).inc();
        self.call_seconds.get(method).observe(elapsed.as_secs_f64());
    }

    /// An instance of `service` was stopped (`kind`: see the `traps`
    /// family's help).
    pub(crate) fn trap(&self, service: &str, kind: &str) {
        let labels = TrapLabels {
            service: label(service),
            kind: label(kind),
        };
        self.traps.get(labels).inc();
    }

    /// A component was loaded in `elapsed`.
    pub(crate) fn compiled(&self, elapsed: Duration) {
        self.compile_seconds.observe(elapsed.as_secs_f64());
    }

    /// A component handed to DEPLOY was deployed (`true`) or not.
    pub(crate) fn deployment(&self, deployed: bool) {
        let outcome = if deployed { "deployed" } else { "failed" };
        self.deployments
            .get_or_create(&OutcomeLabels::new(outcome))
            .inc();
    }

    /// A deployed service started; it counts as running until the
    /// returned guard is dropped.
    pub(crate) fn deployment_started(&self) -> Open {
        self.deployments_live.inc();
        Open(self.deployments_live.clone())
    }

    /// A deployed component was found in DEPLOY's cache (`true`) or not.
    pub(crate) fn deploy_cache_lookup(&self, hit: bool) {
        let outcome = if hit { "hit" } else { "miss" };
        self.deploy_cache_lookups
            .get_or_create(&OutcomeLabels::new(outcome))
            .inc();
    }

    /// DEPLOY's cache now holds `components` compiled components, of
    /// `bytes` bytes of code.
    pub(crate) fn deploy_cache_holds(&self, components: usize, bytes: usize) {
        self.deploy_cache_components.set(gauge(components));
        self.deploy_cache_bytes.set(gauge(bytes));
    }

    /// A frame was refused as too large, coming in (`true`) or going out.
    pub(crate) fn frame_too_large(&self, incoming: bool) {
        let direction = if incoming { "in" } else { "out" };
        let labels = DirectionLabels {
            direction: direction.to_owned(),
        };
        self.frames_too_large.get_or_create(&labels).inc();
    }

    /// A registration with the registry failed.
    pub(crate) fn registration_failed(&self) {
        self.registry_failures.inc();
    }
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refusal {
    /// Its address has as many connections as one may.
    PerAddress,
    /// Every slot is taken and none is idle long enough to give way.
    Full,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::PerAddress => "per_address",
            Refusal::Full => "full",
        }
    }
}

/// Something counted as open (a connection, a deployment) while it lives.
#[derive(Debug)]
pub(crate) struct Open(Gauge);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The buckets of call durations: 50 µs to about 45 s.
fn call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.5, 16))
}

/// `value` as a label value: at most [`MAX_LABEL_BYTES`], cut at a
/// character.
fn label(value: &str) -> String {
    let mut end = value.len().min(MAX_LABEL_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// `value` as a gauge's value.
fn gauge(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A family that keeps at most [`MAX_SERIES_PER_FAMILY`] label sets apart;
/// past it, new ones share the series of `other`.
#[derive(Debug)]
struct Bounded<S, M, C = fn() -> M> {
    family: Family<S, M, C>,
    /// The label sets kept apart so far.
    series: AtomicUsize,
    other: S,
}

impl<S, M: Default> Bounded<S, M> {
    fn new(other: S) -> Self
    where
        S: Clone + std::hash::Hash + Eq,
    {
        Bounded {
            family: Family::new_with_constructor(M::default),
            series: AtomicUsize::new(0),
            other,
        }
    }
}

impl<S, M, C> Bounded<S, M, C>
where
    S: Clone + std::hash::Hash + Eq,
    M: Clone,
    C: MetricConstructor<M>,
{
    fn with_constructor(other: S, constructor: C) -> Self {
        Bounded {
            family: Family::new_with_constructor(constructor),
            series: AtomicUsize::new(0),
            other,
        }
    }

    /// The metric of `labels` (or of the overflow series).
    fn get(&self, labels: S) -> M {
        if let Some(metric) = self.family.get(&labels) {
            return metric.clone();
        }
        // Two threads may make the same series at once and count it twice:
        // the bound errs on the safe side.
        if self.series.fetch_add(1, Ordering::Relaxed) >= MAX_SERIES_PER_FAMILY {
            self.series.fetch_sub(1, Ordering::Relaxed);
            return self.family.get_or_create_owned(&self.other);
        }
        self.family.get_or_create_owned(&labels)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

impl ServiceLabels {
    fn new(service: &str) -> Self {
        ServiceLabels {
            service: label(service),
        }
    }

    fn other() -> Self {
        Self::new(OTHER)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    service: String,
    reason: String,
}

impl RefusalLabels {
    fn other() -> Self {
        RefusalLabels {
            service: OTHER.to_owned(),
            reason: OTHER.to_owned(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: String,
    method: String,
}

impl MethodLabels {
    fn other() -> Self {
        MethodLabels {
            service: OTHER.to_owned(),
            method: OTHER.to_owned(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    method: String,
    outcome: String,
}

impl CallLabels {
    fn other() -> Self {
        CallLabels {
            service: OTHER.to_owned(),
            method: OTHER.to_owned(),
            outcome: OTHER.to_owned(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrapLabels {
    service: String,
    kind: String,
}

impl TrapLabels {
    fn other() -> Self {
        TrapLabels {
            service: OTHER.to_owned(),
            kind: OTHER.to_owned(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

impl OutcomeLabels {
    fn new(outcome: &str) -> Self {
        OutcomeLabels {
            outcome: outcome.to_owned(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_keeps_at_most_its_bound_of_series() {
        let family: Bounded<ServiceLabels, Counter> = Bounded::new(ServiceLabels::other());
        for n in 0..MAX_SERIES_PER_FAMILY + 50 {
            family.get(ServiceLabels::new(&format!("service{n}"))).inc();
        }
        let text = {
            let mut registry = Registry::default();
            registry.register("test", "test", family.family.clone());
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            text
        };
        assert_eq!(
            text.matches("test_total{").count(),
            MAX_SERIES_PER_FAMILY + 1
        );
        assert_eq!(family.get(ServiceLabels::other()).get(), 50);
        // A series kept apart goes on counting on its own.
        family.get(ServiceLabels::new("service0")).inc();
        assert_eq!(family.get(ServiceLabels::new("service0")).get(), 2);
    }

    #[test]
    fn long_label_values_are_cut_at_a_character() {
        let long = "é".repeat(MAX_LABEL_BYTES);
        let cut = label(&long);
        assert!(cut.len() <= MAX_LABEL_BYTES && cut.len() >= MAX_LABEL_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(label("add"), "add");
    }

    #[test]
    fn the_text_has_every_family_and_what_was_recorded() {
        let metrics = enable();
        metrics.call(
            "unit-test-service",
            "Account.deposit",
            &Err::<(), _>(Exception::value_error("no")),
            Duration::from_millis(3),
        );
        let text = metrics.encode();
        assert!(
            text.contains(
                "wasm_rpyc_calls_total{service=\"unit-test-service\",method=\"Account.deposit\",\
                 outcome=\"ValueError\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("wasm_rpyc_call_duration_seconds_bucket{"));
        assert!(text.contains("# TYPE wasm_rpyc_registry_failures counter"));
        assert!(text.ends_with("# EOF\n"));
    }
}
