"""The one spec schema of rfdiff: every TOML section as a frozen, typed, validated dataclass, parsed here.

:func:`load_spec` reads a TOML file (or a dict) into a :class:`Spec`. Nothing is silently ignored or guessed:
an unknown section or key is an error naming the closest valid one, a missing required key names its section,
and a value of the wrong type or out of range names ``[section] key`` and the value — always one
:class:`SpecError` (a ``ValueError``) with a one-line message. ``Spec.to_dict()`` is the fully resolved spec
(defaults filled in, plain JSON types; ``load_spec(spec.to_dict()) == spec``), ``Spec.fingerprint()`` its
sha256 for content-addressed caches, and :func:`describe_schema` the Markdown reference generated from the
same dataclasses, so the documentation cannot drift from the parser.

Example::

    >>> spec = load_spec({"mixture": {"variances": [4.0, 1.0], "proportions": [0.5, 0.5]},
    ...                   "model": {"psi_p": 4.0, "psi_n": 2.0, "t": 0.01}})
    >>> spec.model.activation, spec.mixture.centroid_gram
    ('tanh', ((0.0, 0.0), (0.0, 0.0)))
    >>> load_spec({"model": {"psi_P": 4.0, "psi_n": 2.0, "t": 0.01}})
    Traceback (most recent call last):
    ...
    rfdiff.errors.SpecError: [model] unknown key 'psi_P' (did you mean 'psi_p'?)

Heavy modules (jax, the model classes, ``TrainConfig``, ``UNetConfig``) are imported only inside the functions
that need them, so ``rfdiff.spec`` itself stays light.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .io import content_key
from ._schema import (TABLE, Bool, Choice, Float, Grid, Int, Opt, Seq, SpecError, check_sym_psd, dump, fail,
                      fields_of, key, markdown_table, parse_table, section_keys, unknown_key)

__all__ = ["SpecError", "Spec", "load_spec", "describe_schema", "MixtureSpec", "ImbalanceSpec", "ModelSpec",
           "FiniteSpec", "SpectrumSpec", "CurvesSpec", "PhaseDiagramSpec", "SpeciationSpec", "SimulateSpec",
           "PHASE_RANGES"]

_frozen = dataclasses.dataclass(frozen=True, kw_only=True)
_TOL = 1e-8  # as GaussianMixture: proportions / level weights must sum to 1 within this
_POS, _NONNEG = Float(lo=0.0, lo_open=True), Float(lo=0.0)
_MATRIX = Seq(Seq(Float()))

# Admissible values of the phase-diagram parameters (names must match rfdiff.theory.phase.PARAMETERS; a test checks).
PHASE_RANGES: dict[str, Float] = {
    "sigma_ratio": _POS, "pi1": Float(0.0, 1.0, lo_open=True, hi_open=True), "separation": _NONNEG,
    "norm_ratio": _POS, "cosine": Float(-1.0, 1.0), "psi_p": _POS, "psi_n": _POS, "psi_ratio": _POS, "t": _POS}


def _models():
    """The model classes, imported lazily (they pull in jax)."""
    from .model.mixture import GaussianMixture, proportions_long_tail, proportions_step
    from .model.rf import RFModel

    return GaussianMixture, proportions_long_tail, proportions_step, RFModel


def _activations() -> tuple[str, ...]:
    from .model.activations import ACTIVATIONS  # lazy: imports jax

    return tuple(ACTIVATIONS)


# ------------------------------------------------------------------------------------------------ [mixture]
@_frozen
class ImbalanceSpec:
    """``[mixture.imbalance]``: proportions from an imbalance profile (:mod:`rfdiff.model.mixture`)."""

    profile: str = key(Choice(("long_tail", "step")), doc="long_tail (ratio) or step (minority_fraction)")
    ratio: float | None = key(Opt(Float(lo=1.0)), None, "long_tail: n_max/n_min")
    minority_fraction: float | None = key(Opt(Float(0.0, 1.0, True, True)), None, "step: minority share")
    num_minority: int | None = key(Opt(Int(lo=1)), None, "step: number of minority classes (default 1)")

    @classmethod
    def parse(cls, raw, section="mixture", name="imbalance", k: int = 0):
        sec = f"{section}.{name}"
        v = parse_table(raw, sec, section_keys(cls))
        need, other = (("ratio",), ("minority_fraction", "num_minority")) if v["profile"] == "long_tail" \
            else (("minority_fraction",), ("ratio",))
        for n in need:
            if v[n] is None:
                raise SpecError(f"[{sec}] missing required key {n!r} (profile {v['profile']!r})")
        for n in other:
            if v[n] is not None:
                raise fail(sec, n, f"is not used by profile {v['profile']!r}", v[n])
        if k < 2:
            raise fail(sec, "profile", "needs at least 2 classes", v["profile"])
        if v["profile"] == "step":
            v["num_minority"] = v["num_minority"] or 1  # resolved default
            if v["num_minority"] >= k:
                raise fail(sec, "num_minority", f"must be in [1, {k - 1}] for {k} classes", v["num_minority"])
        return cls(**v)


@_frozen
class MixtureSpec:
    """``[mixture]``: the K-class Gaussian mixture (K = len(variances))."""

    variances: tuple[float, ...] = key(Seq(_POS), doc="σ_c², one per class")
    proportions: tuple[float, ...] | None = key(Opt(Seq(_NONNEG)), None, "π_c, sum 1 (or [mixture.imbalance])")
    imbalance: ImbalanceSpec | None = key(TABLE, None, "[mixture.imbalance], instead of proportions")
    centroid_gram: tuple[tuple[float, ...], ...] | None = key(Opt(_MATRIX), None,
                                                              "M_cc' = μ_c·μ_c'/d, symmetric PSD (default 0)")
    centroid_sq_norms: tuple[float, ...] | None = key(Opt(Seq(_NONNEG)), None,
                                                      "‖μ_c‖²/d (strong) or ‖μ_c‖² (weak)")
    centroid_cosines: tuple[tuple[float, ...], ...] | None = key(
        Opt(Seq(Seq(Float(-1.0, 1.0)))), None, "cosines between centroids (with centroid_sq_norms; default I)")
    centroid_scaling: str | None = key(Opt(Choice(("strong", "weak"))), None,
                                       "with centroid_sq_norms (default strong); weak needs [finite] d")
    levels: tuple[tuple[float, ...], ...] | None = key(Opt(Seq(Seq(_POS))), None,
                                                       "covariance levels (K, L) relative to σ_c² (default 1)")
    level_weights: tuple[float, ...] | None = key(Opt(Seq(_NONNEG)), None, "fraction of coordinates per level")

    @classmethod
    def parse(cls, raw, ctx):
        if isinstance(raw, Mapping) and isinstance(raw.get("levels"), (list, tuple)) \
                and raw["levels"] and not isinstance(raw["levels"][0], (list, tuple)):
            raw = {**raw, "levels": [raw["levels"]]}  # one level profile shared by all classes
        v = parse_table(raw, "mixture", section_keys(cls))
        k = len(v["variances"])

        def length(name, n=k, what=f"{k} entries (one per class)"):
            if v[name] is not None and len(v[name]) != n:
                raise fail("mixture", name, f"must have {what}", v[name])

        def square(name):
            if len(v[name]) != k or any(len(r) != k for r in v[name]):
                raise fail("mixture", name, f"must be a {k}x{k} matrix", v[name])

        if (v["proportions"] is None) == (v["imbalance"] is None):
            raise SpecError("[mixture] give exactly one of 'proportions' or [mixture.imbalance]")
        if v["imbalance"] is not None:
            v["imbalance"] = ImbalanceSpec.parse(v["imbalance"], k=k)
        else:
            length("proportions")
            if abs(math.fsum(v["proportions"]) - 1.0) > _TOL:
                raise fail("mixture", "proportions", f"must sum to 1 (sum {math.fsum(v['proportions']):.12g})",
                            v["proportions"])
        if v["centroid_gram"] is not None and v["centroid_sq_norms"] is not None:
            raise SpecError("[mixture] give either 'centroid_gram' or 'centroid_sq_norms', not both")
        if v["centroid_sq_norms"] is None:
            for name in ("centroid_cosines", "centroid_scaling"):
                if v[name] is not None:
                    raise fail("mixture", name, "needs centroid_sq_norms", v[name])
            if v["centroid_gram"] is None:
                v["centroid_gram"] = tuple((0.0,) * k for _ in range(k))  # resolved default: no centroids
            square("centroid_gram")
            check_sym_psd(v["centroid_gram"], "mixture", "centroid_gram")
        else:
            length("centroid_sq_norms")
            v["centroid_scaling"] = v["centroid_scaling"] or "strong"
            if v["centroid_cosines"] is None:
                v["centroid_cosines"] = tuple(tuple(float(i == j) for j in range(k)) for i in range(k))
            square("centroid_cosines")
            if any(v["centroid_cosines"][i][i] != 1.0 for i in range(k)):
                raise fail("mixture", "centroid_cosines", "must have a unit diagonal",
                            v["centroid_cosines"])
            check_sym_psd(v["centroid_cosines"], "mixture", "centroid_cosines")
            if v["centroid_scaling"] == "weak" and ctx.get("d") is None:
                raise SpecError("[mixture] centroid_scaling = 'weak' needs a dimension: set [finite] d")
        if v["level_weights"] is None:  # resolved default: one level (isotropic when levels is absent too)
            if v["levels"] is not None and len(v["levels"][0]) > 1:
                raise SpecError("[mixture] missing key 'level_weights' (levels has more than one column)")
            v["level_weights"] = (1.0,)
        lw = v["level_weights"]
        v["levels"] = v["levels"] or tuple((1.0,) * len(lw) for _ in range(k))
        length("levels", what=f"{k} rows (one per class)")
        if any(len(r) != len(lw) for r in v["levels"]):
            raise fail("mixture", "levels", f"must have {len(lw)} entries per row (one per level weight)",
                        v["levels"])
        if abs(math.fsum(lw) - 1.0) > _TOL:
            raise fail("mixture", "level_weights", "must sum to 1", lw)
        return cls(**v)

    @property
    def num_classes(self) -> int:
        return len(self.variances)

    def resolved_proportions(self) -> tuple[float, ...]:
        """π_c: as given, or from the imbalance profile."""
        if self.imbalance is None:
            return self.proportions
        _, proportions_long_tail, proportions_step, _ = _models()
        imb, k = self.imbalance, self.num_classes
        p = proportions_long_tail(k, imb.ratio) if imb.profile == "long_tail" else \
            proportions_step(k, imb.minority_fraction, imb.num_minority)
        return tuple(float(x) for x in p)


# ------------------------------------------------------------------------------------------------ other sections
@_frozen
class ModelSpec:
    """``[model]``: the random-features score model (no defaults for the ratios and the time)."""

    psi_p: float = key(_POS, doc="p/d (features per dimension)")
    psi_n: float = key(_POS, doc="n/d (training points per dimension)")
    t: float = key(_POS, doc="diffusion time")
    activation: str = key(Choice(_activations), "tanh", "activation name (rfdiff.model.activations.ACTIVATIONS)")
    loss_weights: tuple[float, ...] | None = key(Opt(Seq(_POS)), None,
                                                 "per-class DSM loss weights w_c > 0, one per class, rescaled so "
                                                 "Σ π_c w_c = 1 (default all 1)")


@_frozen
class FiniteSpec:
    """``[finite]``: a finite-d realisation (validation, simulation; the d of weak centroids)."""

    d: int = key(Int(lo=1), doc="input dimension")
    seed: int = key(Int(lo=0), 0, "realisation seed")


@_frozen
class SpectrumSpec:
    """``[spectrum]``: the log-λ grid of ``rfdiff spectrum``."""

    lam_min: float = key(_POS, 1e-4, "smallest λ")
    lam_max: float = key(_POS, 1e2, "largest λ (> lam_min)")
    num_points: int = key(Int(lo=2), 1000, "grid size")
    centroids: str = key(Choice(("auto", "weak", "strong")), "auto", "centroid regime of the solver")

    def __post_init__(self):
        if not self.lam_min < self.lam_max:
            raise fail("spectrum", "lam_max", f"must exceed lam_min = {self.lam_min!r}", self.lam_max)


@_frozen
class CurvesSpec:
    """``[curves]``: the log-τ grid of learning curves and time scales."""

    taus: tuple[float, float, int] = key(Grid, (1e-3, 1e6, 120), "log grid [lo, hi, num], 0 < lo < hi")

    def __post_init__(self):
        if self.taus[0] <= 0:
            raise fail("curves", "taus", "needs 0 < lo", list(self.taus))


def _pairs(conv_value, what):
    def conv(v, section, name):
        from .theory.phase import PARAMETERS  # lazy: imports jax

        if not isinstance(v, Mapping):
            raise fail(section, name, f"must be a table {{{what}}}", v)
        out = []
        for p, x in v.items():
            if p not in PARAMETERS:
                raise unknown_key(f"[{section}] {name}:", p, PARAMETERS, "parameter")
            out.append((p, conv_value(x, section, f"{name}.{p}", PHASE_RANGES[p])))
        return tuple(out)

    conv.text = f"table {{{what}}}"
    return conv


def _axis(v, section, name, rng):
    lo, hi, num = Grid(v, section, name)
    rng(lo, section, f"{name} lo")
    rng(hi, section, f"{name} hi")
    return (lo, hi, num)


@_frozen
class PhaseDiagramSpec:
    """``[phase_diagram]``: grid axes and fixed values of the :data:`rfdiff.theory.phase.PARAMETERS`."""

    axes: tuple[tuple[str, tuple[float, float, int]], ...] = key(
        _pairs(_axis, "name = [lo, hi, num]"), (), "grid axes, in order", dump=lambda v: {k: list(x) for k, x in v})
    fixed: tuple[tuple[str, float], ...] = key(
        _pairs(lambda x, s, n, rng: rng(x, s, n), "name = value"), (), "fixed parameters", dump=dict)

    def __post_init__(self):
        both = set(dict(self.axes)) & set(dict(self.fixed))
        if both:
            raise fail("phase_diagram", "fixed", "must not repeat an axis", sorted(both))


@_frozen
class SpeciationSpec:
    """``[speciation]``: speciation times vs imbalance (theory and backward-SDE simulation)."""

    d: int = key(Int(lo=1), doc="dimension (default [finite] d, else 1024)")
    theta: float = key(Float(0.0, 1.0, True, True), 0.9, "threshold on the median class posterior")
    n_trajectories: int = key(Int(lo=1), 4000, "trajectories per ratio (at least)")
    min_minority: int = key(Int(lo=0), 0, "trajectories wanted in the minority class")
    t_max: float = key(_POS, 8.0, "start time of the backward SDE (> t_min)")
    t_min: float = key(_POS, 1e-3, "end time")
    num_steps: int = key(Int(lo=1), 300, "geometric grid steps")
    method: str = key(Choice(("exponential", "euler")), "exponential", "integrator")
    chunk: int = key(Int(lo=1), 4096, "trajectories per chunk")
    seed: int = key(Int(lo=0), doc="seed (default [finite] seed, else 0)")

    def __post_init__(self):
        if not self.t_max > self.t_min:
            raise fail("speciation", "t_max", f"must exceed t_min = {self.t_min!r}", self.t_max)


def _train_fields() -> dict:
    """[simulate] keys derived from rfdiff.simulate.train.TrainConfig (never copied, so they cannot drift)."""
    from .simulate.train import TrainConfig  # lazy: imports jax

    # loss_weights: one key, [model] loss_weights (the theory reads it too); Spec.from_dict passes it on
    return fields_of(TrainConfig, exclude=("lr", "steps", "checkpoint_dir", "loss_weights"))


@_frozen
class SimulateSpec:
    """``[simulate]``: training of the RF model on a finite realisation (``rfdiff simulate rf``)."""

    steps: int = key(Int(lo=1), doc="training steps")
    lr: float | None = key(Opt(_POS), None, "GD step in τ units (exactly one of lr, lr_frac)")
    lr_frac: float | None = key(Opt(_POS), None, "η̂ = lr_frac/λ_max(U)")
    theory: bool = key(Bool(), True, "also write the closed-form curves")
    mehler_order: int | None = key(Opt(Int(lo=1)), None, "order of the exact moments (default automatic)")
    options: tuple[tuple[str, Any], ...] = dataclasses.field(default=())  # other TrainConfig fields, resolved

    @classmethod
    def keys(cls) -> dict:
        return {**section_keys(cls), **_train_fields()}

    @classmethod
    def parse(cls, raw):
        v = parse_table(raw, "simulate", cls.keys())
        if (v["lr"] is None) == (v["lr_frac"] is None):
            raise SpecError("[simulate] give exactly one of 'lr' (τ units) or 'lr_frac' (η̂ = lr_frac/λ_max(U))")
        own = section_keys(cls)
        spec = cls(**{n: v[n] for n in own}, options=tuple((n, x) for n, x in v.items() if n not in own))
        spec.train_config(1.0)  # run TrainConfig's own range checks now
        return spec

    def train_config(self, lr: float, checkpoint_dir: str | None = None):
        """The :class:`rfdiff.simulate.train.TrainConfig` of this section, with the resolved GD step ``lr``."""
        from .simulate.train import TrainConfig

        try:
            return TrainConfig(lr=lr, steps=self.steps, checkpoint_dir=checkpoint_dir, **dict(self.options))
        except ValueError as err:
            raise SpecError(f"[simulate] {err}") from None

    def to_dict(self) -> dict:
        own = {k: v for k, v in dump(self).items() if k != "options"}
        # loss_weights come from [model] (Spec.from_dict), not from a [simulate] key
        return {**own, **{k: dump(v) for k, v in self.options if v is not None and k != "loss_weights"}}


def _unet_fields() -> dict:
    from .unet.training import UNetConfig  # lazy: imports jax

    return fields_of(UNetConfig)


def _unet(raw):
    """``[unet]`` (with ``[unet.eval]`` merged in) as a :class:`rfdiff.unet.training.UNetConfig`, keys from its fields."""
    from .unet.training import UNetConfig

    if not isinstance(raw, Mapping):
        raise SpecError(f"[unet] must be a table, got {raw!r}")
    raw, fields = dict(raw), _unet_fields()
    ev = raw.pop("eval", {})
    if not isinstance(ev, Mapping):
        raise SpecError(f"[unet.eval] must be a table, got {ev!r}")
    for n in ev:
        if n not in fields:
            raise unknown_key("[unet.eval]", n, fields)
        if n in raw:
            raise SpecError(f"[unet] key {n!r} is given both in [unet] and in [unet.eval]")
    try:
        return UNetConfig(**parse_table({**raw, **ev}, "unet", fields))
    except ValueError as err:  # UNetConfig's own range checks
        raise SpecError(f"[unet] {err}") from None


# ------------------------------------------------------------------------------------------------ Spec
_SIMPLE = {"model": ModelSpec, "finite": FiniteSpec, "spectrum": SpectrumSpec, "curves": CurvesSpec,
           "phase_diagram": PhaseDiagramSpec}
_NEEDS = {"spectrum": ("mixture", "model"), "curves": ("mixture", "model"), "phase_diagram": ("mixture", "model"),
          "speciation": ("mixture",), "simulate": ("mixture", "model", "finite")}
SECTIONS = ("mixture", "model", "finite", "spectrum", "curves", "phase_diagram", "speciation", "simulate", "unet")


def _simple(cls, raw, section):
    v = parse_table(raw, section, section_keys(cls))
    return cls(**v)


@dataclasses.dataclass(frozen=True)
class Spec:
    """A whole, validated spec; a section is None when absent."""

    mixture: MixtureSpec | None = None
    model: ModelSpec | None = None
    finite: FiniteSpec | None = None
    spectrum: SpectrumSpec | None = None
    curves: CurvesSpec | None = None
    phase_diagram: PhaseDiagramSpec | None = None
    speciation: SpeciationSpec | None = None
    simulate: SimulateSpec | None = None
    unet: Any = None  # rfdiff.unet.training.UNetConfig (not imported here: it pulls in jax)

    @classmethod
    def from_dict(cls, raw: Mapping) -> "Spec":
        if not isinstance(raw, Mapping):
            raise SpecError(f"a spec must be a table of sections, got {type(raw).__name__}")
        for name in raw:
            if name not in SECTIONS:
                raise unknown_key("spec:", name, SECTIONS, "section")
        out: dict[str, Any] = {s: _simple(c, raw[s], s) for s, c in _SIMPLE.items() if raw.get(s) is not None}
        fin = out.get("finite")
        sp = raw.get("speciation")
        if sp is not None:  # d and seed default to [finite]'s, resolved here so the section is explicit
            sp = dict(sp) if isinstance(sp, Mapping) else sp
            if isinstance(sp, dict):
                sp.setdefault("d", fin.d if fin else 1024)
                sp.setdefault("seed", fin.seed if fin else 0)
            out["speciation"] = _simple(SpeciationSpec, sp, "speciation")
        ctx = {"d": fin.d if fin else (out["speciation"].d if "speciation" in out else None)}
        if raw.get("mixture") is not None:
            out["mixture"] = MixtureSpec.parse(raw["mixture"], ctx)
        if out.get("model") is not None and out["model"].loss_weights is not None:
            if "mixture" not in out:
                raise SpecError("[model] loss_weights needs the [mixture] section (one weight per class)")
            from .theory.loss_weights import normalise_loss_weights  # lazy: only weighted specs need numpy

            w = normalise_loss_weights(out["model"].loss_weights, out["mixture"].resolved_proportions(),
                                       "[model] loss_weights")
            out["model"] = dataclasses.replace(out["model"], loss_weights=tuple(float(x) for x in w))
        if raw.get("simulate") is not None:
            out["simulate"] = SimulateSpec.parse(raw["simulate"])
            if out.get("model") is not None and out["model"].loss_weights is not None:
                sim = out["simulate"]
                out["simulate"] = dataclasses.replace(
                    sim, options=sim.options + (("loss_weights", out["model"].loss_weights),))
        if raw.get("unet") is not None:
            out["unet"] = _unet(raw["unet"])
        for name, needs in _NEEDS.items():  # a command's section is useless without the sections it reads
            missing = [n for n in needs if name in out and n not in out]
            if missing:
                raise SpecError(f"[{name}] needs the section(s) {', '.join(f'[{n}]' for n in missing)}")
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved spec as plain JSON-able types (``load_spec(s.to_dict()) == s``)."""
        out = {}
        for name in SECTIONS:
            sec = getattr(self, name)
            if sec is not None:
                out[name] = sec.to_dict() if isinstance(sec, SimulateSpec) else dump(sec)
        return out

    def fingerprint(self) -> str:
        """Content address of the resolved spec: :func:`rfdiff.io.content_key` of :meth:`to_dict`."""
        return content_key(self.to_dict())

    def _dimension(self) -> int | None:
        """The d of the spec: [finite] d, else [speciation] d (as the speciation command resolves it)."""
        return self.finite.d if self.finite else (self.speciation.d if self.speciation else None)

    def _need(self, name: str):
        if getattr(self, name) is None:
            raise SpecError(f"spec has no [{name}] section")
        return getattr(self, name)

    def build_mixture(self, d: int | None = None):
        """The :class:`GaussianMixture` of ``[mixture]``; ``d`` (default [finite] d) scales weak centroids."""
        GaussianMixture = _models()[0]
        m = self._need("mixture")
        try:
            mix = GaussianMixture.create(m.resolved_proportions(), m.variances, centroid_gram=m.centroid_gram,
                                         levels=m.levels, level_weights=m.level_weights)
            if m.centroid_scaling == "strong":
                mix = mix.with_strong_centroids(m.centroid_sq_norms, m.centroid_cosines)
            elif m.centroid_scaling == "weak":
                d = d if d is not None else self._dimension()
                mix = mix.with_weak_centroids(m.centroid_sq_norms, int(d), m.centroid_cosines)
        except SpecError:
            raise
        except ValueError as err:
            raise SpecError(f"[mixture] {err}") from None
        return mix

    def build_model(self):
        """The :class:`RFModel` of ``[model]``."""
        m = self._need("model")
        return _models()[3](m.psi_p, m.psi_n, m.t, m.activation)


def load_spec(source) -> Spec:
    """Parse and validate a spec: a TOML file path (str or Path) or an already-read dict."""
    if isinstance(source, Mapping):
        return Spec.from_dict(source)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"spec file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"spec {path} is not valid TOML: {err}") from None
    return Spec.from_dict(raw)


def describe_schema() -> str:
    """Markdown reference of every section and key (type, default, meaning), generated from the schema."""
    lines = ["# rfdiff spec schema", "", "Generated by `rfdiff.spec.describe_schema()`; unknown sections and keys "
             "are errors.", ""]
    lines += markdown_table(section_keys(MixtureSpec), "mixture")
    lines += markdown_table(section_keys(ImbalanceSpec), "mixture.imbalance")
    for name, cls in [*_SIMPLE.items(), ("speciation", SpeciationSpec)]:
        lines += markdown_table(section_keys(cls), name)
    lines += markdown_table(SimulateSpec.keys(), "simulate")
    lines += ["`[unet.eval]` keys are merged into `[unet]`.", ""] + markdown_table(_unet_fields(), "unet")
    return "\n".join(lines)
