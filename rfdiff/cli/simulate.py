"""``rfdiff simulate rf | unet SPEC`` and ``rfdiff compare THEORY SIM``: simulations and their comparison
with the theory. Keys of ``[simulate]`` and ``[unet]`` come from the one schema (``rfdiff schema``)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from ..spec import Spec, SpecError
from ._common import load, out_dir, progress, provenance, require, wrote

__all__ = ["simulate_spec", "rf", "unet", "compare"]

log = logging.getLogger("rfdiff")


def simulate_spec(spec: Spec, out, *, resume: bool = False, progress: bool = True) -> list[Path]:
    """Realise the spec's problem (``[finite]`` d, seed), train the RF readout (``[simulate]``), write
    ``sim.npz`` and, with ``[simulate] theory = true``, the closed-form curves ``theory.npz`` of the same
    realisation and step. ``lr_frac`` sets η̂ = lr_frac/λ_max(U) from the exact moments."""
    import jax

    from ..finite.features import realise, train_moments, weighted_moments
    from ..simulate.compare import prepare_theory, theory_file
    from ..simulate.train import train_rf

    require(spec, "rfdiff simulate rf", "mixture", "model", "finite", "simulate")
    sim = spec.simulate
    prob = realise(jax.random.key(spec.finite.seed), spec.build_mixture(), spec.build_model(), spec.finite.d)
    exact = dict(sim.options).get("noise") == "exact"  # the exact-noise trainer needs the exact moments
    lw = spec.model.loss_weights
    moments = train_moments(prob, k_max=sim.mehler_order) if (exact or lw is not None) else None
    # with [model] loss_weights the closed form (and λ_max for lr_frac) is that of the weighted U_ω, V_ω; the
    # trainer gets the plain moments and weights them itself
    th_moments = moments if lw is None else weighted_moments(moments, prob.class_fractions, lw)
    theory = (prepare_theory(prob, moments=th_moments, k_max=sim.mehler_order)
              if (sim.theory or sim.lr_frac is not None) else None)
    lr = sim.lr if sim.lr is not None else sim.lr_frac / theory.lam_max
    out = Path(out)
    ckpt = out / "checkpoint"
    if (ckpt / "checkpoint.npz").exists() and not resume:
        raise SpecError(f"{ckpt} holds a checkpoint: pass --resume to continue it, or choose another --out")
    cfg = sim.train_config(lr, checkpoint_dir=str(ckpt))
    log_ = train_rf(prob, cfg, moments=moments, progress=progress)
    paths = [log_.save(out / "sim.npz", {"config": cfg.to_dict(), **provenance(spec)})]
    if theory is not None:
        paths.append(theory_file(out / "theory.npz", theory, lr, cfg.steps))
    return paths


def rf(args) -> int:
    over = {}
    if args.seed is not None:  # one seed for the realisation and the training noise
        over = {"finite": {"seed": args.seed}, "simulate": {"seed": args.seed}}
    spec = load(args, over)
    wrote(*simulate_spec(spec, out_dir(args, "simulate-rf"), resume=args.resume, progress=progress(args)))
    return 0


def unet(args) -> int:
    from ..unet.training import summarise, train

    from ..io import atomic_write_text

    spec = load(args, {"unet": {"seed": args.seed, "data_path": args.data}})
    require(spec, "rfdiff simulate unet", "unet")
    cfg = spec.unet
    out = out_dir(args, "simulate-unet")
    train(cfg, out, resume=args.resume, progress=progress(args))
    s = summarise(out)
    keep = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in s.items() if k not in ("arrays", "attrs")}
    keep["config"] = dataclasses.asdict(cfg)
    wrote(atomic_write_text(out / "summary.json", json.dumps(keep, indent=1, default=str)))
    print(f"predicted order {s['predicted_order']} ({s['rule']})")
    print(f"measured order: memorisation {s['order_mem']}, generalisation at t={s['times'][0]:.3g} "
          f"{s['order_gen'][0]}; results in {out}")
    return 0


def compare(args) -> int:
    from ..simulate.compare import compare_timescales, load_curves, write_comparison

    for f in (args.theory, args.simulation):
        if not Path(f).is_file():
            raise FileNotFoundError(f"no such file: {f}")
    theory, sim = load_curves(args.theory, args.source), load_curves(args.simulation)
    out = Path(args.out) if args.out else Path(args.simulation).parent
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out must be a directory, but {out} is a file")
    wrote(*write_comparison(out, compare_timescales(theory, sim), title=f"{args.theory} vs {args.simulation}"))
    return 0
