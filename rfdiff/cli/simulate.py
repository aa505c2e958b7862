"""``rfdiff simulate rf | unet SPEC`` and ``rfdiff compare THEORY SIM``: simulations and their comparison
with the theory. Keys of ``[simulate]`` and ``[unet]`` come from the one schema (``rfdiff schema``)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from ..spec import Spec, SpecError
from ..results import class_coords
from ._common import load, out_dir, progress, provenance, require, write_result, wrote

__all__ = ["simulate_spec", "rf", "unet", "compare"]

log = logging.getLogger("rfdiff")


def simulate_spec(spec: Spec, out, *, resume: bool = False, progress: bool = True) -> list[Path]:
    """Realise the spec's problem (``[finite]`` d, seed), train the RF readout (``[simulate]``), write
    ``sim.nc`` and, with ``[simulate] theory = true``, the closed-form curves ``theory.nc`` of the same
    realisation and step (labelled netCDF results of kind ``simulate_rf``). ``lr_frac`` sets
    η̂ = lr_frac/λ_max(U) from the exact moments."""
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
    prov = provenance("simulate_rf", spec, title="RF score model trained by gradient descent")
    dv, coords = _trainlog_vars(log_)
    paths = [write_result(out / "sim.nc", dv, coords=coords,
                          attrs={**prov, "config": cfg.to_dict(), "gd_step": float(lr)})]
    if theory is not None:
        paths.append(theory_file(out / "theory.nc", theory, lr, cfg.steps, attrs=prov))
    return paths


def _trainlog_vars(log_):
    """A :class:`rfdiff.simulate.train.TrainLog` as (data_vars, coords) on the dims ``step``,
    ``class`` (1-based), ``input`` × ``neuron`` (the readout A)."""
    import numpy as np

    k = np.shape(log_.bayes_drop)[0]
    dv = {"tau": (("step",), log_.tau), "train_loss": (("step", "class"), log_.train_loss),
          "test_loss": (("step", "class"), log_.test_loss), "score_error": (("step", "class"), log_.score_error),
          "bayes_drop": (("class",), log_.bayes_drop), "gamma2": (("class",), log_.gamma2),
          "A": (("input", "neuron"), log_.A)}
    return dv, {"step": np.asarray(log_.step), **class_coords(k)}


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
    wrote(_unet_result(out, spec))
    s = summarise(out)
    keep = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in s.items() if k not in ("arrays", "attrs")}
    keep["config"] = dataclasses.asdict(cfg)
    wrote(atomic_write_text(out / "summary.json", json.dumps(keep, indent=1, default=str)))
    print(f"predicted order: generalisation {s['predicted_order_gen']}, memorisation {s['predicted_order_mem']} "
          f"({s['rule']})")
    print(f"measured order: memorisation {s['order_mem']}, generalisation at t={s['times'][0]:.3g} "
          f"{s['order_gen'][0]}; results in {out}")
    return 0


def _unet_result(out: Path, spec: Spec) -> Path:
    """``metrics.nc``: the per-class curves of ``metrics.npz`` (the trainer's resumable row store) as a labelled
    result: dims ``step``, ``class`` (1..K, named by Fashion-MNIST, ``fmnist_label`` the data set's label) and
    ``t`` (diffusion time), with the resolved spec as provenance."""
    import numpy as np

    from ..io import load_result
    from ..results import describe, from_legacy, write
    from ..unet.fmnist import FASHION_MNIST_CLASSES

    ds = from_legacy(*load_result(out / "metrics.npz"), name="metrics.npz")
    labels = np.asarray(spec.unet.classes, dtype=np.int32)
    names = np.asarray([FASHION_MNIST_CLASSES[int(c)] for c in labels], dtype=str)
    ds = ds.assign_coords(fmnist_label=("class", labels), class_name=("class", names))
    for name in ("fmnist_label", "class_name"):
        ds[name].attrs.update(zip(("long_name", "units"), describe(name)))
    prov = provenance("simulate_unet", spec, title="U-Net on class-imbalanced Fashion-MNIST")
    ds.attrs.update({k: v for k, v in prov.items()})
    ds.attrs.pop("converted_from", None)
    return write(out / "metrics.nc", ds)


def compare(args) -> int:
    from ..simulate.compare import compare_timescales, load_curves, write_comparison

    for f in (args.theory, args.simulation):
        if not Path(f).is_file():
            raise FileNotFoundError(f"no such file: {f}")
    from ..results import attr_json, open_result

    theory, sim = load_curves(args.theory, args.source), load_curves(args.simulation)
    out = Path(args.out) if args.out else Path(args.simulation).parent
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out must be a directory, but {out} is a file")
    # the simulation's resolved spec is the comparison's (the theory file carries the same one when it comes
    # from `rfdiff simulate rf`)
    sim_spec = attr_json(open_result(args.simulation), "spec") or None
    attrs = provenance("comparison", sim_spec if isinstance(sim_spec, dict) else None)
    wrote(*write_comparison(out, compare_timescales(theory, sim), title=f"{args.theory} vs {args.simulation}",
                            attrs=attrs))
    return 0
