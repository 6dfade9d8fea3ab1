//! The training harness: exact resume from a checkpoint, determinism, and the
//! non-finite stop. Uses a toy algorithm (linear regression with Adam on data drawn from
//! a named stream) so that the contract is tested independently of any meta-learner.

use burn::nn::Linear;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use metarl::nn::{linear, tensor2, to_vec, Init};
use metarl::params::flatten;
use metarl::rng::{stream, Rng};
use metarl::train::{
    load_module, load_optimizer, module_bytes, optimizer_bytes, run, Checkpoint, LoopConfig,
    MetaLearner, Metrics, Phases, RunDir,
};
use metarl::Error;
use rand_distr::{Distribution, StandardNormal};

struct Toy {
    model: Linear,
    optim: ModuleOptimizer,
    data: Rng,
    device: Device,
    blow_up_at: Option<usize>,
}

impl Toy {
    fn new(seed: u64) -> Self {
        let device = metarl::device::DeviceKind::Flex
            .device()
            .unwrap()
            .autodiff();
        Self {
            model: linear(
                3,
                1,
                Init::XavierUniform,
                &mut stream(seed, "policy"),
                &device,
            ),
            optim: AdamConfig::new().init(),
            data: stream(seed, "data"),
            device,
            blow_up_at: None,
        }
    }
}

impl MetaLearner for Toy {
    fn step(&mut self, it: usize, _phases: &mut Phases) -> metarl::Result<Metrics> {
        let w = [1.0f32, -2.0, 0.5];
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..32 {
            let xi: [f32; 3] = std::array::from_fn(|_| StandardNormal.sample(&mut self.data));
            y.push(xi.iter().zip(w).map(|(a, b)| a * b).sum::<f32>());
            x.extend(xi);
        }
        let pred = self.model.forward(tensor2(x, 32, 3, &self.device));
        let diff = pred - tensor2(y, 32, 1, &self.device);
        let loss = diff.powi_scalar(2).mean();
        let l = to_vec(loss.clone())[0] as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(0.05, self.model.clone(), grads);
        let l = if self.blow_up_at == Some(it) {
            f64::NAN
        } else {
            l
        };
        Ok(Metrics::new().with("loss", l).with("env_steps", 32.0))
    }

    fn parameters_finite(&self) -> bool {
        flatten(&self.model).iter().all(|x| x.is_finite())
    }

    fn checkpoint(&self) -> metarl::Result<Checkpoint> {
        Ok(Checkpoint::default()
            .with_file("model.bpk", module_bytes(&self.model)?)
            .with_file("optim.bpk", optimizer_bytes(&self.optim)?)
            .with_rng("data", &self.data))
    }

    fn restore(&mut self, ck: &Checkpoint) -> metarl::Result<()> {
        self.model = load_module(self.model.clone(), ck.file("model.bpk")?)?;
        self.optim = load_optimizer(AdamConfig::new().init(), ck.file("optim.bpk")?)?;
        self.data = ck.rng("data")?;
        Ok(())
    }
}

fn rows_without_wall_clock(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.pop(); // wall_seconds is the last column
            cells.join(",")
        })
        .collect()
}

fn cfg(iterations: usize) -> LoopConfig {
    LoopConfig {
        iterations,
        checkpoint_every: 3,
        quiet: true,
    }
}

#[test]
fn resuming_from_a_checkpoint_reproduces_the_uninterrupted_run() {
    let d = tempfile::tempdir().unwrap();
    let full = RunDir::create(Some(&d.path().join("full")), "toy", "none", 1).unwrap();
    let mut a = Toy::new(1);
    let res = run(&mut a, &full, &cfg(10), 0, "toy").unwrap();
    assert_eq!(res.iterations_run, 10);
    assert_eq!(res.env_steps, 320.0);

    // Interrupted: 7 iterations (last checkpoint at 6), then a fresh process resumes.
    let part = RunDir::create(Some(&d.path().join("part")), "toy", "none", 1).unwrap();
    let mut b = Toy::new(1);
    run(&mut b, &part, &cfg(7), 0, "toy").unwrap();
    let ck = Checkpoint::load(&part.checkpoint_path()).unwrap();
    assert_eq!(
        ck.iteration, 7,
        "a checkpoint is written at the end of a run"
    );
    // Simulate a crash after iteration 7 whose checkpoint never happened: roll back to 6.
    let mut c = Toy::new(1);
    let ck6 = {
        let mut t = Toy::new(1);
        let tmp = RunDir::create(Some(&d.path().join("six")), "toy", "none", 1).unwrap();
        run(&mut t, &tmp, &cfg(6), 0, "toy").unwrap();
        Checkpoint::load(&tmp.checkpoint_path()).unwrap()
    };
    ck6.save(&part.checkpoint_path()).unwrap();
    let ck = Checkpoint::load(&part.checkpoint_path()).unwrap();
    c.restore(&ck).unwrap();
    let res = run(&mut c, &part, &cfg(10), ck.iteration, "toy").unwrap();
    assert_eq!(res.iterations_run, 4);
    assert_eq!(res.env_steps, 320.0, "steps before the resume are counted");

    assert_eq!(flatten(&a.model), flatten(&c.model));
    assert_eq!(
        rows_without_wall_clock(&full.progress_path()),
        rows_without_wall_clock(&part.progress_path())
    );
}

#[test]
fn same_seed_gives_the_same_progress_rows() {
    let d = tempfile::tempdir().unwrap();
    let r1 = RunDir::create(Some(&d.path().join("a")), "toy", "none", 2).unwrap();
    let r2 = RunDir::create(Some(&d.path().join("b")), "toy", "none", 2).unwrap();
    run(&mut Toy::new(2), &r1, &cfg(5), 0, "toy").unwrap();
    run(&mut Toy::new(2), &r2, &cfg(5), 0, "toy").unwrap();
    assert_eq!(
        rows_without_wall_clock(&r1.progress_path()),
        rows_without_wall_clock(&r2.progress_path())
    );
    // The loss decreases: the harness really trains.
    let rows = rows_without_wall_clock(&r1.progress_path());
    let loss = |r: &str| r.split(',').nth(1).unwrap().parse::<f64>().unwrap();
    assert!(loss(&rows[5]) < loss(&rows[1]));
}

#[test]
fn a_non_finite_metric_stops_the_run_after_the_last_good_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::create(Some(&d.path().join("nan")), "toy", "none", 3).unwrap();
    let mut t = Toy::new(3);
    t.blow_up_at = Some(4);
    let err = run(&mut t, &dir, &cfg(10), 0, "toy").unwrap_err();
    match &err {
        Error::NonFinite {
            iteration,
            quantity,
        } => {
            assert_eq!((*iteration, quantity.as_str()), (4, "loss"));
        }
        other => panic!("expected NonFinite, got {other}"),
    }
    assert!(err.to_string().contains("iteration 4"));
    let ck = Checkpoint::load(&dir.checkpoint_path()).unwrap();
    assert_eq!(
        ck.iteration, 3,
        "the checkpoint from before the failure is intact"
    );
    let rows = std::fs::read_to_string(dir.progress_path()).unwrap();
    assert_eq!(rows.lines().count(), 1 + 4, "header + iterations 0..3");
}
