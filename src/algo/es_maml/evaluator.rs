//! How ES-MAML evaluates f: one episode of the flat policy per (θ, task), batches of
//! episodes in SIMD lanes, the adaptation operators applied to many (point, task) pairs
//! together, and the held-out evaluation. Everything here is deterministic given the
//! seeds it is handed, whatever the thread count.

use super::*;

/// Fewest episodes run in SIMD lanes rather than one after another. Measured (`cargo
/// bench --bench es_episodes`, nav2d, linear policy): a full batch of 64 lanes takes 15 µs,
/// one episode alone 5.7 µs, so lanes pay from three episodes on.
const MIN_LANE_EPISODES: usize = 3;

/// What evaluations of f add up during one iteration: env steps and observation
/// statistics (both sums, so the result does not depend on evaluation order).
pub(super) struct Counter {
    pub(super) steps: AtomicU64,
    pub(super) stats: Mutex<ObsStats>,
}

impl Counter {
    /// Adds what some episodes observed.
    pub(super) fn add(&self, local: &ObsStats) {
        self.steps.fetch_add(local.count, Ordering::Relaxed);
        self.stats
            .lock()
            .expect("stats lock should not be poisoned")
            .merge(local);
    }
}

/// f^T(θ) of one task as an ES objective: one episode's return ([`EsMaml::f`]), the
/// episode's start drawn from the evaluation's generator. Batches run in SIMD lanes.
pub(super) struct TaskReturn<'a> {
    es: &'a EsMaml,
    task: &'a Task,
    norm: &'a ObsNorm,
    c: &'a Counter,
}

impl Objective for TaskReturn<'_> {
    fn value(&self, theta: &[f32], rng: &mut Rng) -> f64 {
        let seed = self.es.episode_seed(|| rng);
        self.es.f(self.task, theta, self.norm, seed, self.c)
    }

    fn values(&self, points: &[&[f32]], rngs: &mut [LazyRng]) -> Vec<f64> {
        let seeds = self.es.episode_seeds(rngs);
        let tasks = vec![self.task; points.len()];
        self.es.f_batch(&tasks, points, self.norm, &seeds, self.c)
    }
}

/// Algorithm 2's objective of a perturbed θ: the mean over a batch of training tasks T
/// (drawn from the evaluation's generator) of f^T(U(θ, T)). A batch of points adapts every
/// (point, task) pair (hill climbing: all pairs in lock-step, so each round's episodes run
/// in lanes) and then runs all the post-adaptation episodes together in lanes; the
/// generator is read in the same order as for one point alone (per task: the operator's
/// seed, then the episode's), so the values are the same.
pub(super) struct AdaptedReturn<'a> {
    pub(super) es: &'a EsMaml,
    pub(super) norm: &'a ObsNorm,
    pub(super) c: &'a Counter,
}

impl Objective for AdaptedReturn<'_> {
    fn value(&self, theta: &[f32], rng: &mut Rng) -> f64 {
        self.values_with(&[theta], &mut [rng])[0]
    }

    fn values(&self, points: &[&[f32]], rngs: &mut [LazyRng]) -> Vec<f64> {
        let mut rngs: Vec<&mut Rng> = rngs.iter_mut().map(LazyRng::get).collect();
        self.values_with(points, &mut rngs)
    }
}

impl AdaptedReturn<'_> {
    /// [`Objective::values`] with the generators built (every one is read).
    pub(super) fn values_with(&self, points: &[&[f32]], rngs: &mut [&mut Rng]) -> Vec<f64> {
        let (es, cfg) = (self.es, &self.es.cfg);
        // Every (point, task) pair, point by point (`task_batch` pairs each): its operator
        // seed, then its episode seed.
        let (mut starts, mut tasks) = (Vec::new(), Vec::new());
        let (mut adapt_seeds, mut seeds) = (Vec::new(), Vec::new());
        for (p, r) in points.iter().zip(rngs.iter_mut()) {
            for t in es.task_indices(cfg.task_batch, r) {
                starts.push(*p);
                tasks.push(&es.train[t]);
                adapt_seeds.push(r.next_u64());
                seeds.push(r.next_u64());
            }
        }
        let adapted = es.adapt_batch(
            cfg.operator,
            &starts,
            &tasks,
            &adapt_seeds,
            self.norm,
            self.c,
        );
        let thetas: Vec<&[f32]> = adapted.iter().map(Vec::as_slice).collect();
        let returns = es.f_batch(&tasks, &thetas, self.norm, &seeds, self.c);
        returns
            .chunks(cfg.task_batch)
            .map(|mine| mine.iter().sum::<f64>() / mine.len() as f64)
            .collect()
    }
}

impl EsMaml {
    /// Adds what `mine` counted on every rank of the job to `c` (ObsStats sums are
    /// integers, so the total does not depend on how the work was shared).
    pub(super) fn add_every_rank(&self, mine: &Counter, c: &Counter) {
        let local = mine
            .stats
            .lock()
            .expect("stats lock should not be poisoned")
            .clone();
        if self.cluster.size() == 1 {
            c.add(&local);
            return;
        }
        let bytes = serde_json::to_vec(&local).expect("statistics serialize");
        for b in self.cluster.all_gather(&bytes) {
            let s: ObsStats = serde_json::from_slice(&b).expect("a rank's statistics parse");
            c.add(&s);
        }
    }

    /// The observation normalizer frozen for this iteration and a fresh counter.
    pub(super) fn context(&self) -> (ObsNorm, Counter) {
        let d = self.env.spec().obs_dim;
        let norm = if self.cfg.normalize_states {
            self.stats.normalizer()
        } else {
            ObsStats::new(d).normalizer()
        };
        let c = Counter {
            steps: AtomicU64::new(0),
            stats: Mutex::new(ObsStats::new(d)),
        };
        (norm, c)
    }

    /// f^T(θ): one episode's return, observations counted.
    pub(super) fn f(
        &self,
        task: &Task,
        theta: &[f32],
        norm: &ObsNorm,
        seed: u64,
        c: &Counter,
    ) -> f64 {
        let mut local = ObsStats::new(self.env.spec().obs_dim);
        let r = episode_return_flat(&self.env, task, &self.flat, theta, norm, seed, &mut local);
        c.add(&local);
        r
    }

    /// [`Self::f`] for episode `i` = (`tasks[i]`, `thetas[i]`, `seeds[i]`) of a batch, with
    /// exactly the same results: batches of at least [`MIN_LANE_EPISODES`] episodes run in
    /// lock-step ([`episode_returns_lanes`]), smaller ones one episode at a time (a lane
    /// batch costs the same however few lanes it fills). Batches run in parallel.
    pub(super) fn f_batch(
        &self,
        tasks: &[&Task],
        thetas: &[&[f32]],
        norm: &ObsNorm,
        seeds: &[u64],
        c: &Counter,
    ) -> Vec<f64> {
        let width = self.flat.batch_lanes();
        let starts: Vec<usize> = (0..thetas.len()).step_by(width).collect();
        let chunks: Vec<Vec<f64>> = starts
            .par_iter()
            .map(|&start| {
                let end = thetas.len().min(start + width);
                let (t, p, s) = (&tasks[start..end], &thetas[start..end], &seeds[start..end]);
                let mut local = ObsStats::new(self.env.spec().obs_dim);
                let out = if end - start >= MIN_LANE_EPISODES {
                    episode_returns_lanes(&self.env, t, &self.flat, p, norm, s, &mut local)
                } else {
                    (0..t.len())
                        .map(|i| {
                            episode_return_flat(
                                &self.env, t[i], &self.flat, p[i], norm, s[i], &mut local,
                            )
                        })
                        .collect()
                };
                c.add(&local);
                out
            })
            .collect();
        chunks.concat()
    }

    /// f^T as an ES objective.
    pub(super) fn task_return<'a>(
        &'a self,
        task: &'a Task,
        norm: &'a ObsNorm,
        c: &'a Counter,
    ) -> TaskReturn<'a> {
        TaskReturn {
            es: self,
            task,
            norm,
            c,
        }
    }

    /// U(θ_q, T_q) for every pair `q` of start `starts[q]` and task `tasks[q]`, with the
    /// operator's randomness fixed by `seeds[q]`: each result is exactly the pair's
    /// adaptation on its own, but all pairs' episodes run together in lanes (hill climbing
    /// in lock-step round by round; `es-grad` and `dpp` all queries at once). An episode's
    /// start is drawn from its evaluation generator, as in [`TaskReturn`].
    pub(super) fn adapt_batch(
        &self,
        operator: Operator,
        starts: &[&[f32]],
        tasks: &[&Task],
        seeds: &[u64],
        norm: &ObsNorm,
        c: &Counter,
    ) -> Vec<Vec<f32>> {
        let cfg = &self.cfg;
        let eval = |pairs: &[usize], pts: &[&[f32]], rs: &mut [LazyRng]| {
            let ts: Vec<&Task> = pairs.iter().map(|&q| tasks[q]).collect();
            let ss = self.episode_seeds(rs);
            self.f_batch(&ts, pts, norm, &ss, c)
        };
        match operator {
            Operator::HillClimb => {
                let k = cfg.adapt_directions(operator);
                hill_climb_lockstep(starts, cfg.adapt_sigma, k, seeds, eval)
                    .into_iter()
                    .map(|hc| hc.theta)
                    .collect()
            }
            Operator::EsGrad | Operator::Dpp => {
                // In parallel: a DPP selection costs as much as many episodes.
                let problems: Vec<GradientProblem> = starts
                    .par_iter()
                    .zip(seeds)
                    .map(|(&theta, &seed)| GradientProblem {
                        theta,
                        perturbations: self.adaptation_directions(operator, theta.len(), seed),
                        seed,
                    })
                    .collect();
                let shaping = cfg.shaping();
                es_gradient_lockstep(
                    &problems,
                    cfg.adapt_sigma,
                    cfg.adapt_estimator,
                    shaping,
                    eval,
                )
                .iter()
                .zip(starts)
                .map(|(est, theta)| self.gradient_step(theta, &est.grad))
                .collect()
            }
        }
    }

    /// The start seed of an episode whose evaluation generator (`rng()`) is not read
    /// again: its next draw, or 0 without touching it when the family's start is fixed
    /// (the seed is then never used, and the generator is never built or refilled).
    pub(super) fn episode_seed<'r>(&self, rng: impl FnOnce() -> &'r mut Rng) -> u64 {
        if self.env.fixed_start() {
            0
        } else {
            rng().next_u64()
        }
    }

    /// [`Self::episode_seed`] of every generator of a batch.
    pub(super) fn episode_seeds(&self, rngs: &mut [LazyRng]) -> Vec<u64> {
        rngs.iter_mut()
            .map(|r| self.episode_seed(|| r.get()))
            .collect()
    }

    /// The query directions of a gradient-type adaptation with seed `seed` (K, or fewer
    /// when `query_count` counts evaluations): i.i.d. Gaussian ([`es_gradient`]'s) for
    /// `es-grad`, chosen by the DPP for `dpp`.
    pub(super) fn adaptation_directions(
        &self,
        operator: Operator,
        d: usize,
        seed: u64,
    ) -> Vec<Vec<f32>> {
        let cfg = &self.cfg;
        let k = cfg.adapt_directions(operator);
        match operator {
            Operator::Dpp => dpp_perturbations(d, k, cfg.dpp_pool_factor, (d as f64).sqrt(), seed),
            _ => gaussian_perturbations(d, k, seed, 0),
        }
    }

    /// Three seeds for each of `n` tasks, the `j`-th triple the first three draws of
    /// `rng(j)`, returned as the three lists.
    pub(super) fn seed_triples(&self, n: usize, rng: impl Fn(u64) -> Rng) -> [Vec<u64>; 3] {
        let mut out = [
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        ];
        for j in 0..n {
            let mut r = rng(j as u64);
            for list in &mut out {
                list.push(r.next_u64());
            }
        }
        out
    }

    /// Held-out evaluation on the first `n` test tasks (fixed evaluation streams): mean
    /// return before and after adaptation, the success rate after adaptation, and for
    /// point envs the paths of the first [`EVAL_PATH_TASKS`] tasks' two episodes.
    pub(super) fn held_out(&self, n: usize) -> Evaluation {
        let (norm, c) = self.context();
        let theta = self.theta();
        let tasks = TaskDistribution::new(self.env.clone()).held_out(n);
        let env = &self.env;
        let episode = |task: &Task, p: &[f32], seed: u64, path: &mut Vec<[f32; 2]>| {
            let mut st = ObsStats::new(env.spec().obs_dim);
            crate::rollout::episode_flat(env, task, &self.flat, p, &norm, seed, &mut st, |pos| {
                path.extend(pos())
            })
        };
        let [pre_seeds, adapt_seeds, post_seeds] =
            self.seed_triples(n, |j| substream(crate::env::HELD_OUT_SEED, "es-eval", j));
        let task_refs: Vec<&Task> = tasks.iter().collect();
        let starts = vec![theta.as_slice(); n];
        let adapted = self.adapt_batch(
            self.test_operator(),
            &starts,
            &task_refs,
            &adapt_seeds,
            &norm,
            &c,
        );
        let out: Vec<EpisodeScore> = tasks
            .par_iter()
            .enumerate()
            .map(|(j, task)| {
                let (mut pre_path, mut post_path) = (Vec::new(), Vec::new());
                let (pre, _) = episode(task, &theta, pre_seeds[j], &mut pre_path);
                let (post, success) = episode(task, &adapted[j], post_seeds[j], &mut post_path);
                EpisodeScore {
                    pre,
                    post,
                    success,
                    paths: [pre_path, post_path],
                }
            })
            .collect();
        Evaluation::of_episodes(self.env.as_ref(), &tasks, &out)
    }
}
