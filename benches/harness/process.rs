//! Child processes measured like `/usr/bin/time` does: `wait4` gives the child's own user and
//! system CPU and its peak RSS (`ru_maxrss`), exactly, after it exits.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `wait4` reported for one child.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// `WEXITSTATUS`, or `128 + signal` when a signal ended it.
    pub code: i32,
    pub user_s: f64,
    pub sys_s: f64,
    pub max_rss_kib: i64,
}

/// A spawned child that is reaped with `wait4` (never with `Child::wait`).
pub struct Measured {
    pid: libc::pid_t,
    // Kept for its pipes/handles; never waited on through std.
    _child: Child,
    exited: Option<Exit>,
}

impl Measured {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Measured> {
        let child = cmd.stdin(Stdio::null()).spawn()?;
        let pid = libc::pid_t::try_from(child.id())
            .map_err(|_| std::io::Error::other("child pid out of range"))?;
        Ok(Measured {
            pid,
            _child: child,
            exited: None,
        })
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Reaps the child if it has exited; `Ok(None)` while it runs.
    pub fn try_wait(&mut self) -> std::io::Result<Option<Exit>> {
        if let Some(e) = self.exited {
            return Ok(Some(e));
        }
        let mut status: libc::c_int = 0;
        // SAFETY: zeroed rusage is a valid value; wait4 writes into both out-pointers.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our own child; the pointers are to live locals.
        let r = unsafe { libc::wait4(self.pid, &mut status, libc::WNOHANG, &mut ru) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if r == 0 {
            return Ok(None);
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            -1
        };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let e = Exit {
            code,
            user_s: tv(ru.ru_utime),
            sys_s: tv(ru.ru_stime),
            max_rss_kib: ru.ru_maxrss,
        };
        self.exited = Some(e);
        Ok(Some(e))
    }

    /// Waits up to `limit`, polling; `Ok(None)` when the child still runs after it.
    pub fn wait_for(&mut self, limit: Duration) -> std::io::Result<Option<Exit>> {
        let end = Instant::now() + limit;
        loop {
            if let Some(e) = self.try_wait()? {
                return Ok(Some(e));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn signal(&self, sig: libc::c_int) {
        if self.exited.is_none() {
            // SAFETY: signalling our own, not yet reaped child.
            unsafe {
                libc::kill(self.pid, sig);
            }
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; always reaps.
    pub fn stop(&mut self, grace: Duration) -> std::io::Result<Exit> {
        if let Some(e) = self.try_wait()? {
            return Ok(e);
        }
        self.signal(libc::SIGTERM);
        if let Some(e) = self.wait_for(grace)? {
            return Ok(e);
        }
        self.signal(libc::SIGKILL);
        self.wait_for(Duration::from_secs(30))?
            .ok_or_else(|| std::io::Error::other("child survived SIGKILL for 30 s"))
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        if self.exited.is_none() {
            self.signal(libc::SIGKILL);
            let _ = self.wait_for(Duration::from_secs(5));
        }
    }
}

/// User + system CPU seconds this process (the harness) has used so far.
pub fn self_cpu_s() -> f64 {
    // SAFETY: zeroed rusage is valid; getrusage writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a pointer to a live local.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
