//! The learner contract: what every meta-learning algorithm offers the training loop.
//!
//! An algorithm ([`crate::algo`]) implements [`MetaLearner`]: [`MetaLearner::step`] runs one
//! meta-iteration and returns its [`Metrics`]; [`MetaLearner::checkpoint`] and
//! [`MetaLearner::restore`] carry everything needed to continue exactly;
//! [`MetaLearner::evaluate`] scores the meta-policy on the fixed held-out tasks. The loop,
//! the run directory, `progress.csv`, `summary.json` and the terminal live in
//! [`crate::train`], which depends on this module and never the other way round.

use serde_json::{json, Value};

pub use crate::checkpoint::Checkpoint;
use crate::env::{Env, Task};
use crate::error::{Error, Result};

/// Named scalar results of one iteration, in column order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics(pub Vec<(String, f64)>);

impl Metrics {
    /// An empty set of metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a metric (builder style).
    pub fn with(mut self, name: impl Into<String>, value: f64) -> Self {
        self.push(name, value);
        self
    }

    /// Appends a metric.
    pub fn push(&mut self, name: impl Into<String>, value: f64) {
        self.0.push((name.into(), value));
    }

    /// The value of metric `name`, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// The values of the numbered metrics `{prefix}_1`, `{prefix}_2`, … up to the first
    /// missing one (the returns after each inner step: `post_return_1`, …). A metric named
    /// just `prefix` counts as the only one.
    pub fn numbered(&self, prefix: &str) -> Vec<f64> {
        let mut out: Vec<f64> = (1..)
            .map_while(|k| self.get(&format!("{prefix}_{k}")))
            .collect();
        if out.is_empty() {
            out.extend(self.get(prefix));
        }
        out
    }

    /// The first metric whose value is NaN or infinite.
    pub fn first_non_finite(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, v)| !v.is_finite())
            .map(|(n, _)| n.as_str())
    }
}

/// The stopwatch the training loop lends to [`MetaLearner::step`]: the algorithm marks
/// where each of its phases begins ([`Phases::enter`]), the loop reads the seconds spent
/// in each and writes them as `<phase>_seconds` columns of `progress.csv`. Algorithms
/// never read a clock themselves.
#[derive(Debug, Default)]
pub struct Phases {
    current: Option<(&'static str, std::time::Instant)>,
    totals: Vec<(&'static str, f64)>,
}

impl Phases {
    /// A stopwatch with no phase running.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends the running phase (if any) and starts `phase`; time spent in a phase entered
    /// several times adds up.
    pub fn enter(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        self.close(now);
        self.current = Some((phase, now));
    }

    fn close(&mut self, now: std::time::Instant) {
        if let Some((name, since)) = self.current.take() {
            let dt = (now - since).as_secs_f64();
            match self.totals.iter_mut().find(|(n, _)| *n == name) {
                Some(t) => t.1 += dt,
                None => self.totals.push((name, dt)),
            }
        }
    }

    /// Ends the running phase and returns `<phase>_seconds` metrics, in the order the
    /// phases were first entered.
    pub fn finish(mut self) -> Metrics {
        self.close(std::time::Instant::now());
        Metrics(
            self.totals
                .into_iter()
                .map(|(n, s)| (format!("{n}_seconds"), s))
                .collect(),
        )
    }
}

/// A meta-learning algorithm the training loop can step, checkpoint, resume and evaluate.
pub trait MetaLearner {
    /// Runs meta-iteration `iteration` (0-based) and returns its metrics, marking its
    /// phases (sampling, inner adaptation, outer update, …) on `phases`. Metrics named
    /// `pre_return` and `post_return_<k>` are shown live by the progress reporter and
    /// summarised in `summary.json`; `env_steps` (steps taken this iteration) is
    /// accumulated by the loop.
    fn step(&mut self, iteration: usize, phases: &mut Phases) -> Result<Metrics>;

    /// Whether the learned parameters are all finite (checked after every iteration).
    fn parameters_finite(&self) -> bool;

    /// Everything needed to continue exactly: modules, optimizer state, RNG states.
    fn checkpoint(&self) -> Result<Checkpoint>;

    /// Restores the state written by [`MetaLearner::checkpoint`].
    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()>;

    /// Scores the meta-policy on the first `tasks` tasks of the family's fixed held-out
    /// set (the same for every run and seed), before and after adaptation. Learners
    /// without a held-out protocol keep the default, an error that says so.
    fn evaluate(&self, tasks: usize) -> Result<Evaluation> {
        let _ = tasks;
        Err(Error::Other(
            "this learner defines no held-out evaluation".into(),
        ))
    }
}

/// Held-out scores of a meta-policy: returns for reinforcement-learning tasks, a query
/// MSE curve for supervised ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Tasks evaluated.
    pub tasks: usize,
    /// What was measured.
    pub scores: Scores,
    /// Positions of the first tasks' episodes, phases `pre`, `post-1`, … (point envs;
    /// header only for others); `None` for supervised tasks.
    pub trajectories_csv: Option<String>,
}

/// The measured part of an [`Evaluation`].
#[derive(Clone, Debug, PartialEq)]
pub enum Scores {
    /// Mean undiscounted returns of a reinforcement-learning family.
    Returns(ReturnScores),
    /// Query mean-squared error of a supervised family after 0, 1, … adaptation steps.
    Mse {
        /// Mean MSE after each number of steps, `mse[0]` before adaptation.
        mse: Vec<f64>,
        /// 95% confidence half-widths of `mse`.
        ci95: Vec<f64>,
    },
}

/// Returns before and after adaptation on held-out tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct ReturnScores {
    /// Mean return before adaptation.
    pub pre_return: f64,
    /// Mean return after each inner step (one entry for single-step learners).
    pub post_return: Vec<f64>,
    /// Success rate after the last inner step, for families that define success.
    pub success_rate: Option<f64>,
    /// The adapted policy acting with its mean action (no sampling noise), on the same
    /// tasks after the last inner step; `None` where not measured.
    pub mean_action: Option<MeanActionScore>,
    /// Mean |v − v*| before and after adaptation, for velocity-target families; `None`
    /// for the others and where not measured.
    pub velocity_error: Option<VelocityError>,
}

/// How far the episodes' velocity missed the task's target v*: the mean over episodes of
/// each episode's mean |v − v*| per step, before and after adaptation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VelocityError {
    /// Before adaptation.
    pub pre: f64,
    /// After the last inner step.
    pub post: f64,
}

impl VelocityError {
    /// The pair, when both batches measured one.
    pub fn of(pre: Option<f64>, post: Option<f64>) -> Option<Self> {
        Some(Self {
            pre: pre?,
            post: post?,
        })
    }
}

/// Return and success of an adapted Gaussian policy acting with its mean action μ(s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanActionScore {
    /// Mean return.
    pub post_return: f64,
    /// Success rate, for families that define success.
    pub success_rate: Option<f64>,
}

impl MeanActionScore {
    /// `{"post_return": …, "success_rate": …}`.
    pub fn to_json(&self) -> Value {
        json!({ "post_return": self.post_return, "success_rate": self.success_rate })
    }
}

/// Held-out tasks whose pre- and post-adaptation paths the single-episode evaluations
/// ([`Evaluation::of_episodes`]) record.
pub const EVAL_PATH_TASKS: usize = 6;

/// One held-out task scored by one episode before and one after adaptation (learners
/// with deterministic policies: ES-MAML, ES + DDPG).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpisodeScore {
    /// Return before adaptation.
    pub pre: f64,
    /// Return after adaptation.
    pub post: f64,
    /// The family's success verdict after adaptation.
    pub success: Option<bool>,
    /// 2-D paths of the two episodes, `[pre, post]` (empty where not recorded).
    pub paths: [Vec<[f32; 2]>; 2],
}

impl Evaluation {
    /// The evaluation of `tasks` from one [`EpisodeScore`] each: mean returns, the success
    /// rate after adaptation, and the paths of the first [`EVAL_PATH_TASKS`] tasks as
    /// `trajectories.csv` (phases `pre` and `post-1`, with the task's goals).
    pub fn of_episodes(env: &dyn Env, tasks: &[Task], scores: &[EpisodeScore]) -> Self {
        let m = scores.len() as f64;
        let oks: Vec<bool> = scores.iter().filter_map(|o| o.success).collect();
        let success_rate =
            (!oks.is_empty()).then(|| oks.iter().filter(|&&b| b).count() as f64 / oks.len() as f64);
        let mut csv = String::from("phase,task,rollout,t,x,y,goal_x,goal_y\n");
        for (j, (task, o)) in tasks.iter().zip(scores).take(EVAL_PATH_TASKS).enumerate() {
            let goals = env.goals(task);
            let (gx, gy) = match goals.first() {
                Some([x, y]) => (x.to_string(), y.to_string()),
                None => (String::new(), String::new()),
            };
            csv.push_str(&crate::traj::task_marker_rows(j, &goals, env.target(task)));
            for (phase, path) in [("pre", &o.paths[0]), ("post-1", &o.paths[1])] {
                for (t, [x, y]) in path.iter().enumerate() {
                    csv.push_str(&format!("{phase},{j},0,{t},{x},{y},{gx},{gy}\n"));
                }
            }
        }
        let scores = ReturnScores {
            pre_return: scores.iter().map(|o| o.pre).sum::<f64>() / m,
            post_return: vec![scores.iter().map(|o| o.post).sum::<f64>() / m],
            success_rate,
            mean_action: None,
            velocity_error: None,
        };
        Self::returns(tasks.len(), scores, csv)
    }

    /// An evaluation of returns.
    pub fn returns(tasks: usize, scores: ReturnScores, trajectories_csv: String) -> Self {
        Self {
            tasks,
            scores: Scores::Returns(scores),
            trajectories_csv: Some(trajectories_csv),
        }
    }

    /// The return scores; `None` for a supervised evaluation.
    pub fn return_scores(&self) -> Option<&ReturnScores> {
        match &self.scores {
            Scores::Returns(r) => Some(r),
            Scores::Mse { .. } => None,
        }
    }

    /// The `eval` object of `summary.json` and `eval.json`: `tasks` with `pre_return`,
    /// `post_return` (a list, one entry per inner step), `success_rate` and `mean_action`
    /// (when measured) for returns; `tasks`, `mse` and `ci95` for supervised tasks.
    pub fn to_json(&self) -> Value {
        match &self.scores {
            Scores::Returns(r) => {
                let mut j = json!({
                    "tasks": self.tasks,
                    "pre_return": r.pre_return,
                    "post_return": r.post_return,
                    "success_rate": r.success_rate,
                });
                if let (Some(map), Some(m)) = (j.as_object_mut(), r.mean_action) {
                    map.insert("mean_action".into(), m.to_json());
                }
                if let (Some(map), Some(v)) = (j.as_object_mut(), r.velocity_error) {
                    map.insert(
                        "velocity_error".into(),
                        json!({ "pre": v.pre, "post": v.post }),
                    );
                }
                j
            }
            Scores::Mse { mse, ci95 } => json!({ "tasks": self.tasks, "mse": mse, "ci95": ci95 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_metrics_are_read_in_order_up_to_the_first_gap() {
        let m = Metrics::new()
            .with("post_return_2", 2.0)
            .with("post_return_1", 1.0)
            .with("post_return_4", 4.0);
        assert_eq!(m.numbered("post_return"), vec![1.0, 2.0]);
        let single = Metrics::new().with("post_mse", 0.5);
        assert_eq!(single.numbered("post_mse"), vec![0.5]);
        assert!(Metrics::new().numbered("post_return").is_empty());
    }

    #[test]
    fn phases_add_up_per_name_in_first_entered_order() {
        let mut p = Phases::new();
        p.enter("sample");
        p.enter("inner");
        p.enter("sample");
        std::thread::sleep(std::time::Duration::from_millis(2));
        p.enter("outer");
        let m = p.finish();
        let names: Vec<&str> = m.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["sample_seconds", "inner_seconds", "outer_seconds"]);
        assert!(m.get("sample_seconds").unwrap() >= 0.002);
        assert!(Phases::new().finish().0.is_empty());
    }

    #[test]
    fn return_evaluations_list_post_returns_and_supervised_ones_their_curve() {
        let r = Evaluation::returns(
            3,
            ReturnScores {
                pre_return: -2.0,
                post_return: vec![-1.0],
                success_rate: None,
                mean_action: None,
                velocity_error: None,
            },
            String::new(),
        );
        let j = r.to_json();
        assert_eq!(j["post_return"], json!([-1.0]));
        assert!(j.get("mean_action").is_none());
        let s = Evaluation {
            tasks: 2,
            scores: Scores::Mse {
                mse: vec![1.0, 0.5],
                ci95: vec![0.1, 0.1],
            },
            trajectories_csv: None,
        };
        assert_eq!(s.to_json()["mse"], json!([1.0, 0.5]));
    }
}
