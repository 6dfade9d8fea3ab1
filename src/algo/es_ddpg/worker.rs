//! One worker of Algorithm 1 — its draws, exploration episodes, DDPG adaptation and
//! fitness — the gathering of every worker's results between MPI ranks, and the held-out
//! evaluation. Everything here is deterministic given the streams it is handed.

use super::*;

/// One episode of a deterministic flat policy, every transition kept.
#[derive(Clone, Debug, Default)]
pub(super) struct Episode {
    obs: Vec<f32>,
    act: Vec<f32>,
    rew: Vec<f32>,
    next_obs: Vec<f32>,
    terminated: Vec<bool>,
    success: Option<bool>,
    path: Vec<[f32; 2]>,
}

impl Episode {
    fn ret(&self) -> f64 {
        self.rew.iter().map(|&r| r as f64).sum()
    }
}

/// What one worker reports: its draws' sums (for eq. 10; the parameter vectors are dropped
/// once explored), fitness values and diagnostics.
pub(super) struct WorkerOut {
    pub(super) actor: Draw,
    pub(super) critic: Draw,
    /// Mean return of the K exploration episodes.
    pub(super) explore: f64,
    /// Return of θ̄ before adaptation.
    pub(super) pre: f64,
    /// F_actor: return of the adapted θ̄'.
    pub(super) post: f64,
    /// −F_critic: the adapted critic's squared error.
    pub(super) critic_error: f64,
    pub(super) losses: Losses,
    pub(super) steps: u64,
    pub(super) success: Option<bool>,
    /// Pre- and post-adaptation paths (point families) of the first task.
    pub(super) paths: [Vec<[f32; 2]>; 2],
}

impl EsDdpg {
    /// A worker's actor and critic draws, reduced to the sums eq. 10 needs: the first
    /// numbers of its stream `r` (after its tasks), as [`Self::worker`] draws them.
    pub(super) fn draws(&self, d: &Dists, mut r: Rng) -> (Draw, Draw) {
        let actor = draw(&d.actor_mu, &d.actor_sigma, self.cfg.draws, &mut r);
        let critic = draw(&d.critic_mu, &d.critic_sigma, 1, &mut r);
        (actor.sums_only(), critic.sums_only())
    }

    /// Every worker's results in order, given this rank's (for the workers it owns): the
    /// scalars travel between MPI ranks, each rank redraws the other workers' parameters
    /// from their streams (`draws`), as OpenAI-ES does. Paths stay empty for other ranks'
    /// workers.
    pub(super) fn gather_workers(
        &self,
        n: usize,
        mine: Vec<WorkerOut>,
        draws: impl Fn(usize) -> (Draw, Draw) + Sync,
    ) -> Vec<WorkerOut> {
        let c = self.cluster;
        if c.size() == 1 {
            return mine;
        }
        const WIDTH: usize = 8;
        let rows: Vec<f64> = mine
            .iter()
            .flat_map(|w| {
                let ok = match w.success {
                    None => -1.0,
                    Some(false) => 0.0,
                    Some(true) => 1.0,
                };
                [
                    w.explore,
                    w.pre,
                    w.post,
                    w.critic_error,
                    w.losses.critic,
                    w.losses.actor,
                    w.steps as f64,
                    ok,
                ]
            })
            .collect();
        let all = c.gather(n, WIDTH, &rows);
        let mut mine = mine.into_iter();
        let out: Vec<Option<WorkerOut>> = (0..n)
            .map(|i| c.owns(i).then(|| mine.next()))
            .map(Option::flatten)
            .collect();
        out.into_par_iter()
            .enumerate()
            .map(|(i, own)| {
                own.unwrap_or_else(|| {
                    let v = &all[i * WIDTH..(i + 1) * WIDTH];
                    let (actor, critic) = draws(i);
                    WorkerOut {
                        actor,
                        critic,
                        explore: v[0],
                        pre: v[1],
                        post: v[2],
                        critic_error: v[3],
                        losses: Losses {
                            critic: v[4],
                            actor: v[5],
                        },
                        steps: v[6] as u64,
                        success: (v[7] >= 0.0).then_some(v[7] > 0.0),
                        paths: [Vec::new(), Vec::new()],
                    }
                })
            })
            .collect()
    }

    /// One worker of Algorithm 1 on `tasks` (the same draws adapted on each; means over
    /// the tasks), randomness from `r` only. Records paths when `paths` is set.
    pub(super) fn worker(&self, d: &Dists, tasks: &[Task], r: &mut Rng, paths: bool) -> WorkerOut {
        let k = self.cfg.draws;
        let actor = draw(&d.actor_mu, &d.actor_sigma, k, r);
        let critic = draw(&d.critic_mu, &d.critic_sigma, 1, r);
        let (od, ad) = (self.env.spec().obs_dim, self.env.spec().act_dim);
        let n = tasks.len() as f64;
        let mut out = WorkerOut {
            explore: 0.0,
            pre: 0.0,
            post: 0.0,
            critic_error: 0.0,
            losses: Losses::default(),
            steps: 0,
            success: None,
            paths: [Vec::new(), Vec::new()],
            actor: Draw::default(),
            critic: Draw::default(),
        };
        for (t, task) in tasks.iter().enumerate() {
            // Exploration: one episode per draw, all K in lock-step.
            let thetas: Vec<&[f32]> = actor.thetas.iter().map(Vec::as_slice).collect();
            let seeds: Vec<u64> = (0..k).map(|_| next_seed(r)).collect();
            let explore = self.episodes(task, &thetas, &seeds, false);
            let len: usize = explore.iter().map(|e| e.rew.len()).sum();
            let mut buffer = ReplayBuffer::new(len.max(1), od, ad);
            for e in &explore {
                for s in 0..e.rew.len() {
                    buffer.push(
                        &e.obs[s * od..(s + 1) * od],
                        &e.act[s * ad..(s + 1) * ad],
                        e.rew[s],
                        &e.next_obs[s * od..(s + 1) * od],
                        e.terminated[s],
                    );
                }
            }
            // θ̄ before adaptation, for the pre-adaptation return only.
            let pre_seed = next_seed(r);
            let pre = self.episodes(task, &[&actor.mean], &[pre_seed], paths && t == 0);
            // DDPG from (θ̄, φ) on the buffer.
            let mut agent = Ddpg::new(
                unflatten(self.actor_mu.clone(), &actor.mean),
                unflatten(self.critic_mu.clone(), &critic.thetas[0]),
                self.cfg.ddpg.clone(),
            );
            let losses = agent.adapt(&buffer, r, &self.device);
            let adapted = flatten(&agent.actor);
            let post_seed = next_seed(r);
            let post = self.episodes(task, &[&adapted], &[post_seed], paths && t == 0);
            let critic_error = self.critic_error(&agent.critic, &post[0]);
            out.explore += explore.iter().map(Episode::ret).sum::<f64>() / (k as f64 * n);
            out.pre += pre[0].ret() / n;
            out.post += post[0].ret() / n;
            out.critic_error += critic_error / n;
            out.losses.critic += losses.critic / n;
            out.losses.actor += losses.actor / n;
            out.steps += (len + post[0].rew.len()) as u64;
            if t == 0 {
                out.success = post[0].success;
                out.paths = [pre[0].path.clone(), post[0].path.clone()];
            }
        }
        (out.actor, out.critic) = (actor.sums_only(), critic.sums_only());
        out
    }

    /// `mean_t (Q_φ(s_t, a_t) − G_t)²` over episode `e`, G_t its discounted return-to-go.
    pub(super) fn critic_error(&self, critic: &Critic, e: &Episode) -> f64 {
        let len = e.rew.len();
        if len == 0 {
            return 0.0;
        }
        let gamma = self.cfg.ddpg.gamma as f64;
        let mut g = vec![0.0f64; len];
        let mut acc = 0.0;
        for t in (0..len).rev() {
            acc = e.rew[t] as f64 + gamma * acc;
            g[t] = acc;
        }
        let (od, ad) = (self.env.spec().obs_dim, self.env.spec().act_dim);
        let obs = tensor2(e.obs.clone(), len, od, &self.device);
        let act = tensor2(e.act.clone(), len, ad, &self.device);
        let q = to_vec(critic.forward(obs, act).detach());
        q.iter()
            .zip(&g)
            .map(|(&q, &g)| (q as f64 - g).powi(2))
            .sum::<f64>()
            / len as f64
    }

    /// One episode per entry of `thetas` on `task`, all rows in lock-step; row `i` starts
    /// from the stream of `seeds[i]` (as [`VecEnv`] seeds rows) and keeps its transitions.
    pub(super) fn episodes(
        &self,
        task: &Task,
        thetas: &[&[f32]],
        seeds: &[u64],
        paths: bool,
    ) -> Vec<Episode> {
        let n = thetas.len();
        let (od, ad) = (self.env.spec().obs_dim, self.env.spec().act_dim);
        let mut env = VecEnv::new(self.env.clone(), vec![task.clone(); n], seeds);
        let mut obs = env.reset();
        let mut eps = vec![Episode::default(); n];
        let record = |env: &VecEnv, eps: &mut [Episode], done: &[bool]| {
            if let Some(p) = env.positions() {
                for (i, e) in eps.iter_mut().enumerate().filter(|(i, _)| !done[*i]) {
                    e.path.push([p[2 * i], p[2 * i + 1]]);
                }
            }
        };
        let mut done = vec![false; n];
        if paths {
            record(&env, &mut eps, &done);
        }
        let mut act = vec![0.0f32; n * ad];
        let mut scratch = Scratch::default();
        while !done.iter().all(|&x| x) {
            for i in (0..n).filter(|&i| !done[i]) {
                self.flat.forward_into(
                    thetas[i],
                    &obs[i * od..(i + 1) * od],
                    1,
                    &mut act[i * ad..(i + 1) * ad],
                    &mut scratch,
                );
            }
            let st = env.step(&act);
            for i in (0..n).filter(|&i| st.active[i]) {
                let e = &mut eps[i];
                e.obs.extend_from_slice(&obs[i * od..(i + 1) * od]);
                e.act.extend_from_slice(&act[i * ad..(i + 1) * ad]);
                e.rew.push(st.reward[i]);
                e.next_obs.extend_from_slice(&st.obs[i * od..(i + 1) * od]);
                e.terminated.push(st.terminated[i]);
            }
            if paths {
                record(&env, &mut eps, &done);
            }
            for i in (0..n).filter(|&i| st.active[i]) {
                if st.terminated[i] || st.truncated[i] {
                    done[i] = true;
                    eps[i].success = st.success[i];
                }
            }
            obs = st.obs;
        }
        eps
    }

    /// The held-out scores of the first `n` fixed held-out tasks: each adapted by a
    /// worker with a fixed evaluation stream.
    pub(super) fn held_out(&self, n: usize) -> Evaluation {
        let d = self.dists();
        let tasks = TaskDistribution::new(self.env.clone()).held_out(n);
        let out: Vec<WorkerOut> = tasks
            .par_iter()
            .enumerate()
            .map(|(j, task)| {
                let mut r = substream(crate::env::HELD_OUT_SEED, "es-ddpg-eval", j as u64);
                self.worker(&d, std::slice::from_ref(task), &mut r, j < EVAL_PATH_TASKS)
            })
            .collect();
        let scores: Vec<EpisodeScore> = out
            .into_iter()
            .map(|w| EpisodeScore {
                pre: w.pre,
                post: w.post,
                success: w.success,
                paths: w.paths,
            })
            .collect();
        Evaluation::of_episodes(self.env.as_ref(), &tasks, &scores)
    }
}
