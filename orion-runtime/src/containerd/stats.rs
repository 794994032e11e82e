//! Stats from `Tasks.Metrics`, which returns the shim's cgroup metrics as a protobuf `Any`:
//! `io.containerd.cgroups.v1.Metrics` on cgroup v1 hosts, `io.containerd.cgroups.v2.Metrics` on
//! v2. Only the fields Orion reads are declared here (protobuf skips the rest).

use std::time::{Duration, Instant};

use containerd_client::services::v1::MetricsRequest;
use orion_core::runtime::ContainerStats;
use prost::Message;

use super::ContainerdRuntime;
use super::errors::on;
use crate::error::{Result, RuntimeError};

/// Time between the two CPU samples a stats call takes.
const CPU_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// cgroup v1 reports "no limit" as a number near `i64::MAX`.
const UNLIMITED_ABOVE: u64 = 1 << 60;

#[derive(Clone, PartialEq, Message)]
struct V1Metrics {
    #[prost(message, optional, tag = "3")]
    cpu: Option<V1Cpu>,
    #[prost(message, optional, tag = "4")]
    memory: Option<V1Memory>,
    #[prost(message, optional, tag = "9")]
    memory_oom_control: Option<V1OomControl>,
}

#[derive(Clone, PartialEq, Message)]
struct V1OomControl {
    #[prost(uint64, tag = "3")]
    oom_kill: u64,
}

#[derive(Clone, PartialEq, Message)]
struct V1Cpu {
    #[prost(message, optional, tag = "1")]
    usage: Option<V1CpuUsage>,
}

#[derive(Clone, PartialEq, Message)]
struct V1CpuUsage {
    /// Nanoseconds.
    #[prost(uint64, tag = "1")]
    total: u64,
}

#[derive(Clone, PartialEq, Message)]
struct V1Memory {
    #[prost(uint64, tag = "30")]
    total_inactive_file: u64,
    #[prost(message, optional, tag = "33")]
    usage: Option<V1MemoryEntry>,
}

#[derive(Clone, PartialEq, Message)]
struct V1MemoryEntry {
    #[prost(uint64, tag = "1")]
    limit: u64,
    #[prost(uint64, tag = "2")]
    usage: u64,
}

#[derive(Clone, PartialEq, Message)]
struct V2Metrics {
    #[prost(message, optional, tag = "2")]
    cpu: Option<V2Cpu>,
    #[prost(message, optional, tag = "4")]
    memory: Option<V2Memory>,
    #[prost(message, optional, tag = "8")]
    memory_events: Option<V2MemoryEvents>,
}

#[derive(Clone, PartialEq, Message)]
struct V2MemoryEvents {
    #[prost(uint64, tag = "5")]
    oom_kill: u64,
}

#[derive(Clone, PartialEq, Message)]
struct V2Cpu {
    #[prost(uint64, tag = "1")]
    usage_usec: u64,
}

#[derive(Clone, PartialEq, Message)]
struct V2Memory {
    #[prost(uint64, tag = "13")]
    inactive_file: u64,
    #[prost(uint64, tag = "32")]
    usage: u64,
    #[prost(uint64, tag = "33")]
    usage_limit: u64,
}

/// One reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    pub cpu_nanos: u64,
    /// Usage without the inactive page cache, as `docker stats` reports it.
    pub memory_bytes: u64,
    pub memory_limit: Option<u64>,
    /// Processes of the cgroup the kernel's OOM killer ended.
    pub oom_kills: u64,
}

/// Decodes a metrics `Any` by its type URL.
pub(crate) fn decode_sample(type_url: &str, value: &[u8]) -> Result<Sample> {
    let corrupt = |e: prost::DecodeError| RuntimeError::CorruptRecord {
        kind: "metrics sample",
        path: type_url.to_string(),
        reason: e.to_string(),
    };
    let limit = |l: u64| (l > 0 && l < UNLIMITED_ABOVE).then_some(l);
    if type_url.ends_with("cgroups.v1.Metrics") {
        let m = V1Metrics::decode(value).map_err(corrupt)?;
        let memory = m.memory.unwrap_or_default();
        let usage = memory.usage.unwrap_or_default();
        Ok(Sample {
            cpu_nanos: m.cpu.and_then(|c| c.usage).map(|u| u.total).unwrap_or(0),
            memory_bytes: usage.usage.saturating_sub(memory.total_inactive_file),
            memory_limit: limit(usage.limit),
            oom_kills: m.memory_oom_control.map(|o| o.oom_kill).unwrap_or(0),
        })
    } else if type_url.ends_with("cgroups.v2.Metrics") {
        let m = V2Metrics::decode(value).map_err(corrupt)?;
        let memory = m.memory.unwrap_or_default();
        Ok(Sample {
            cpu_nanos: m
                .cpu
                .map(|c| c.usage_usec.saturating_mul(1000))
                .unwrap_or(0),
            memory_bytes: memory.usage.saturating_sub(memory.inactive_file),
            memory_limit: limit(memory.usage_limit),
            oom_kills: m.memory_events.map(|e| e.oom_kill).unwrap_or(0),
        })
    } else {
        Err(RuntimeError::Unsupported {
            backend: super::NAME,
            feature: format!("metrics of type {type_url:?}"),
            hint: "known types are io.containerd.cgroups.v1.Metrics and v2.Metrics".to_string(),
        })
    }
}

/// CPU percent of one core between two samples `elapsed` apart.
pub(crate) fn cpu_percent(before: &Sample, after: &Sample, elapsed: Duration) -> f64 {
    let nanos = elapsed.as_nanos() as f64;
    if nanos <= 0.0 {
        return 0.0;
    }
    after.cpu_nanos.saturating_sub(before.cpu_nanos) as f64 / nanos * 100.0
}

impl ContainerdRuntime {
    /// CPU over a short interval and current memory; zeros for a container that is not running.
    pub(crate) async fn container_stats(&self, id: &str) -> Result<ContainerStats> {
        self.get_container(id).await?;
        let live = self
            .task_process(id)
            .await?
            .is_some_and(|p| super::task::process_is_live(&p));
        if !live {
            return Ok(ContainerStats::default());
        }
        let first = self.sample(id).await?;
        let started = Instant::now();
        tokio::time::sleep(CPU_SAMPLE_INTERVAL).await;
        let second = self.sample(id).await?;
        Ok(ContainerStats {
            cpu_percent: cpu_percent(&first, &second, started.elapsed()),
            memory_bytes: second.memory_bytes,
            memory_limit_bytes: second.memory_limit,
        })
    }

    /// Whether the OOM killer ended a process of the task's cgroup. The cgroup outlives the exit
    /// until the task is deleted, so this works for a stopped task; `false` when unknowable.
    pub(crate) async fn oom_killed(&self, id: &str) -> bool {
        self.sample(id).await.is_ok_and(|s| s.oom_kills > 0)
    }

    async fn sample(&self, id: &str) -> Result<Sample> {
        let metrics = self
            .tasks()
            .metrics(self.request(MetricsRequest {
                filters: vec![format!("id=={id}")],
            }))
            .await
            .map_err(on("read metrics of", "task", id))?
            .into_inner()
            .metrics;
        let data = metrics
            .into_iter()
            .find(|m| m.id == id)
            .and_then(|m| m.data)
            .ok_or_else(|| RuntimeError::ObjectNotFound {
                kind: "task metrics",
                name: id.to_owned(),
            })?;
        decode_sample(&data.type_url, &data.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_metrics_decode() {
        let v1 = V1Metrics {
            cpu: Some(V1Cpu {
                usage: Some(V1CpuUsage { total: 5_000 }),
            }),
            memory: Some(V1Memory {
                total_inactive_file: 100,
                usage: Some(V1MemoryEntry {
                    limit: 9_223_372_036_854_771_712,
                    usage: 1_100,
                }),
            }),
            memory_oom_control: Some(V1OomControl { oom_kill: 1 }),
        };
        let s = decode_sample("io.containerd.cgroups.v1.Metrics", &v1.encode_to_vec()).unwrap();
        assert_eq!(
            (s.cpu_nanos, s.memory_bytes, s.memory_limit),
            (5_000, 1_000, None)
        );
        let v2 = V2Metrics {
            cpu: Some(V2Cpu { usage_usec: 7 }),
            memory: Some(V2Memory {
                inactive_file: 0,
                usage: 42,
                usage_limit: 1 << 20,
            }),
            memory_events: None,
        };
        let s = decode_sample("io.containerd.cgroups.v2.Metrics", &v2.encode_to_vec()).unwrap();
        assert_eq!(
            (s.cpu_nanos, s.memory_bytes, s.memory_limit),
            (7_000, 42, Some(1 << 20))
        );
        assert!(matches!(
            decode_sample("other", &[]),
            Err(RuntimeError::Unsupported { .. })
        ));
    }

    #[test]
    fn cpu_percent_is_per_core() {
        let a = Sample {
            cpu_nanos: 0,
            memory_bytes: 0,
            memory_limit: None,
            oom_kills: 0,
        };
        let b = Sample {
            cpu_nanos: 200_000_000,
            ..a
        };
        let pct = cpu_percent(&a, &b, Duration::from_millis(100));
        assert!((pct - 200.0).abs() < 1e-9, "{pct}");
    }
}
