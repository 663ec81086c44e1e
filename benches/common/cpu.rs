//! CPU time from `/proc`: user + system seconds of a process or of the calling thread.

/// Clock ticks per second of `/proc/*/stat` (USER_HZ: 100 on Linux).
const TICKS: f64 = 100.0;

/// User + system CPU seconds so far of `/proc/<who>/stat`: `self`, `thread-self` or a pid.
pub fn seconds(who: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{who}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / TICKS
}
