//! Batched reads for bulk streams (COPY TO STDOUT) over TCP.
//!
//! The server writes a COPY in 8 KiB `send()`s. A client that decodes faster than the server
//! produces is woken for every one of them: on `mixed9` (2 M rows, ~300 MB) that was ~36,000
//! epoll wake-ups, `recvfrom`s and context switches, a third of the plugin's CPU, on a machine
//! where the plugin shares two cores with the server backend it is waiting for. With a 128 KiB
//! mark: ~5,000 reads, and the plugin's CPU for that sync fell by about a fifth.
//!
//! `SO_RCVLOWAT` tells the kernel not to report the socket readable until [`LOW_WATER`] bytes are
//! queued, so one wake-up reads many server writes. The kernel never lowers the mark by itself,
//! and the tail of a COPY (the last rows, CopyDone, CommandComplete, ReadyForQuery) is usually
//! smaller than it: a read that waits longer than [`WAIT`] drops the mark to one byte (Linux then
//! signals readiness at once if anything is queued), reads, and raises it again. A slow producer
//! is therefore read in [`WAIT`]-sized batches, never stalled: the server keeps writing into the
//! socket buffer meanwhile, which is far larger than the mark.
//!
//! Linux and TCP only (TLS included, the mark is set on the TCP socket beneath): unix-domain
//! sockets ignore the mark in `poll`, so they read as before.

use std::io;
use std::time::Duration;

/// Bytes the kernel queues before it wakes a reader in bulk mode.
pub(super) const LOW_WATER: i32 = 128 * 1024;

/// How long a bulk read waits for [`LOW_WATER`] bytes before it takes whatever has arrived.
pub(super) const WAIT: Duration = Duration::from_millis(2);

/// Sets `SO_RCVLOWAT` on a socket. Errors are returned for the caller to ignore: the mark is an
/// optimisation, and reads stay correct without it.
#[cfg(target_os = "linux")]
pub(super) fn set_low_water(fd: std::os::fd::RawFd, bytes: i32) -> io::Result<()> {
    let value: libc::c_int = bytes.max(1);
    // SAFETY: `fd` is an open socket owned by the caller's stream for the duration of the call;
    // the option value is a `c_int` on the stack whose size is passed alongside it. No safe API
    // exists for this option (socket2 and rustix do not expose SO_RCVLOWAT). Measured: it cuts
    // the plugin's CPU on a single-stream `mixed9` COPY (see docs/benchmarks.md).
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn set_low_water(_fd: std::os::fd::RawFd, _bytes: i32) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}
