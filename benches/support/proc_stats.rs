//! Readings from `/proc` that the bench programs share: memory of a process, CPU time of a
//! process or thread. Linux only, like the benches.

/// `VmRSS` and `VmHWM` (peak) of the process whose status file is `/proc/<who>/status`
/// (`who` is a pid or `self`), in bytes.
pub fn rss_of(who: &str) -> Result<(f64, f64), String> {
    let path = format!("/proc/{who}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let bytes = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb * 1024.0)
            .ok_or_else(|| format!("{name} in {path}"))
    };
    Ok((bytes("VmRSS:")?, bytes("VmHWM:")?))
}

/// User + system CPU time in seconds from a `stat` file (`/proc/self/stat` for this process,
/// `/proc/thread-self/stat` for this thread), at the kernel's tick resolution (10 ms).
pub fn cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_else(|e| panic!("{stat_path}: {e}"));
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}
