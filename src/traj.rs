//! Struct-of-arrays trajectories `[T, N, ·]`, time-major, with masks.
//!
//! Row `i` is one episode; rows of one task are contiguous (`rows_per_task` of them), so
//! task `m` owns rows `m·K .. (m+1)·K`. Entry `(t, i)` of a `[T, N]` array is at
//! `t·N + i`; of a `[T, N, D]` array at `(t·N + i)·D + j`. `mask[t·N + i]` is 1 when the
//! transition at step t of row i is real data and 0 after the episode ended.

use crate::env::Task;

/// A batch of episodes sampled in lock-step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trajectories {
    /// Number of time steps stored (the horizon, or fewer if every row ended early).
    pub steps: usize,
    /// Number of rows (episodes).
    pub rows: usize,
    /// Episodes per task.
    pub rows_per_task: usize,
    /// Observation size.
    pub obs_dim: usize,
    /// Action size.
    pub act_dim: usize,
    /// Observation before the action at t, `[T, N, obs_dim]`.
    pub obs: Vec<f32>,
    /// Action taken at t (unclipped, as sampled), `[T, N, act_dim]`.
    pub act: Vec<f32>,
    /// log π(a_t|s_t) under the sampling policy, `[T, N]` (0 for deterministic policies).
    pub logp: Vec<f32>,
    /// Reward of the transition at t, `[T, N]`.
    pub reward: Vec<f32>,
    /// 1 where the transition at t is real, `[T, N]`.
    pub mask: Vec<f32>,
    /// The episode terminated at t, `[T, N]`.
    pub terminated: Vec<bool>,
    /// The episode was truncated by the horizon at t, `[T, N]`.
    pub truncated: Vec<bool>,
    /// Per row: the family's success verdict at the end of the episode, if it defines one.
    pub success: Vec<Option<bool>>,
    /// Per row, for velocity-target families: the episode's mean |v − v*| per step.
    pub velocity_error: Vec<Option<f64>>,
    /// The task of each group of `rows_per_task` rows, `[N / rows_per_task]`.
    pub tasks: Vec<Task>,
    /// Observation after the last step, `[N, obs_dim]`.
    pub last_obs: Vec<f32>,
    /// For point environments, the 2-D position before each step and after the last,
    /// `[T + 1, N, 2]`; empty otherwise.
    pub positions: Vec<f32>,
}

impl Trajectories {
    /// Number of tasks.
    pub fn num_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Undiscounted return of every row, `[N]`.
    pub fn episode_returns(&self) -> Vec<f32> {
        let n = self.rows;
        let mut out = vec![0.0f64; n];
        for t in 0..self.steps {
            for (i, o) in out.iter_mut().enumerate() {
                *o += (self.reward[t * n + i] * self.mask[t * n + i]) as f64;
            }
        }
        out.into_iter().map(|x| x as f32).collect()
    }

    /// Mean undiscounted episode return over all rows.
    pub fn mean_return(&self) -> f64 {
        let r = self.episode_returns();
        r.iter().map(|&x| x as f64).sum::<f64>() / r.len().max(1) as f64
    }

    /// Mean undiscounted episode return of each task, `[M]`.
    pub fn task_returns(&self) -> Vec<f64> {
        self.episode_returns()
            .chunks(self.rows_per_task.max(1))
            .map(|c| c.iter().map(|&x| x as f64).sum::<f64>() / c.len() as f64)
            .collect()
    }

    /// Number of real transitions (environment steps taken).
    pub fn env_steps(&self) -> usize {
        self.mask.iter().filter(|&&m| m > 0.0).count()
    }

    /// Fraction of rows whose episode succeeded, for families that define success.
    pub fn success_rate(&self) -> Option<f64> {
        let v: Vec<bool> = self.success.iter().filter_map(|s| *s).collect();
        if v.is_empty() {
            None
        } else {
            Some(v.iter().filter(|&&s| s).count() as f64 / v.len() as f64)
        }
    }

    /// Mean over rows of the episode's mean |v − v*|, for velocity-target families
    /// (`None` for the others).
    pub fn mean_velocity_error(&self) -> Option<f64> {
        let v: Vec<f64> = self.velocity_error.iter().filter_map(|e| *e).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// Length of every row's episode, `[N]`.
    pub fn lengths(&self) -> Vec<usize> {
        (0..self.rows)
            .map(|i| {
                (0..self.steps)
                    .filter(|&t| self.mask[t * self.rows + i] > 0.0)
                    .count()
            })
            .collect()
    }

    /// The rows `lo..hi` as their own batch (same steps), e.g. one task's episodes.
    pub fn select_rows(&self, lo: usize, hi: usize) -> Trajectories {
        assert!(
            lo < hi && hi <= self.rows,
            "row range must lie inside the batch"
        );
        assert!(
            lo.is_multiple_of(self.rows_per_task) && hi.is_multiple_of(self.rows_per_task),
            "row range must cover whole tasks"
        );
        let (n, k) = (self.rows, hi - lo);
        let pick = |v: &[f32], d: usize| -> Vec<f32> {
            (0..self.steps)
                .flat_map(|t| v[(t * n + lo) * d..(t * n + hi) * d].iter().copied())
                .collect()
        };
        let pick_b = |v: &[bool]| -> Vec<bool> {
            (0..self.steps)
                .flat_map(|t| v[t * n + lo..t * n + hi].iter().copied())
                .collect()
        };
        Trajectories {
            steps: self.steps,
            rows: k,
            rows_per_task: self.rows_per_task,
            obs_dim: self.obs_dim,
            act_dim: self.act_dim,
            obs: pick(&self.obs, self.obs_dim),
            act: pick(&self.act, self.act_dim),
            logp: pick(&self.logp, 1),
            reward: pick(&self.reward, 1),
            mask: pick(&self.mask, 1),
            terminated: pick_b(&self.terminated),
            truncated: pick_b(&self.truncated),
            success: self.success[lo..hi].to_vec(),
            velocity_error: self.velocity_error[lo..hi].to_vec(),
            tasks: self.tasks[lo / self.rows_per_task..hi / self.rows_per_task].to_vec(),
            last_obs: self.last_obs[lo * self.obs_dim..hi * self.obs_dim].to_vec(),
            positions: if self.positions.is_empty() {
                Vec::new()
            } else {
                (0..=self.steps)
                    .flat_map(|t| {
                        self.positions[(t * n + lo) * 2..(t * n + hi) * 2]
                            .iter()
                            .copied()
                    })
                    .collect()
            },
        }
    }

    /// One batch per task.
    pub fn split_tasks(&self) -> Vec<Trajectories> {
        let k = self.rows_per_task;
        (0..self.num_tasks())
            .map(|m| self.select_rows(m * k, (m + 1) * k))
            .collect()
    }
}

/// CSV rows `goal,m,,,,,goal_x,goal_y` for the goals of task `m` after its first (which
/// the path rows carry), and a row `target,m,,,,,v,` for a one-number target v
/// ([`crate::env::Env::target`]): `metarl plot` draws every goal of a task (e.g. all six
/// of six circles), names the target in the task's panels, and finds no path in these
/// rows.
pub fn task_marker_rows(m: usize, goals: &[[f32; 2]], target: Option<f32>) -> String {
    let mut rows: String = goals
        .iter()
        .skip(1)
        .map(|[x, y]| format!("goal,{m},,,,,{x},{y}\n"))
        .collect();
    if let Some(v) = target {
        rows.push_str(&format!("target,{m},,,,,{v},\n"));
    }
    rows
}

/// Writes the positions of a point-environment batch as CSV rows
/// `phase,task,rollout,t,x,y,goal_x,goal_y` (the input of `metarl plot`), one row per
/// visited position while the episode runs; `goals[m]` is task m's first goal, if any.
/// `rollout` names every row's rollout cell (e.g. `mean` for mean-action paths, drawn
/// bold by `metarl plot`); `None` numbers the rows of a task from 0.
/// `header` adds the column names first.
pub fn positions_csv(
    traj: &Trajectories,
    phase: &str,
    goals: &[Option<[f32; 2]>],
    rollout: Option<&str>,
    header: bool,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if header {
        out.push_str("phase,task,rollout,t,x,y,goal_x,goal_y\n");
    }
    if traj.positions.is_empty() {
        return out;
    }
    let (n, k) = (traj.rows, traj.rows_per_task);
    for (i, &len) in traj.lengths().iter().enumerate() {
        let m = i / k;
        let r = rollout.map_or_else(|| (i % k).to_string(), str::to_string);
        let (gx, gy) = match goals.get(m).copied().flatten() {
            Some([x, y]) => (x.to_string(), y.to_string()),
            None => (String::new(), String::new()),
        };
        for t in 0..=len {
            let (x, y) = (
                traj.positions[(t * n + i) * 2],
                traj.positions[(t * n + i) * 2 + 1],
            );
            writeln!(out, "{phase},{m},{r},{t},{x},{y},{gx},{gy}")
                .expect("writing to a String cannot fail");
        }
    }
    out
}
