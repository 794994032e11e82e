//! CPU and memory figures from the engine's stats sample, computed as the `docker stats` CLI does.

use bollard::models::ContainerStatsResponse;
use orion_core::runtime::ContainerStats;

/// Converts one stats sample (with its `precpu_stats`) into [`ContainerStats`].
///
/// CPU: container CPU time delta over system CPU time delta, times the online CPUs, in percent
/// of one core. Memory: usage minus the page cache (`inactive_file` on cgroup v2, `cache` or
/// `total_inactive_file` on v1), as `docker stats` reports it.
pub(crate) fn container_stats(sample: &ContainerStatsResponse) -> ContainerStats {
    let cpu = sample.cpu_stats.clone().unwrap_or_default();
    let pre = sample.precpu_stats.clone().unwrap_or_default();
    let total = |s: &bollard::models::ContainerCpuStats| {
        s.cpu_usage
            .as_ref()
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let cpu_delta = total(&cpu).saturating_sub(total(&pre));
    let system_delta = cpu
        .system_cpu_usage
        .unwrap_or(0)
        .saturating_sub(pre.system_cpu_usage.unwrap_or(0));
    let online = cpu
        .online_cpus
        .map(u64::from)
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            cpu.cpu_usage
                .as_ref()
                .and_then(|u| u.percpu_usage.as_ref())
                .map(|p| p.len() as u64)
                .filter(|n| *n > 0)
                .unwrap_or(1)
        });
    let cpu_percent = if system_delta > 0 && pre.system_cpu_usage.is_some() {
        cpu_delta as f64 / system_delta as f64 * online as f64 * 100.0
    } else {
        0.0
    };

    let memory = sample.memory_stats.clone().unwrap_or_default();
    let usage = memory.usage.unwrap_or(0);
    let detail = memory.stats.unwrap_or_default();
    let cache = ["inactive_file", "total_inactive_file", "cache"]
        .iter()
        .find_map(|k| detail.get(*k).copied())
        .unwrap_or(0);
    // The engine reports "no limit" as the host's memory or a huge number.
    let memory_limit_bytes = memory.limit.filter(|l| *l > 0 && *l < i64::MAX as u64 / 2);
    ContainerStats {
        cpu_percent,
        memory_bytes: usage.saturating_sub(cache),
        memory_limit_bytes,
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};

    use super::*;

    fn cpu(total: u64, system: u64) -> ContainerCpuStats {
        ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(total),
                ..ContainerCpuUsage::default()
            }),
            system_cpu_usage: Some(system),
            online_cpus: Some(2),
            ..ContainerCpuStats::default()
        }
    }

    #[test]
    fn cpu_percent_is_share_of_system_time_times_cpus() {
        let sample = ContainerStatsResponse {
            cpu_stats: Some(cpu(1_500, 20_000)),
            precpu_stats: Some(cpu(1_000, 18_000)),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(10_000),
                limit: Some(64 << 20),
                stats: Some([("cache".to_owned(), 4_000)].into_iter().collect()),
                ..ContainerMemoryStats::default()
            }),
            ..ContainerStatsResponse::default()
        };
        let stats = container_stats(&sample);
        // (500 / 2000) * 2 CPUs * 100 = 50% of one core.
        assert!((stats.cpu_percent - 50.0).abs() < 1e-9, "{stats:?}");
        assert_eq!(stats.memory_bytes, 6_000);
        assert_eq!(stats.memory_limit_bytes, Some(64 << 20));
    }

    #[test]
    fn first_sample_without_precpu_reports_zero_not_garbage() {
        let sample = ContainerStatsResponse {
            cpu_stats: Some(cpu(1_500, 20_000)),
            precpu_stats: Some(ContainerCpuStats::default()),
            ..ContainerStatsResponse::default()
        };
        assert_eq!(container_stats(&sample).cpu_percent, 0.0);
    }
}
