//! Random identifiers — token ids (`jti`), session ids, audit event and
//! message ids — from the operating system's generator, fetched in blocks.
//!
//! Each `SystemRandom::fill` is one `getrandom(2)` system call. A refresh
//! needed two of them (the new access token's `jti`, the audit event's id)
//! and a sign-in three (plus the session id): half of a refresh's system
//! calls, as many as its network I/O (docs/benchmarks.md).
//! [`fill_random_id`] hands out the OS generator's own bytes from a
//! per-thread block of [`ID_POOL_BYTES`], each byte once (zeroed as it is
//! handed out), refilled by one system call when it runs short.
//!
//! Only for identifiers, never for keys or secrets (those come from
//! `SystemRandom` directly): the unspent bytes of a block sit in the
//! process's memory until used. A process that forks would hand its
//! child the same unspent bytes; the server never forks.

use std::cell::RefCell;

use ring::rand::{SecureRandom, SystemRandom};

/// Bytes fetched from the OS generator at a time, per thread: 512 (32
/// identifiers of 16 bytes).
pub const ID_POOL_BYTES: usize = 512;

/// The operating system's random number generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("system random number generator failed")]
pub struct RandomUnavailable;

struct Pool {
    bytes: [u8; ID_POOL_BYTES],
    /// Bytes of `bytes` already handed out (or never filled).
    used: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            bytes: [0; ID_POOL_BYTES],
            used: ID_POOL_BYTES,
        })
    };
}

/// Fills `out` with random bytes of the operating system's generator for
/// an identifier, from this thread's block (one system call per
/// [`ID_POOL_BYTES`]). Requests over a quarter of the block go to the
/// generator directly.
///
/// ```
/// let mut a = [0u8; 16];
/// let mut b = [0u8; 16];
/// otp_core::fill_random_id(&mut a)?;
/// otp_core::fill_random_id(&mut b)?;
/// assert_ne!(a, b);
/// # Ok::<(), otp_core::RandomUnavailable>(())
/// ```
pub fn fill_random_id(out: &mut [u8]) -> Result<(), RandomUnavailable> {
    if out.len() > ID_POOL_BYTES / 4 {
        return SystemRandom::new().fill(out).map_err(|_| RandomUnavailable);
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if ID_POOL_BYTES - pool.used < out.len() {
            SystemRandom::new()
                .fill(&mut pool.bytes)
                .map_err(|_| RandomUnavailable)?;
            pool.used = 0;
        }
        let start = pool.used;
        let taken = &mut pool.bytes[start..start + out.len()];
        out.copy_from_slice(taken);
        taken.fill(0);
        pool.used += out.len();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn random_ids_are_distinct_across_refills_and_threads() {
        let mut seen = HashSet::new();
        let take = |seen: &mut HashSet<[u8; 16]>| {
            let mut id = [0u8; 16];
            fill_random_id(&mut id).unwrap();
            assert!(seen.insert(id), "an id came out twice");
        };
        // several blocks on this thread
        for _ in 0..(4 * ID_POOL_BYTES / 16) {
            take(&mut seen);
        }
        let others: Vec<[u8; 16]> = std::thread::spawn(|| {
            (0..100)
                .map(|_| {
                    let mut id = [0u8; 16];
                    fill_random_id(&mut id).unwrap();
                    id
                })
                .collect()
        })
        .join()
        .unwrap();
        for id in others {
            assert!(seen.insert(id), "another thread got the same bytes");
        }
    }

    #[test]
    fn handed_out_bytes_are_erased_from_the_block() {
        let mut id = [0u8; 16];
        fill_random_id(&mut id).unwrap();
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(pool.used >= 16);
            assert!(pool.bytes[..pool.used].iter().all(|&b| b == 0));
        });
        // odd sizes, and one larger than a quarter block (direct)
        let mut odd = [0u8; 7];
        fill_random_id(&mut odd).unwrap();
        let mut big = [0u8; ID_POOL_BYTES / 2];
        fill_random_id(&mut big).unwrap();
        assert!(big.iter().any(|&b| b != 0));
    }
}
