//! Running a meta-batch: explore with μ_φ, adapt z (values only), exploit with π_{θ,z'}.

use super::*;

/// One task batch's exploration and exploitation samples.
pub struct Episodes {
    /// Exploration trajectories (μ_φ).
    pub explore: Trajectories,
    /// Processed exploration samples.
    pub pre: ExploreBatch,
    /// Adapted codes, `[M, dz]`.
    pub z: Vec<f32>,
    /// Exploitation trajectories (π_{θ,z'}).
    pub exploit: Trajectories,
}

/// Explores, adapts z (values only) and exploits on `tasks`.
#[allow(clippy::too_many_arguments)]
pub fn run_episodes(
    env: &Arc<dyn Env>,
    tasks: &[Task],
    p: &MameParams,
    cfg: &MameConfig,
    rollouts: usize,
    env_rng: &mut Rng,
    act_rng: &mut Rng,
    device: &Device,
) -> Result<Episodes> {
    let explore = sample_tasks_with_context(
        env, tasks, &p.explore, None, rollouts, env_rng, act_rng, device,
    );
    let pre = explore_batch(&explore, cfg, device)?;
    let dz = cfg.latent_dim;
    let z = to_vec(inner_step(p, &pre, cfg, false).z);
    let ctx = rows_of(&z, dz, rollouts);
    let exploit = sample_tasks_with_context(
        env,
        tasks,
        &p.exploit,
        Some((ctx, dz)),
        rollouts,
        env_rng,
        act_rng,
        device,
    );
    Ok(Episodes {
        explore,
        pre,
        z,
        exploit,
    })
}
