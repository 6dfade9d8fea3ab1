//! Running a meta-batch: pre-update episodes with latents from the per-task
//! distributions, the latent step (values only), post-update episodes.

use super::*;

/// Pre-update sampling, the latent step (values only) and post-update sampling.
#[allow(clippy::too_many_arguments)]
pub fn run_episodes(
    env: &Arc<dyn Env>,
    tasks: &[Task],
    p: &MaesnParams,
    cfg: &MaesnConfig,
    env_rng: &mut Rng,
    act_rng: &mut Rng,
    latent_rng: &mut Rng,
    device: &Device,
) -> Result<(MaesnSamples, Trajectories, Trajectories)> {
    let (m, k, d) = (tasks.len(), cfg.rollouts, cfg.latent_dim);
    let p = p.detach();
    let advantages = MetaPgConfig::for_advantages(cfg.gamma, cfg.normalize_adv);
    let eps_pre = noise(m, k, d, latent_rng, device);
    let z = to_vec(latents(&p.mean, &p.log_std, &eps_pre));
    let tr_pre = sample_tasks_with_context(
        env,
        tasks,
        &p.policy,
        Some((z, d)),
        k,
        env_rng,
        act_rng,
        device,
    );
    let pre = process(&tr_pre, &advantages, device)?;
    let (mean2, log_std2) = adapt_latent(&p, &eps_pre, &pre, cfg.latent_objective);
    let shift = |after: &Tensor<3>, before: &Tensor<3>| {
        let moved = (after.clone() - before.clone())
            .powi_scalar(2)
            .sum_dim(2)
            .sqrt()
            .mean();
        to_vec_f64(moved)[0]
    };
    let latent_shift = [shift(&mean2, &p.mean), shift(&log_std2, &p.log_std)];
    let eps_post = noise(m, k, d, latent_rng, device);
    let z2 = to_vec(latents(&mean2, &log_std2, &eps_post));
    let tr_post = sample_tasks_with_context(
        env,
        tasks,
        &p.policy,
        Some((z2, d)),
        k,
        env_rng,
        act_rng,
        device,
    );
    let post = process(&tr_post, &advantages, device)?;
    Ok((
        MaesnSamples {
            pre,
            eps_pre,
            post,
            eps_post,
            latent_shift,
        },
        tr_pre,
        tr_post,
    ))
}
