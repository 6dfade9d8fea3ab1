//! Held-out evaluation of a Gaussian meta-policy and its checkpoint state: what the
//! policy-gradient learners (ProMP, PG-MAML) share to meet [`crate::learner::MetaLearner`].

use std::sync::Arc;

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;

use super::{adapt, process, sample_tasks, MetaPgConfig, SamplerRngs, TaskPolicies};
use crate::checkpoint::{load_module, load_optimizer, module_bytes, optimizer_bytes};
use crate::env::{Env, TaskDistribution, VecEnv, HELD_OUT_SEED};
use crate::error::Result;
use crate::learner::{Checkpoint, Evaluation, MeanActionScore, ReturnScores, VelocityError};
use crate::nn::functional::GaussianParams;
use crate::nn::GaussianPolicy;
use crate::plot::MEAN_ROLLOUT;
use crate::rng::{stream, Rng};
use crate::rollout::sample;
use crate::traj::{positions_csv, task_marker_rows};

/// Samples the first `n` held-out tasks (fixed for every run), adapts the meta-policy with
/// the run's inner step (first order: no meta-gradient is needed) and measures returns.
/// Sampling noise comes from fixed streams, so two runs are scored on the same draws.
/// The adapted policy is also scored acting with its mean action (`mean_action`), after
/// the stochastic batches, so those draws do not depend on it. Last, for the plot only,
/// the first tasks' mean-action paths before adaptation and after each inner step are
/// recorded from one start state per task (a stream of their own: no score depends on
/// them).
pub fn evaluate(
    envf: &Arc<dyn Env>,
    policy: &GaussianPolicy,
    meta: &MetaPgConfig,
    n: usize,
    device: &Device,
) -> Result<Evaluation> {
    let tasks = TaskDistribution::new(envf.clone()).held_out(n);
    let (mut env_rng, mut act_rng) = (
        stream(HELD_OUT_SEED, "eval-env"),
        stream(HELD_OUT_SEED, "eval-action"),
    );
    let mut paths = PathsCsv::new(envf, &tasks, meta.rollouts);
    let mut p = GaussianParams::from_policy(&policy.valid());
    // The policy before adaptation and after each inner step, for the mean-action paths.
    let mut steps = vec![p.clone()];
    let mut returns = Vec::new();
    let mut success = None;
    let mut speed_miss = Vec::new();
    for s in 0..=meta.inner_steps {
        let (er, ar) = (&mut env_rng, &mut act_rng);
        let tr = sample_tasks(envf, &tasks, &p, meta.rollouts, er, ar, device);
        let phase = phase_name(s);
        paths.push(&tr, &phase);
        returns.push(tr.mean_return());
        success = tr.success_rate();
        speed_miss.push(tr.mean_velocity_error());
        if s < meta.inner_steps {
            let b = process(&tr, meta, device)?;
            p = adapt(&p, &b, meta.estimator, meta.inner_lr, false);
            steps.push(p.clone());
        }
    }
    let mut venv = VecEnv::for_tasks(envf.clone(), &tasks, meta.rollouts, &mut env_rng);
    let actor = TaskPolicies::new(&p, meta.rollouts).mean_actions();
    let mean = sample(&actor, &mut venv, meta.rollouts, &mut act_rng, device);
    let scores = ReturnScores {
        pre_return: returns[0],
        post_return: returns[1..].to_vec(),
        success_rate: success,
        mean_action: Some(MeanActionScore {
            post_return: mean.mean_return(),
            success_rate: mean.success_rate(),
        }),
        velocity_error: VelocityError::of(speed_miss[0], speed_miss[meta.inner_steps]),
    };
    let shown = &tasks[..tasks.len().min(PATH_TASKS)];
    for (s, params) in steps.iter().enumerate() {
        let phase = phase_name(s);
        let mut rng = stream(HELD_OUT_SEED, "eval-paths");
        let mut venv = VecEnv::for_tasks(envf.clone(), shown, 1, &mut rng);
        let actor = TaskPolicies::new(&params.tasks(0, shown.len()), 1).mean_actions();
        let tr = sample(&actor, &mut venv, 1, &mut rng, device);
        paths.push_mean(&tr, &phase);
    }
    Ok(Evaluation::returns(n, scores, paths.csv))
}

/// The `trajectories.csv` phase of the policy after `step` inner steps: `pre`, `post-1`, ….
fn phase_name(step: usize) -> String {
    if step == 0 {
        "pre".to_string()
    } else {
        format!("post-{step}")
    }
}

/// Held-out tasks whose paths an evaluation records.
const PATH_TASKS: usize = 4;

/// `trajectories.csv` of an evaluation: the paths of the first [`PATH_TASKS`] tasks'
/// episodes, one block per phase, with each task's goals.
struct PathsCsv {
    goals: Vec<Option<[f32; 2]>>,
    shown: usize,
    csv: String,
    /// The shown tasks' further goals ([`task_marker_rows`]), written after the header.
    extra: String,
}

impl PathsCsv {
    fn new(envf: &Arc<dyn Env>, tasks: &[crate::env::Task], rollouts: usize) -> Self {
        let goals = tasks
            .iter()
            .map(|t| envf.goals(t).first().copied())
            .collect();
        let shown = tasks.len().min(PATH_TASKS) * rollouts;
        let extra = tasks
            .iter()
            .take(PATH_TASKS)
            .enumerate()
            .map(|(m, t)| task_marker_rows(m, &envf.goals(t), envf.target(t)))
            .collect();
        Self {
            goals,
            shown,
            csv: String::new(),
            extra,
        }
    }

    /// Appends `tr`'s shown rows as phase `phase` (the header with the first block).
    fn push(&mut self, tr: &crate::traj::Trajectories, phase: &str) {
        let header = self.csv.is_empty();
        let rows = tr.select_rows(0, self.shown);
        self.csv
            .push_str(&positions_csv(&rows, phase, &self.goals, None, header));
        if header {
            self.csv.push_str(&std::mem::take(&mut self.extra));
        }
    }

    /// Appends the mean-action paths `tr` (one row per shown task) as phase `phase`,
    /// rollout [`MEAN_ROLLOUT`].
    fn push_mean(&mut self, tr: &crate::traj::Trajectories, phase: &str) {
        let header = self.csv.is_empty();
        let csv = positions_csv(tr, phase, &self.goals, Some(MEAN_ROLLOUT), header);
        self.csv.push_str(&csv);
    }
}

/// The state of a Gaussian-policy learner trained by Adam: `policy.bpk`, `adam.bpk` and
/// the task, environment and action streams.
pub fn policy_checkpoint(
    policy: &GaussianPolicy,
    optim: &ModuleOptimizer,
    tasks_rng: &Rng,
    rngs: &SamplerRngs,
) -> Result<Checkpoint> {
    let ck = Checkpoint::default()
        .with_file("policy.bpk", module_bytes(policy)?)
        .with_file("adam.bpk", optimizer_bytes(optim)?)
        .with_rng("tasks", tasks_rng);
    Ok(rngs.save(ck))
}

/// Restores what [`policy_checkpoint`] wrote, in place.
pub fn restore_policy(
    ck: &Checkpoint,
    policy: &mut GaussianPolicy,
    optim: &mut ModuleOptimizer,
    tasks_rng: &mut Rng,
    rngs: &mut SamplerRngs,
) -> Result<()> {
    *policy = load_module(policy.clone(), ck.file("policy.bpk")?)?;
    *optim = load_optimizer(AdamConfig::new().init(), ck.file("adam.bpk")?)?;
    *tasks_rng = ck.rng("tasks")?;
    *rngs = SamplerRngs::restore(ck)?;
    Ok(())
}

/// The [`Evaluation`] of a learner that scores one batch of episodes before adaptation
/// and one after (MAME: explore, then exploit; MAESN: prior latents, then one latent
/// step), `rollouts` episodes per task of `tasks`: mean returns, the success rate after
/// adaptation, and the first four tasks' paths under the phase names `phases`.
pub fn before_after_evaluation(
    envf: &Arc<dyn Env>,
    tasks: &[crate::env::Task],
    (pre, post): (&crate::traj::Trajectories, &crate::traj::Trajectories),
    rollouts: usize,
    phases: (&str, &str),
) -> Evaluation {
    let mut paths = PathsCsv::new(envf, tasks, rollouts);
    paths.push(pre, phases.0);
    paths.push(post, phases.1);
    let scores = ReturnScores {
        pre_return: pre.mean_return(),
        post_return: vec![post.mean_return()],
        success_rate: post.success_rate(),
        mean_action: None,
        velocity_error: VelocityError::of(pre.mean_velocity_error(), post.mean_velocity_error()),
    };
    Evaluation::returns(tasks.len(), scores, paths.csv)
}
