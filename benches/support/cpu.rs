//! CPU time for the benchmarks that report it beside wall time.

/// CPU time (user and system) this process has used so far, in seconds (Linux, to the
/// 10 ms of the kernel's clock ticks), when it can be read.
pub fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3, `state`;
    // `utime` and `stime` are fields 14 and 15, in ticks of 1/100 s (USER_HZ).
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}
