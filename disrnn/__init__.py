"""disrnn: disentangled low-rank RNNs for neural population recordings.

The public API, importable as ``import disrnn``:

- :func:`simulate` / :func:`simulate_nwb` - ground-truth sessions (``disrnn.simulate``)
- :func:`fetch_asset` - download one NWB asset from DANDI (``disrnn.data.dandi``)
- :func:`read_session` - read units, trials and behavior of an NWB file (``disrnn.data.nwb``)
- :func:`bin_session`, :class:`BinConfig` - one ``xarray.Dataset`` with dims
  ``(trial, time, unit)`` (``disrnn.data.binning``)
- :func:`save_dataset`, :func:`load_dataset` - NetCDF I/O (``disrnn.data.io``)
- :func:`fit`, :class:`FitConfig`, :func:`load_fit` - the fit stage (``disrnn.fit``)
- :func:`evaluate` - test-split metrics and latents (``disrnn.evaluation``)

Names are imported lazily so that ``disrnn bin`` does not pay for importing torch.
"""

from __future__ import annotations

from disrnn._lazy import lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    "simulate": "disrnn.simulate",
    "simulate_nwb": "disrnn.simulate",
    "fetch_asset": "disrnn.data.dandi",
    "read_session": "disrnn.data.nwb",
    "bin_session": "disrnn.data.binning",
    "BinConfig": "disrnn.data.binning",
    "save_dataset": "disrnn.data.io",
    "load_dataset": "disrnn.data.io",
    "FitConfig": "disrnn.fit",
    "fit": "disrnn.fit",
    "load_fit": "disrnn.fit",
    "evaluate": "disrnn.evaluation",
}

__all__ = sorted(_EXPORTS)


# ``disrnn.fit`` is the fit-stage package, callable as the function ``fit``
__getattr__ = lazy_getattr(__name__, _EXPORTS)
