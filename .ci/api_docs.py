"""Build the API reference from the docstrings into docs/api (pdoc), failing on any pdoc warning.

    python .ci/api_docs.py [OUTDIR]

pdoc resolves each signature's annotations in the globals of the function's module. ``collections.namedtuple``
compiles a NamedTuple's ``__new__`` in a private namespace (module ``namedtuple_<Name>``), so under
``from __future__ import annotations`` the field annotations of every NamedTuple (``np.ndarray``, ``Callable``)
could not be resolved and pdoc warned once per class. Pointing ``__new__.__module__`` at the class's own module
(documentation only; nothing else reads it) lets pdoc resolve them where they were written. Any warning left
is a real one (an annotation naming something its module never imports) and fails the build.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import warnings
from pathlib import Path

import pdoc
import pdoc.render

import rfdiff

MODULES = ["rfdiff", "rfdiff.model", "rfdiff.theory", "rfdiff.finite", "rfdiff.simulate", "rfdiff.unet", "rfdiff.cli",
           "rfdiff.io", "rfdiff.sweep", "rfdiff.plots", "rfdiff.precision", "rfdiff.errors", "rfdiff.spec"]


def _home_namedtuples() -> int:
    fixed = 0
    for info in pkgutil.walk_packages(rfdiff.__path__, "rfdiff."):
        if info.name.endswith("__main__"):  # importing it would run the command line
            continue
        mod = importlib.import_module(info.name)
        for obj in vars(mod).values():
            if inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields") \
                    and obj.__module__ == mod.__name__ \
                    and getattr(obj.__new__, "__module__", "").startswith("namedtuple_"):
                obj.__new__.__module__ = obj.__module__
                fixed += 1
    return fixed


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/api")
    n = _home_namedtuples()
    pdoc.render.configure(docformat="google")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*MODULES, output_directory=out)
    problems = sorted({str(w.message) for w in caught if "pdoc" in (w.filename or "")})
    for p in problems:
        print(f"pdoc warning: {p}", file=sys.stderr)
    print(f"API reference: {len(list(out.rglob('*.html')))} pages in {out} ({n} NamedTuple signatures homed); "
          f"{len(problems)} warning(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
