//! Which rules decide, and how their reloads went.

use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};
use std::sync::{Arc, Mutex};

/// The rule-version info metric and the reload families.
#[derive(Clone)]
pub struct RuleMetrics {
    info: IntGaugeVec,
    /// The version `info` shows now.
    shown: Arc<Mutex<String>>,
    /// Success, failure, unchanged.
    reloads: [IntCounter; 3],
    last_successful: IntGauge,
}

/// How a reload ended, the label of `handoff_rules_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// New rules installed.
    Success,
    /// The file was refused: the old rules still decide.
    Failure,
    /// The file's content is the one already running: nothing to do.
    Unchanged,
}

impl ReloadResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Success => "success",
            ReloadResult::Failure => "failure",
            ReloadResult::Unchanged => "unchanged",
        }
    }
}

impl RuleMetrics {
    pub(super) fn register(r: &Registry, version: &str) -> RuleMetrics {
        let info = super::registered(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "handoff_rule_info",
                    "The rule version of the matrix deciding new events (always 1).",
                ),
                &["version"],
            ),
        );
        info.with_label_values(&[version]).set(1);
        let reloads = super::counter_vec(
            r,
            "handoff_rules_reloads_total",
            "Matrix reloads (SIGHUP, POST /-/reload, or a change seen by [matrix] watch), by \
             result (success, failure: the old rules still decide, unchanged: same content).",
            &["result"],
        );
        let last_successful = super::registered(
            r,
            IntGauge::new(
                "handoff_rules_last_reload_successful",
                "1 when the last matrix reload succeeded (or none was tried), 0 when it failed \
                 and older rules still decide.",
            ),
        );
        last_successful.set(1);
        let results = [
            ReloadResult::Success,
            ReloadResult::Failure,
            ReloadResult::Unchanged,
        ];
        RuleMetrics {
            info,
            shown: Arc::new(Mutex::new(version.to_string())),
            reloads: results.map(|x| reloads.with_label_values(&[x.as_str()])),
            last_successful,
        }
    }

    /// Records a reload's result; on success, `handoff_rule_info` switches to `version`.
    pub fn reloaded(&self, result: ReloadResult, version: &str) {
        self.reloads[result as usize].inc();
        match result {
            ReloadResult::Failure => self.last_successful.set(0),
            ReloadResult::Unchanged => self.last_successful.set(1),
            ReloadResult::Success => {
                self.last_successful.set(1);
                let mut shown = self.shown.lock().expect("rule info lock");
                if *shown != version {
                    let _ = self.info.remove_label_values(&[shown.as_str()]);
                    self.info.with_label_values(&[version]).set(1);
                    *shown = version.to_string();
                }
            }
        }
    }
}
