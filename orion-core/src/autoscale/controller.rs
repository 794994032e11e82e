//! The leader's autoscaling controller.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use super::{AutoscaleConfig, AutoscaleRecord, RecommendationWindow, ServiceUsage, evaluate};
use crate::node::Clock;
use crate::store::{ClusterStore, Compare, Store, keys};

/// What one autoscale round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AutoscaleRoundReport {
    /// Autoscaled services evaluated.
    pub evaluated: usize,
    /// Services whose `replicas` changed: name, from, to.
    pub scaled: Vec<(String, u32, u32)>,
    /// Records written (changes, and evaluations whose outcome differs from the last stored).
    pub written: usize,
    /// Writes that found the spec, the record or the fence moved (decided again next round).
    pub conflicts: usize,
    /// Stale usage reports and records of deleted services removed.
    pub collected: usize,
}

/// Evaluates every service with a `scale_policy` and changes its `replicas` (see the module
/// docs). Its only state outside the store is each service's scale-down stabilization window,
/// which a new leader starts afresh (and then scales nothing down for one window).
pub struct AutoscaleController<S> {
    store: ClusterStore<S>,
    clock: Arc<dyn Clock>,
    config: AutoscaleConfig,
    windows: Mutex<HashMap<String, RecommendationWindow>>,
}

impl<S> std::fmt::Debug for AutoscaleController<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoscaleController")
            .field("config", &self.config)
            .finish()
    }
}

impl<S: Store> AutoscaleController<S> {
    pub fn new(store: ClusterStore<S>, clock: Arc<dyn Clock>, config: AutoscaleConfig) -> Self {
        AutoscaleController {
            store,
            clock,
            config,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn config(&self) -> AutoscaleConfig {
        self.config
    }

    /// Forgets every stabilization window (a new leadership starts them afresh).
    pub fn reset(&self) {
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// One pass over every autoscaled service; every write checks `fence` (when given).
    pub async fn round(&self, fence: Option<&Compare>) -> crate::Result<AutoscaleRoundReport> {
        let now = self.clock.now();
        let services = self.store.list_services().await?;
        let reports = self.store.list_usage_reports().await?;
        let records: HashMap<String, (AutoscaleRecord, u64)> = self
            .store
            .list_autoscale()
            .await?
            .into_iter()
            .map(|(r, rev)| (r.service.clone(), (r, rev)))
            .collect();
        let stale_ms = u64::try_from(self.config.stale_after.as_millis()).unwrap_or(u64::MAX);
        let fresh_since = now.saturating_sub(stale_ms);
        let mut report = AutoscaleRoundReport::default();

        let mut writes = Vec::new();
        {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            windows.retain(|name, _| {
                services
                    .iter()
                    .any(|s| &s.spec.name == name && s.spec.scale_policy.is_some())
            });
            for svc in &services {
                let Some(policy) = &svc.spec.scale_policy else {
                    continue;
                };
                let name = svc.spec.name.as_str();
                report.evaluated += 1;
                let usage = ServiceUsage::from_reports(
                    reports.iter().filter(|r| r.service == name),
                    fresh_since,
                );
                let (mut record, record_rev) = records.get(name).cloned().unwrap_or_else(|| {
                    let record = AutoscaleRecord {
                        service: name.to_owned(),
                        ..AutoscaleRecord::default()
                    };
                    (record, 0)
                });
                let window = windows
                    .entry(name.to_owned())
                    .or_insert_with(|| RecommendationWindow::new(now));
                let current = svc.spec.replicas;
                let eval = evaluate(now, current, policy, usage, record.last_change_at, window);
                let changed = eval.to != current;
                if !changed && record.last.as_ref().map(|d| d.outcome) == Some(eval.outcome) {
                    continue;
                }
                record.note(eval.decision(current, now, policy));
                let replicas = changed.then_some((eval.to, svc.mod_revision));
                writes.push((record, record_rev, replicas, current, eval));
            }
        }
        for (record, record_rev, replicas, current, eval) in writes {
            let name = record.service.clone();
            match self
                .store
                .put_autoscale_if(&record, record_rev, replicas, fence)
                .await
            {
                Ok(true) => {
                    report.written += 1;
                    if let Some((to, _)) = replicas {
                        info!(
                            service = %name,
                            from = current,
                            to,
                            outcome = eval.outcome.as_str(),
                            reason = %eval.reason,
                            "autoscaled"
                        );
                        report.scaled.push((name, current, to));
                    }
                }
                Ok(false) => report.conflicts += 1,
                Err(e) => {
                    warn!(service = %name, error = %e, "cannot store the autoscale decision");
                    report.conflicts += 1;
                }
            }
        }

        // Reports of deleted (or no longer autoscaled) services and long-stale ones, and
        // records of deleted services.
        let autoscaled: HashSet<&str> = services
            .iter()
            .filter(|s| s.spec.scale_policy.is_some())
            .map(|s| s.spec.name.as_str())
            .collect();
        let existing: HashSet<&str> = services.iter().map(|s| s.spec.name.as_str()).collect();
        let forget_before = now.saturating_sub(stale_ms.saturating_mul(10));
        let mut dead: Vec<String> = reports
            .iter()
            .filter(|r| !autoscaled.contains(r.service.as_str()) || r.sampled_at < forget_before)
            .map(|r| keys::usage(&r.service, &r.node))
            .collect();
        dead.extend(
            records
                .keys()
                .filter(|s| !existing.contains(s.as_str()))
                .map(|s| keys::autoscale(s)),
        );
        dead.truncate(256);
        let n = dead.len();
        if n > 0 && self.store.delete_autoscale_keys(dead, fence).await? {
            report.collected = n;
        }
        Ok(report)
    }
}
