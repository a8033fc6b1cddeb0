"""Lazy exports of a package: names imported from their home module on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` on first use.

    ``exports`` maps a name to the module that defines it; a name that is itself a
    subpackage of ``package`` (``disrnn.fit``) resolves to that module.
    """

    def __getattr__(name: str):
        if name in exports:
            module = importlib.import_module(exports[name])
            return module if module.__name__ == f"{package}.{name}" else getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
