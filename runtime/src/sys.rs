//! The syscalls rustix has no safe wrapper for. This is the only module with `unsafe`.

use std::io;

/// `fork(2)`. Returns 0 in the child, the child's pid in the parent.
///
/// Callers must be single-threaded (the shim and the container init are): the child of a
/// multi-threaded process may only call async-signal-safe functions.
pub fn fork() -> io::Result<i32> {
    // SAFETY: fork has no memory-safety preconditions of its own; the single-threaded
    // requirement above keeps the child free of locks held by other threads.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

/// Installs a seccomp BPF filter on the calling thread (the caller has set no_new_privs).
pub fn install_seccomp_filter(prog: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `fprog` points to `prog`, which outlives the call; the kernel copies the
    // program during the syscall and keeps no reference to our memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Blocks `signals` in the calling thread (threads spawned later inherit the mask).
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use; the pointers
    // passed to the libc calls are valid for the duration of each call.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
    }
    Ok(())
}

/// Unblocks every signal and restores default dispositions (before exec in a child).
pub fn reset_signals() -> io::Result<()> {
    // SAFETY: as in `block_signals`; SIG_DFL is a valid disposition for every signal we
    // reset (SIGKILL and SIGSTOP cannot be changed and are skipped).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        let r = libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        for s in 1..32 {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                libc::signal(s, libc::SIG_DFL);
            }
        }
    }
    Ok(())
}

/// Waits up to `timeout_ms` for one of the blocked `signals`; returns it, or None.
pub fn wait_signal(signals: &[i32], timeout_ms: u64) -> io::Result<Option<i32>> {
    // SAFETY: as in `block_signals`; siginfo_t is plain data written by the kernel.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        let ts = libc::timespec {
            tv_sec: (timeout_ms / 1000) as libc::time_t,
            tv_nsec: ((timeout_ms % 1000) * 1_000_000) as libc::c_long,
        };
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::sigtimedwait(&set, &mut info, &ts);
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(r))
    }
}

/// Ignores SIGPIPE-style signals for the calling process (the shim writes to pipes the
/// other side may close).
pub fn ignore_signal(sig: i32) {
    // SAFETY: SIG_IGN is a valid disposition for the ordinary signals we pass.
    unsafe {
        libc::signal(sig, libc::SIG_IGN);
    }
}

/// Marks every descriptor from `first` up close-on-exec (`close_range(…, CLOEXEC)`).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 4;
    // SAFETY: close_range only changes descriptor flags; it takes no pointers.
    let r = unsafe {
        libc::syscall(libc::SYS_close_range, first as libc::c_uint, u32::MAX as libc::c_uint, CLOSE_RANGE_CLOEXEC)
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
