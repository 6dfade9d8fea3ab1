//! Structure-of-arrays layout for evaluating several episodes in lock-step, one episode per
//! SIMD lane: every quantity of a batch (a state component, a policy parameter, a reward)
//! is stored as `[f32; LANES]`, one value per episode, so the loops over lanes vectorize.
//! Evolution strategies evaluate thousands of independent episodes per iteration with
//! different parameter vectors; this is how they share the vector units
//! ([`crate::rollout::episode_returns_lanes`]).

/// Episodes stepped together. Eight f32 fill one AVX2 register.
pub const LANES: usize = 8;

/// One value per lane (episode).
pub type Lanes = [f32; LANES];

/// Lane `l` of a structure-of-arrays vector (`rows[i][l]` for every `i`) copied into `out`.
pub fn gather(rows: &[Lanes], l: usize, out: &mut [f32]) {
    for (o, r) in out.iter_mut().zip(rows) {
        *o = r[l];
    }
}

/// `row` written into lane `l` of a structure-of-arrays vector.
pub fn scatter(row: &[f32], l: usize, rows: &mut [Lanes]) {
    for (r, x) in rows.iter_mut().zip(row) {
        r[l] = *x;
    }
}

/// The parameter vectors of up to [`LANES`] episodes interleaved episode-minor:
/// `out[p][l] = thetas[l][p]`. Lanes past `thetas.len()` repeat the first vector (their
/// results are discarded).
pub fn interleave(thetas: &[&[f32]], out: &mut Vec<Lanes>) {
    assert!(
        !thetas.is_empty() && thetas.len() <= LANES,
        "1 to {LANES} parameter vectors per batch"
    );
    let d = thetas[0].len();
    assert!(
        thetas.iter().all(|t| t.len() == d),
        "all parameter vectors should have the same length"
    );
    out.clear();
    out.resize(d, [0.0; LANES]);
    for l in 0..LANES {
        let t = thetas.get(l).unwrap_or(&thetas[0]);
        scatter(t, l, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_gather_and_scatter_round_trip() {
        let a = [1.0, 2.0, 3.0];
        let b = [4.0, 5.0, 6.0];
        let mut rows = Vec::new();
        interleave(&[&a, &b], &mut rows);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1][0], 2.0);
        assert_eq!(rows[1][1], 5.0);
        // Padding lanes repeat the first vector.
        assert_eq!(rows[2][LANES - 1], 3.0);
        let mut out = [0.0; 3];
        gather(&rows, 1, &mut out);
        assert_eq!(out, b);
        scatter(&[7.0, 8.0, 9.0], 2, &mut rows);
        gather(&rows, 2, &mut out);
        assert_eq!(out, [7.0, 8.0, 9.0]);
    }
}
