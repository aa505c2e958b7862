"""``rfdiff simulate rf SPEC``: realise the spec's problem, train the RF readout, write the logs."""

from __future__ import annotations

from pathlib import Path

import jax

from ..simulate.compare import prepare_theory, theory_file

__all__ = ["simulate_spec"]


_SIM_KEYS = {"steps", "lr", "lr_frac", "optimizer", "batch_size", "noise", "n_noise", "control_variate", "num_logs",
             "n_test", "n_eval_noise", "seed", "dtype", "chunk", "checkpoint_every", "theory", "mehler_order"}


def simulate_spec(spec, out, *, resume: bool = False, progress: bool = True) -> list[Path]:
    """``rfdiff simulate rf``: realise the spec's problem, train, write ``sim.npz`` (and ``theory.npz``).

    ``[simulate]`` keys: ``steps`` (required), ``lr`` (GD step in τ units) or ``lr_frac`` (η̂ = lr_frac/λ_max(U),
    needs the exact moments), and any :class:`rfdiff.simulation.TrainConfig` field (``optimizer``, ``batch_size``,
    ``noise``, ``n_noise``, ``control_variate``, ``num_logs``, ``n_test``, ``n_eval_noise``, ``seed``, ``dtype``,
    ``chunk``, ``checkpoint_every``); ``theory = true`` (default) also writes the closed-form curves of the same
    realisation with the same step; ``mehler_order`` fixes the order of the exact moments (small d).
    ``[finite]``: ``d``, ``seed`` (realisation). ``[model]``: ``psi_p``, ``psi_n``,
    ``t``, ``activation``.
    """
    from ..finite.features import realise
    from ..model.rf import RFModel
    from ..io import mixture_from_spec
    from ..simulate.train import TrainConfig, train_rf

    sim = dict(spec.get("simulate", {}))
    unknown = set(sim) - _SIM_KEYS
    if unknown:
        raise ValueError(f"[simulate] unknown keys {sorted(unknown)}; allowed: {sorted(_SIM_KEYS)}")
    if "steps" not in sim:
        raise ValueError("[simulate] needs 'steps'")
    if ("lr" in sim) == ("lr_frac" in sim):
        raise ValueError("[simulate] give exactly one of 'lr' (τ units) or 'lr_frac' (η̂ = lr_frac/λ_max(U))")
    model_s, fin = spec.get("model", {}), spec.get("finite", {})
    for key in ("psi_p", "psi_n", "t"):
        if key not in model_s:
            raise ValueError(f"[model] needs '{key}'")
    if "d" not in fin:
        raise ValueError("[finite] needs 'd'")
    d = int(fin["d"])
    model = RFModel(float(model_s["psi_p"]), float(model_s["psi_n"]), float(model_s["t"]),
                    model_s.get("activation", "tanh"))
    prob = realise(jax.random.key(int(fin.get("seed", 0))), mixture_from_spec(spec, d), model, d)
    want_theory = bool(sim.pop("theory", True))
    k_max = sim.pop("mehler_order", None)
    theory = prepare_theory(prob, k_max=k_max) if (want_theory or "lr_frac" in sim) else None
    lr = float(sim.pop("lr")) if "lr" in sim else float(sim.pop("lr_frac")) / theory.lam_max
    out = Path(out)
    ckpt = out / "checkpoint"
    if (ckpt / "checkpoint.npz").exists() and not resume:
        raise ValueError(f"{ckpt} holds a checkpoint: pass --resume to continue it, or choose another --out")
    cfg = TrainConfig(lr=lr, checkpoint_dir=str(ckpt), **sim)
    log = train_rf(prob, cfg, progress=progress)
    paths = [log.save(out / "sim.npz", {"config": cfg.to_dict(), "spec": spec})]
    if theory is not None:
        paths.append(theory_file(out / "theory.npz", theory, lr, cfg.steps))
    return paths
