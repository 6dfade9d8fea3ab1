//! DDPG pieces against closed forms and finite differences, in f64: the TD target, the
//! critic's loss and gradient, the deterministic policy gradient through the critic, the
//! soft target update, and the replay buffer (capacity, unbiased sampling, determinism).

use burn::optim::GradientsParams;
use burn::prelude::*;
use metarl::ddpg::{
    actor_loss, critic_loss, soft_update, td_targets, Batch, Ddpg, DdpgConfig, Optimizer,
    ReplayBuffer,
};
use metarl::device::f64_device;
use metarl::nn::critic::{Critic, CriticConfig};
use metarl::nn::{to_vec_f64, Activation, DeterministicPolicy, DeterministicPolicyConfig, Init};
use metarl::params::{flatten, unflatten};
use metarl::rng::stream;
use rand::Rng as _;

const OBS: usize = 3;
const ACT: usize = 2;

fn device() -> Device {
    f64_device().autodiff()
}

fn nets(d: &Device, seed: u64) -> (DeterministicPolicy, Critic) {
    let r = &mut stream(seed, "nets");
    let actor = DeterministicPolicyConfig {
        hidden: vec![5, 4],
        activation: Activation::Relu,
        tanh_output: true,
        init: Init::XavierUniform,
    }
    .init(OBS, ACT, r, d);
    let critic = CriticConfig {
        hidden1: 6,
        hidden2: 5,
        ..CriticConfig::default()
    }
    .init(OBS, ACT, r, d);
    // Non-zero biases, so that every parameter matters.
    let shift = |v: Vec<f32>, r: &mut metarl::rng::Rng| -> Vec<f32> {
        v.into_iter()
            .map(|x| x + r.random_range(-0.2..0.2))
            .collect()
    };
    let a = shift(flatten(&actor), r);
    let c = shift(flatten(&critic), r);
    (unflatten(actor, &a), unflatten(critic, &c))
}

fn batch(n: usize, seed: u64) -> Batch {
    let r = &mut stream(seed, "batch");
    let mut v = |k: usize| {
        (0..k)
            .map(|_| r.random_range(-1.0f32..1.0))
            .collect::<Vec<_>>()
    };
    let (obs, act, rew, next_obs) = (v(n * OBS), v(n * ACT), v(n), v(n * OBS));
    let done = (0..n).map(|i| if i % 3 == 2 { 1.0 } else { 0.0 }).collect();
    Batch {
        n,
        obs,
        act,
        rew,
        next_obs,
        done,
    }
}

fn scalar(t: Tensor<1>) -> f64 {
    to_vec_f64(t)[0]
}

/// Central differences of `f` at `x` (f64 parameters stored through f32 vectors would lose
/// precision, so the modules are rebuilt from f64 values by `set`).
fn fd_gradient(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|i| {
            let (mut p, mut m) = (x.to_vec(), x.to_vec());
            p[i] += h;
            m[i] -= h;
            (f(&p) - f(&m)) / (2.0 * h)
        })
        .collect()
}

/// A module's parameters as f64, and a copy of it with parameters read from f64 values.
fn params_f64<M: Module>(m: &M) -> Vec<f64> {
    struct V(Vec<f64>);
    impl burn::module::ModuleVisitor for V {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            self.0.extend(to_vec_f64(p.val()));
        }
    }
    let mut v = V(Vec::new());
    m.visit(&mut v);
    v.0
}

/// The f64 gradient of every parameter of `m`, in parameter order.
fn grads_f64<M: Module>(m: &M, g: &GradientsParams) -> Vec<f64> {
    struct G<'a>(&'a GradientsParams, Vec<f64>);
    impl burn::module::ModuleVisitor for G<'_> {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            let t: Tensor<D> = self.0.get(p.id).expect("every parameter is used");
            self.1.extend(to_vec_f64(t));
        }
    }
    let mut v = G(g, Vec::new());
    m.visit(&mut v);
    v.1
}

fn with_f64<M: Module>(m: M, x: &[f64]) -> M {
    struct S<'a>(&'a [f64], usize);
    impl burn::module::ModuleMapper for S<'_> {
        fn map_float<const D: usize>(
            &mut self,
            p: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            let shape = p.lazy_shape();
            let n = shape.num_elements();
            let chunk = self.0[self.1..self.1 + n].to_vec();
            self.1 += n;
            p.map(|old| {
                Tensor::from_data(TensorData::new(chunk, shape), &old.device()).require_grad()
            })
        }
    }
    m.map(&mut S(x, 0))
}

fn max_rel_err(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-12);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn td_targets_bootstrap_except_at_terminal_transitions() {
    let d = device();
    let t = |v: Vec<f64>| Tensor::<1>::from_data(TensorData::new(v, [3]), &d);
    let y = td_targets(
        t(vec![1.0, 2.0, -0.5]),
        t(vec![0.0, 1.0, 0.0]),
        t(vec![10.0, 20.0, -4.0]),
        0.75, // exact in f32 (γ is an f32 setting)
    );
    let y = to_vec_f64(y);
    for (got, want) in y.iter().zip([1.0 + 7.5, 2.0, -0.5 - 3.0]) {
        assert!((got - want).abs() < 1e-12, "{y:?}");
    }
}

#[test]
fn critic_loss_is_the_mean_squared_td_error_and_its_gradient_matches_differences() {
    let d = device();
    let (_, critic) = nets(&d, 1);
    let (target_actor, target_critic) = nets(&d, 2);
    let b = batch(7, 3);
    let bt = b.tensors(&d);
    let gamma = 0.95f32;
    // By hand: y_i = r_i + γ (1 − d_i) Q'(s'_i, μ'(s'_i)).
    let next_q = to_vec_f64(target_critic.forward(
        bt.next_obs.clone(),
        target_actor.forward(bt.next_obs.clone()),
    ));
    let q = to_vec_f64(critic.forward(bt.obs.clone(), bt.act.clone()));
    let want = (0..b.n)
        .map(|i| {
            let y = b.rew[i] as f64 + gamma as f64 * (1.0 - b.done[i] as f64) * next_q[i];
            (q[i] - y).powi(2)
        })
        .sum::<f64>()
        / b.n as f64;
    let loss = critic_loss(&critic, &target_actor, &target_critic, &bt, gamma);
    assert!((scalar(loss.clone()) - want).abs() < 1e-12);
    // ∇_φ against central differences; the target networks are not differentiated.
    let g = GradientsParams::from_grads(loss.backward(), &critic);
    let auto = grads_f64(&critic, &g);
    let x = params_f64(&critic);
    let fd = fd_gradient(&x, |p| {
        let c = with_f64(critic.clone(), p);
        scalar(critic_loss(&c, &target_actor, &target_critic, &bt, gamma))
    });
    let e = max_rel_err(&auto, &fd);
    assert!(e < 1e-6, "critic gradient relative error {e:e}");
    assert!(
        GradientsParams::from_grads(
            critic_loss(&critic, &target_actor, &target_critic, &bt, gamma).backward(),
            &target_critic
        )
        .is_empty(),
        "no gradient reaches the target critic"
    );
}

/// The deterministic policy gradient ∇_θ (−mean Q_φ(s, μ_θ(s))) through the critic
/// equals central differences of the loss in θ, in f64.
#[test]
fn deterministic_policy_gradient_matches_finite_differences() {
    let d = device();
    let (actor, critic) = nets(&d, 4);
    let bt = batch(9, 5).tensors(&d);
    let loss = actor_loss(&actor, &critic, bt.obs.clone());
    let grads = loss.backward();
    let g = GradientsParams::from_grads(grads, &actor);
    let auto = grads_f64(&actor, &g);
    let x = params_f64(&actor);
    let fd = fd_gradient(&x, |p| {
        scalar(actor_loss(
            &with_f64(actor.clone(), p),
            &critic,
            bt.obs.clone(),
        ))
    });
    let e = max_rel_err(&auto, &fd);
    assert!(e < 1e-6, "DPG relative error {e:e} ({} params)", x.len());
    assert!(
        auto.iter().any(|v| v.abs() > 1e-6),
        "a non-trivial gradient"
    );
}

#[test]
fn soft_update_moves_targets_a_fraction_tau_toward_the_online_network() {
    assert_eq!(
        soft_update(&[1.0, -2.0, 0.0], &[3.0, 2.0, 10.0], 0.25),
        vec![1.5, -1.0, 2.5]
    );
    assert_eq!(soft_update(&[1.0], &[3.0], 0.0), vec![1.0]);
    assert_eq!(soft_update(&[1.0], &[3.0], 1.0), vec![3.0]);
    // Inside an update: targets end at τ·(stepped online) + (1 − τ)·(old target).
    let d = device();
    let (actor, critic) = nets(&d, 6);
    let cfg = DdpgConfig {
        tau: 0.3,
        optimizer: Optimizer::Sgd,
        actor_lr: 0.1,
        critic_lr: 0.1,
        ..DdpgConfig::default()
    };
    let mut agent = Ddpg::new(actor.clone(), critic.clone(), cfg);
    agent.update(&batch(6, 7).tensors(&d));
    for (target, old, online) in [
        (
            flatten(&agent.target_actor),
            flatten(&actor),
            flatten(&agent.actor),
        ),
        (
            flatten(&agent.target_critic),
            flatten(&critic),
            flatten(&agent.critic),
        ),
    ] {
        assert_ne!(online, old, "the step moved the online network");
        let want = soft_update(&old, &online, 0.3);
        let e = target
            .iter()
            .zip(&want)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(e < 1e-6, "{e}");
    }
}

#[test]
fn replay_buffer_keeps_the_newest_capacity_transitions() {
    let mut b = ReplayBuffer::new(3, 1, 1);
    assert!(b.is_empty());
    for i in 0..5 {
        let x = i as f32;
        b.push(&[x], &[-x], x * 10.0, &[x + 0.5], i == 4);
    }
    assert_eq!((b.len(), b.capacity()), (3, 3));
    let all = b.all();
    // Slots in storage order: transitions 3, 4 overwrote 0, 1; 2 remains.
    assert_eq!(all.obs, vec![3.0, 4.0, 2.0]);
    assert_eq!(all.act, vec![-3.0, -4.0, -2.0]);
    assert_eq!(all.rew, vec![30.0, 40.0, 20.0]);
    assert_eq!(all.next_obs, vec![3.5, 4.5, 2.5]);
    assert_eq!(all.done, vec![0.0, 1.0, 0.0]);
}

#[test]
fn replay_buffer_samples_uniformly_and_deterministically() {
    let mut b = ReplayBuffer::new(10, 1, 1);
    for i in 0..6 {
        b.push(&[i as f32], &[0.0], 0.0, &[0.0], false);
    }
    let draw = |seed: u64| b.sample(60_000, &mut stream(seed, "replay")).obs;
    let s = draw(1);
    assert_eq!(s, draw(1), "same seed, same batch");
    assert_ne!(s, draw(2));
    // Counts of the six held transitions: Pearson χ² with 5 degrees of freedom below its
    // 99.9% quantile (20.5); no empty slot is ever drawn.
    let mut counts = [0usize; 6];
    for x in &s {
        counts[*x as usize] += 1;
    }
    let e = 10_000.0;
    let chi2: f64 = counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
    assert!(chi2 < 20.5, "χ² {chi2} for {counts:?}");
}
