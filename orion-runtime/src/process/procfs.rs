//! What `/proc` says about a process group: liveness (guarded against pid reuse), CPU ticks, and
//! resident memory.

use std::path::Path;

/// The fields of `/proc/<pid>/stat` this runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// `R`, `S`, `Z`, ...
    pub state: char,
    pub pgrp: i32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks: with the pid, a process's identity.
    pub start_ticks: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name may hold spaces and parentheses, so
/// fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    // After ")": state is field 3 of the man page, so rest-field i is man-field i + 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |man: usize| fields.get(man - 3).copied();
    Some(ProcStat {
        state: field(3)?.chars().next()?,
        pgrp: field(5)?.parse().ok()?,
        cpu_ticks: field(14)?.parse::<u64>().ok()? + field(15)?.parse::<u64>().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

/// `/proc/<pid>/stat`, if the process exists.
pub(crate) fn read_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// True when `pid` is the same process that started at `start_ticks` and is not a zombie.
pub(crate) fn is_alive(pid: u32, start_ticks: u64) -> bool {
    read_stat(pid).is_some_and(|s| s.start_ticks == start_ticks && s.state != 'Z')
}

/// Clock ticks per second (`USER_HZ`).
pub(crate) fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(100)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(4096)
}

/// Every live (non-zombie) process of group `pgrp`, with its stat.
pub(crate) fn group_members(pgrp: u32) -> Vec<(u32, ProcStat)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .filter(|(_, stat)| u32::try_from(stat.pgrp).ok() == Some(pgrp) && stat.state != 'Z')
        .collect()
}

/// CPU ticks and resident bytes summed over every live process of group `pgrp`.
pub(crate) fn group_usage(pgrp: u32) -> (u64, u64) {
    let page = page_size();
    group_members(pgrp)
        .into_iter()
        .fold((0, 0), |(ticks, resident), (pid, stat)| {
            let pages = resident_pages(Path::new(&format!("/proc/{pid}"))).unwrap_or(0);
            (ticks + stat.cpu_ticks, resident + pages * page)
        })
}

fn resident_pages(proc_dir: &Path) -> Option<u64> {
    let statm = std::fs::read_to_string(proc_dir.join("statm")).ok()?;
    statm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_in_the_name_parses() {
        let text =
            "4242 (we(ir) d) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 98765 1000 50";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.pgrp, 4242);
        assert_eq!(stat.cpu_ticks, 12);
        assert_eq!(stat.start_ticks, 98765);
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let pid = std::process::id();
        let stat = read_stat(pid).unwrap();
        assert!(is_alive(pid, stat.start_ticks));
        assert!(
            !is_alive(pid, stat.start_ticks + 1),
            "pid reuse is detected"
        );
        assert!(parse_stat("garbage").is_none());
    }
}
