//! `--pin`: the server under test on one core, the bench (generator and clients) on the other, so the two stop
//! taking turns on the same core and the server's figures are its own. Linux `sched_setaffinity`: the bench pins
//! itself before its runtime starts (its threads inherit it), and each spawned server is pinned between fork and
//! exec, so every thread it starts inherits its core too.

use std::io;

/// The core the bench runs on.
pub const BENCH_CPU: usize = 0;
/// The core the servers under test (relays, the Node peer, redis-server) run on.
pub const SERVER_CPU: usize = 1;

/// Restricts the calling thread (and every thread it starts later) to `cpu`.
pub fn to(cpu: usize) -> io::Result<()> {
    // SAFETY: `set` is a plain bit set on our stack, sized as the call says; pid 0 means the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Pins a command's process to [`SERVER_CPU`] when `pin` is set.
pub fn server(command: &mut tokio::process::Command, pin: bool) {
    if pin {
        // SAFETY: runs in the forked child before exec and only calls sched_setaffinity, which is
        // async-signal-safe.
        unsafe {
            command.pre_exec(|| to(SERVER_CPU));
        }
    }
}

/// Whether this machine has the two cores `--pin` needs.
pub fn possible() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > SERVER_CPU)
}
