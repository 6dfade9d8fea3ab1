//! One training job on several processes: MPI ranks (feature `mpi`, the `mpi` crate over
//! the system's OpenMPI), or one process without it.
//!
//! The scheme is OpenAI-ES's: every rank holds the whole learner state and regenerates
//! every perturbation from the shared seeds; work items (ES evaluations, ES + DDPG
//! workers) are owned round-robin, item `i` by rank `i mod size`; each rank computes its
//! own and an all-gather hands every rank all results, in item order. Every rank then
//! makes the same update, so the state stays identical without sending parameters.
//! Because each item is computed exactly as a single process computes it (same streams,
//! same batches) and results are combined in item order, a run gives the same
//! `progress.csv` whatever the number of ranks (`tests/mpi.rs`).
//!
//! Rank 0 alone writes the run directory; every rank reads the same checkpoint on
//! `--resume`, so a job may resume with another number of ranks.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::error::{Error, Result};

static RANK: AtomicUsize = AtomicUsize::new(0);
static SIZE: AtomicUsize = AtomicUsize::new(1);
static BYTES_SENT: AtomicU64 = AtomicU64::new(0);
static COMM_NANOS: AtomicU64 = AtomicU64::new(0);

/// What this process has sent through the collectives so far, and the time it spent in
/// them (waiting for slower ranks included).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Payload bytes this rank contributed to all-gathers (its own data, once).
    pub bytes_sent: u64,
    /// Seconds spent inside collective calls.
    pub seconds: f64,
}

/// The [`Traffic`] of this process since it started.
pub fn traffic() -> Traffic {
    Traffic {
        bytes_sent: BYTES_SENT.load(Ordering::Relaxed),
        seconds: COMM_NANOS.load(Ordering::Relaxed) as f64 * 1e-9,
    }
}

/// Keeps MPI initialized while it lives (MPI is finalized when it is dropped); holds
/// nothing for a single-process run.
pub struct Session {
    #[cfg(feature = "mpi")]
    _universe: Option<mpi::environment::Universe>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("rank", &RANK.load(Ordering::Relaxed))
            .field("size", &SIZE.load(Ordering::Relaxed))
            .finish()
    }
}

/// Starts MPI when `distributed` is set (the binaries' `--mpi`) and records this
/// process's rank and the job's size for [`Cluster::current`]. A build without the
/// `mpi` feature refuses `--mpi` with a configuration error (exit code 2).
pub fn init(distributed: bool) -> Result<Session> {
    if !distributed {
        return Ok(Session {
            #[cfg(feature = "mpi")]
            _universe: None,
        });
    }
    #[cfg(feature = "mpi")]
    {
        use mpi::traits::Communicator;
        // Collectives are called from rayon worker threads (one at a time).
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Serialized)
            .ok_or_else(|| Error::Other("MPI is already initialized".into()))?;
        let world = universe.world();
        RANK.store(world.rank() as usize, Ordering::Relaxed);
        SIZE.store(world.size() as usize, Ordering::Relaxed);
        Ok(Session {
            _universe: Some(universe),
        })
    }
    #[cfg(not(feature = "mpi"))]
    Err(Error::invalid(
        "mpi",
        "true",
        "false in a build without the `mpi` feature (cargo build --release --features mpi)",
    ))
}

/// Runs a binary's `body` inside an MPI job when `distributed` is set ([`init`]). When
/// `body` fails on a rank of a job of several ranks, the error is printed with the rank
/// and the whole job is aborted with `exit_code(&error)` (MPI_Abort): the other ranks may
/// be waiting in a collective, where finalizing would hang. Checkpoints on disk are
/// complete (they are written atomically by rank 0).
pub fn run_job(
    distributed: bool,
    exit_code: impl Fn(&Error) -> i32,
    body: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let session = init(distributed)?;
    let result = body();
    #[cfg(feature = "mpi")]
    if let Err(e) = &result {
        let c = Cluster::current();
        if c.size() > 1 {
            use mpi::traits::Communicator;
            eprintln!("error (rank {} of {}): {e}", c.rank(), c.size());
            mpi::topology::SimpleCommunicator::world().abort(exit_code(e));
        }
    }
    #[cfg(not(feature = "mpi"))]
    let _ = &exit_code;
    drop(session);
    result
}

/// This process's place in the job: rank and number of ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cluster {
    rank: usize,
    size: usize,
}

impl Default for Cluster {
    fn default() -> Self {
        Self::single()
    }
}

impl Cluster {
    /// One process, rank 0 of 1.
    pub fn single() -> Self {
        Self { rank: 0, size: 1 }
    }

    /// The job [`init`] joined (one process when it did not start MPI).
    pub fn current() -> Self {
        Self {
            rank: RANK.load(Ordering::Relaxed),
            size: SIZE.load(Ordering::Relaxed),
        }
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this is rank 0, the one that writes files.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Whether this rank computes item `i` (round robin).
    pub fn owns(&self, i: usize) -> bool {
        i % self.size == self.rank
    }

    /// The items of `0..n` this rank computes, in order.
    pub fn owned(&self, n: usize) -> Vec<usize> {
        (self.rank..n).step_by(self.size).collect()
    }

    /// All `n` results in item order, given this rank's results for [`Self::owned`]`(n)`
    /// (each item `width` values long). Every rank must call it with the same `n` and
    /// `width`.
    pub fn gather<T: Element>(&self, n: usize, width: usize, mine: &[T]) -> Vec<T> {
        assert_eq!(
            mine.len(),
            self.owned(n).len() * width,
            "one result of {width} values per owned item"
        );
        if self.size == 1 {
            return mine.to_vec();
        }
        let blocks = self.all_gather(mine);
        self.in_item_order(n, &blocks, |_, _| width).concat()
    }

    /// All `n` results in item order, given this rank's results for [`Self::owned`]`(n)`
    /// in order, when items differ in length (e.g. task chunks of unequal sizes). Every
    /// rank must call it with the same `n`.
    pub fn gather_ragged<T: Element>(&self, n: usize, mine: Vec<Vec<T>>) -> Vec<Vec<T>> {
        assert_eq!(mine.len(), self.owned(n).len(), "one result per owned item");
        if self.size == 1 {
            return mine;
        }
        let lengths: Vec<u64> = mine.iter().map(|v| v.len() as u64).collect();
        let lengths = self.all_gather(&lengths);
        let blocks = self.all_gather(&mine.concat());
        self.in_item_order(n, &blocks, |r, k| lengths[r][k] as usize)
    }

    /// Items `0..n` cut from every rank's concatenated results (`blocks[r]`: rank r's owned
    /// items in order), in item order; `len(r, k)` is the length of rank r's k-th item.
    fn in_item_order<T: Copy>(
        &self,
        n: usize,
        blocks: &[Vec<T>],
        len: impl Fn(usize, usize) -> usize,
    ) -> Vec<Vec<T>> {
        let mut out = Vec::with_capacity(n);
        let (mut item, mut offset) = (vec![0usize; self.size], vec![0usize; self.size]);
        for i in 0..n {
            let r = i % self.size;
            let l = len(r, item[r]);
            out.push(blocks[r][offset[r]..offset[r] + l].to_vec());
            item[r] += 1;
            offset[r] += l;
        }
        out
    }

    /// Every rank's `mine`, indexed by rank (lengths may differ).
    pub fn all_gather<T: Element>(&self, mine: &[T]) -> Vec<Vec<T>> {
        if self.size == 1 {
            return vec![mine.to_vec()];
        }
        #[cfg(feature = "mpi")]
        {
            let t0 = std::time::Instant::now();
            let out = T::all_gather(mine, self.size);
            BYTES_SENT.fetch_add(std::mem::size_of_val(mine) as u64, Ordering::Relaxed);
            COMM_NANOS.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            out
        }
        #[cfg(not(feature = "mpi"))]
        unreachable!("more than one rank needs the mpi feature")
    }

    /// Sum of every rank's `x` (exact: integers).
    pub fn sum_u64(&self, x: u64) -> u64 {
        self.all_gather(&[x]).iter().map(|v| v[0]).sum()
    }
}

/// A value type the collectives carry: f64, f32, u64 and u8.
pub trait Element: Copy + Default + Send + Sync + 'static {
    /// Every rank's slice (MPI all-gather with per-rank counts).
    #[cfg(feature = "mpi")]
    fn all_gather(mine: &[Self], size: usize) -> Vec<Vec<Self>>;
}

#[cfg(feature = "mpi")]
fn all_gather_mpi<T: Copy + Default + mpi::datatype::Equivalence>(
    mine: &[T],
    size: usize,
) -> Vec<Vec<T>> {
    use mpi::datatype::PartitionMut;
    use mpi::traits::CommunicatorCollectives;
    use mpi::Count;
    let world = mpi::topology::SimpleCommunicator::world();
    let mut counts: Vec<Count> = vec![0; size];
    world.all_gather_into(&(mine.len() as Count), &mut counts[..]);
    let displs: Vec<Count> = counts
        .iter()
        .scan(0, |acc, &c| {
            let d = *acc;
            *acc += c;
            Some(d)
        })
        .collect();
    let total = counts.iter().sum::<Count>() as usize;
    let mut buf = vec![T::default(); total];
    {
        let mut part = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
        world.all_gather_varcount_into(mine, &mut part);
    }
    counts
        .iter()
        .zip(&displs)
        .map(|(&c, &d)| buf[d as usize..(d + c) as usize].to_vec())
        .collect()
}

macro_rules! element {
    ($($t:ty),*) => {$(
        impl Element for $t {
            #[cfg(feature = "mpi")]
            fn all_gather(mine: &[Self], size: usize) -> Vec<Vec<Self>> {
                all_gather_mpi(mine, size)
            }
        }
    )*};
}
element!(f64, f32, u64, u8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_ownership_covers_every_item_once() {
        let n = 11;
        let mut seen = vec![0; n];
        for rank in 0..3 {
            let c = Cluster { rank, size: 3 };
            for i in c.owned(n) {
                assert!(c.owns(i));
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
        let one = Cluster::single();
        assert_eq!(
            one.gather(3, 2, &[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]).len(),
            6
        );
        assert!(one.is_root() && one.owned(4) == vec![0, 1, 2, 3]);
    }

    #[test]
    fn mpi_is_refused_or_started_but_never_silently_ignored() {
        // Without the feature `--mpi` is a configuration error; single runs need nothing.
        assert!(init(false).is_ok());
        #[cfg(not(feature = "mpi"))]
        assert!(init(true).unwrap_err().is_user_error());
    }
}
