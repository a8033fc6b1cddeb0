"""Config validation, the session table and input functions (nothing else).

The config is checked before any job is scheduled: its structure (keys, types,
required fields) against workflow/schemas/config.schema.yaml, method names against the
registry ``disrnn.fit.config.METHODS``, and every value by building each session's
BinConfig, SelectConfig and, per method, FitConfig (the dataclasses hold the value
ranges); an error names the session and the field. Everything below reads the validated config only.
"""

import dataclasses
import os
import re

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from disrnn.data import splits
from disrnn.data.bin_config import BinConfig
from disrnn.data.dandi_lookup import check_asset_path
from disrnn.data.io import nwb_changed
from disrnn.fit.config import METHODS, POSTHOC_METHODS, TRAINED_METHODS, FitConfig
from disrnn.selection.config import SelectConfig

SCHEMA = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")
#: BinConfig options with their own config sections (split, heldout)
_SPLIT_KEYS = (
    "heldout_fraction",
    "heldout",
    "split",
    "stratify",
    "test_trials",
    "seed",
)
#: per-session keys that override config["binning"]: BinConfig's other fields
BINNING_KEYS = tuple(
    f.name for f in dataclasses.fields(BinConfig) if f.name not in _SPLIT_KEYS
)
RULE_RESOURCES = {"threads": 1, "mem_mb": 2000, "runtime": 30}

try:  # the simulator's presets (numpy only, no torch), to check names before any job
    from disrnn.simulate.generate import PRESETS
except ImportError:
    PRESETS = None


def _where(config, path):
    """'session 'x' (sessions[2]), field 'a.b'' or 'field 'a.b'' for a JSON path."""
    path = list(path)
    if len(path) >= 2 and path[0] == "sessions" and isinstance(path[1], int):
        entry = config["sessions"][path[1]]
        sid = entry.get("id") if isinstance(entry, dict) else None
        field = ".".join(str(p) for p in path[2:]) or "(the entry)"
        return f"session {sid!r} (sessions[{path[1]}]), field {field!r}"
    return f"field {'.'.join(str(p) for p in path) or '(top level)'!r}"


def _explain(config, error):
    """One line per leaf error of a jsonschema ValidationError."""
    if (
        error.validator == "oneOf"
        and len(error.path) == 2
        and error.path[0] == "sessions"
    ):
        given = [k for k in ("dandi", "local", "simulate") if k in error.instance]
        return [
            f"{_where(config, [*error.path, 'dandi|local|simulate'])}: give exactly one "
            f"source, 'dandi', 'local' or 'simulate'; got {given or 'none'}"
        ]
    if error.validator == "required":
        return [
            f"{_where(config, [*error.absolute_path, key])}: missing (required)"
            for key in error.validator_value
            if key not in error.instance
        ]
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return _explain(config, best)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return [
            f"{_where(config, [*error.absolute_path, key])}: unknown key {key!r}; "
            f"allowed keys here: {', '.join(allowed)}"
            for key in error.instance
            if key not in allowed
        ]
    return [f"{_where(config, error.absolute_path)}: {error.message}"]


def _method_problems(config):
    """Method names (``methods``, ``method_options`` keys) not in the registry."""
    places = [([], config)]
    for i, entry in enumerate(config.get("sessions") or []):
        if isinstance(entry, dict):
            places.append((["sessions", i], entry))
    problems = []
    for prefix, where in places:
        named = [
            ([*prefix, "methods", j], m)
            for j, m in enumerate(where.get("methods") or [])
        ]
        named += [
            ([*prefix, "method_options", m], m)
            for m in (where.get("method_options") or {})
        ]
        for path, m in named:
            if isinstance(m, str) and m not in METHODS:
                problems.append(
                    f"{_where(config, path)}: unknown method {m!r}; valid methods: "
                    + ", ".join(METHODS)
                )
    return problems


def _option_field(message, options):
    """The option a BinConfig/FitConfig error message names first (None: none)."""
    hits = []
    for key in options:
        for word in (key, key.rstrip("s")):
            found = re.search(rf"\b{re.escape(word)}\b", message)
            if found:
                hits.append((found.start(), key))
    return min(hits)[1] if hits else None


def _value_problems(config):
    """Build every session's BinConfig and FitConfigs; their errors, located."""
    problems = []
    for i, entry in enumerate(config["sessions"]):
        opts = bin_options_of(entry["id"])
        try:  # as workflow/scripts/bin.py builds it: YAML lists as tuples
            binning = BinConfig(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}
            )
            errors = _simulated_size_errors(entry, binning)
        except (TypeError, ValueError) as err:
            errors = [err]
        for err in errors:
            key = _option_field(str(err), opts) or "(binning)"
            problems.append(f"{_where(config, _bin_path(config, i, key))}: {err}")
        problems += _select_problems(config, i)
        for method in methods_of(entry["id"]):
            opts = fit_options_of(entry["id"], method)
            if opts.get("groups") == AUTO:  # the selection decides; check the rest
                del opts["groups"]
            try:
                FitConfig.from_options(method, opts)
            except ValueError as err:
                path = _fit_path(config, i, method, _option_field(str(err), opts))
                where = "" if path[0] == "fit" else f" (method {method})"
                problems.append(f"{_where(config, path)}{where}: {err}")
    return problems


def _select_problems(config, i):
    """The session's SelectConfig errors, and ``groups: auto`` without a selection."""
    entry = config["sessions"][i]
    sid = entry["id"]
    opts = {k: v for k, v in select_options_of(sid).items() if k != "enabled"}
    problems = []
    try:
        SelectConfig.from_options(opts)
    except ValueError as err:
        key = _option_field(str(err), opts)
        own = key in (entry.get("select") or {})
        path = (
            ["sessions", i, "select", key] if own else ["select", key or "(the block)"]
        )
        problems.append(f"{_where(config, path)}: {err}")
    if auto_groups(sid) and not selection_enabled(sid):
        own = (entry.get("fit") or {}).get("groups") == AUTO
        path = ["sessions", i, "fit", "groups"] if own else ["fit", "groups"]
        problems.append(
            f"{_where(config, path)}: groups: auto fits the partition the session's model "
            f"selection chooses, but select.enabled is false for session {sid!r}; enable "
            "it or give the group sizes"
        )
    return problems


#: BinConfig options set in the split / heldout sections: (session key, default key)
_SECTION_KEYS = {
    "split": (["split", "fractions"], ["split", "fractions"]),
    "stratify": (["split", "stratify"], ["split", "stratify"]),
    "test_trials": (["split", "test_trials"], ["split", "test_trials"]),
    "seed": (["split", "seed"], ["split", "seed"]),
    "heldout_fraction": (["heldout_fraction"], ["heldout", "fraction"]),
    "heldout": (["heldout_mode"], ["heldout", "mode"]),
}


def _bin_path(config, i, key):
    """The config path where BinConfig option ``key`` of session ``i`` was set."""
    entry = config["sessions"][i]
    if key not in _SECTION_KEYS:
        return ["sessions", i, key] if key in entry else ["binning", key]
    own, default = _SECTION_KEYS[key]
    where = entry
    for part in own[:-1]:
        where = where.get(part) or {}
    return ["sessions", i, *own] if own[-1] in where else default


def _simulated_size_errors(entry, binning):
    """A simulated session's trial and unit counts are known before it exists: every
    split must get trials and some unit must stay held in (the ValueErrors of those
    checks). The unit filters may keep fewer units, a stratified split rounds per
    condition, test trials from a column (test_trials) depend on the file, other windows
    than nwb.trials hold other counts: binning checks those."""
    sim = entry.get("simulate")
    if sim is None or PRESETS is None or sim["preset"] not in PRESETS:
        return []
    preset = PRESETS[sim["preset"]]
    checks = []
    unforced = binning.stratify is None and binning.test_trials is None
    if unforced and binning.trials in (None, "trials"):
        if binning.window_length is None:
            n_trials = sim.get("n_trials", preset.n_trials)
            checks.append(lambda: splits.check_split_sizes(n_trials, binning.split))
    if binning.heldout != "file":  # a simulated file has no heldout column
        n_units = sim.get("n_units", preset.n_units)
        fraction = binning.heldout_fraction
        checks.append(lambda: splits.check_heldin(n_units, fraction, "the simulation"))
    errors = []
    for check in checks:
        try:
            check()
        except ValueError as err:
            errors.append(err)
    return errors


def _fit_path(config, i, method, key):
    """The config path where FitConfig option ``key`` of ``method`` was set."""
    entry = config["sessions"][i]
    if key is None:
        return ["sessions", i, "fit"]
    for path, where in (
        (["sessions", i, "method_options", method], entry.get("method_options", {})),
        (["method_options", method], config["method_options"]),
        (["sessions", i, "fit"], {method: entry.get("fit", {})}),
        (["fit"], {method: config["fit"]}),
    ):
        if key in where.get(method, {}):
            return [*path, key]
    return ["sessions", i, "fit", key]


def _folder_problems(config):
    """Output folders that would put files at the filesystem root (empty, or the root)."""
    root = os.path.realpath(os.sep)
    problems = []
    for key in ("results_dir", "resources_dir", "logs_dir"):
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, str) and (
            not value.strip().rstrip(os.sep) or os.path.realpath(value) == root
        ):
            problems.append(
                f"field {key!r}: {value!r} would write the outputs at the filesystem root "
                f"({os.path.join(root, '<session>')}); name a folder, e.g. "
                f"{key.split('_')[0]!r}"
            )
    return problems


def check_config(config):
    """Validate ``config`` in place (schema defaults filled in); raise on any error.

    Raises:
        WorkflowError: naming each bad session and field.
    """
    with open(SCHEMA) as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(e.path)):
        problems += _explain(config, error)
    problems += _folder_problems(config)
    sessions = config.get("sessions")
    if isinstance(sessions, list):
        seen = {}
        for i, entry in enumerate(sessions):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            if entry["id"] in seen:
                problems.append(
                    f"session {entry['id']!r} (sessions[{i}]), field 'id': duplicate "
                    f"session id, already used by sessions[{seen[entry['id']]}]"
                )
            seen.setdefault(entry["id"], i)
            if entry["id"] in ("index", "reports"):
                problems.append(
                    f"session {entry['id']!r} (sessions[{i}]), field 'id': {entry['id']!r} "
                    "is reserved for the summary report; choose another id"
                )
            preset = (entry.get("simulate") or {}).get("preset")
            if preset is not None and PRESETS is not None and preset not in PRESETS:
                problems.append(
                    f"session {entry['id']!r} (sessions[{i}]), field 'simulate.preset': "
                    f"unknown preset {preset!r}; presets: {', '.join(sorted(PRESETS))}"
                )
            dandi = entry.get("dandi")
            if isinstance(dandi, dict) and isinstance(dandi.get("path"), str):
                try:
                    check_asset_path(dandi["path"])
                except ValueError as err:
                    problems.append(
                        f"session {entry['id']!r} (sessions[{i}]), field 'dandi.path': {err}"
                    )
            local = entry.get("local")
            if local is not None and not os.path.exists(local):
                problems.append(
                    f"session {entry['id']!r} (sessions[{i}]), field 'local': no file "
                    f"{local!r} (relative paths are taken from the working directory "
                    f"{os.getcwd()!r})"
                )
    problems += _method_problems(config)
    if isinstance(config, dict):
        config.setdefault("methods", list(METHODS))
    if not problems:
        validate(config, SCHEMA)  # fills in the schema's defaults
        problems += _value_problems(config)
    if problems:
        raise WorkflowError(
            "invalid config:\n  " + "\n  ".join(dict.fromkeys(problems))
        )


# ------------------------------------------------------------------- settings per session
def methods_of(session):
    return _sessions()[session].get("methods", config["methods"])


def seeds_of(session):
    return SESSIONS[session].get("seeds", config["seeds"])


def rule_resource(rule, key):
    return config["resources"].get(rule, {}).get(key, RULE_RESOURCES[key])


def dandi_version(entry):
    return entry["dandi"].get("version") or "latest"


def nwb_path(session):
    """Where the session's NWB file is (downloaded, simulated or local)."""
    entry = SESSIONS[session]
    if "local" in entry:
        return entry["local"]
    if "simulate" in entry:
        return f"{RESOURCES}/simulated/{session}.nwb"
    d = entry["dandi"]
    return f"{RESOURCES}/dandi/{d['dandiset']}/{dandi_version(entry)}/{d['path']}"


def dandi_source(wildcards):
    """The fetch options of the first session that names this asset."""
    for entry in config["sessions"]:
        d = entry.get("dandi")
        if (
            d
            and d["dandiset"] == wildcards.dandiset
            and dandi_version(entry) == wildcards.version
            and d["path"] == wildcards.asset
        ):
            return {
                "dandiset": d["dandiset"],
                "path": d["path"],
                "version": d.get("version"),
                "api_url": d.get("api_url") or config["dandi_api_url"],
            }
    raise WorkflowError(f"no session downloads {wildcards.dandiset}/{wildcards.asset}")


def simulate_options(wildcards):
    return dict(SESSIONS[wildcards.session]["simulate"])


def bin_options(wildcards):
    return bin_options_of(wildcards.session)


def bin_options_of(session):
    """BinConfig keyword arguments: defaults, then the session's overrides."""
    entry = _sessions()[session]
    opts = dict(config["binning"])
    opts.update({k: entry[k] for k in BINNING_KEYS if k in entry})
    split = {**config["split"], **entry.get("split", {})}
    opts["split"] = split.get("fractions")
    opts["stratify"] = split.get("stratify")
    opts["test_trials"] = split.get("test_trials")
    opts["seed"] = split.get("seed", 0)
    opts["heldout_fraction"] = entry.get(
        "heldout_fraction", config["heldout"].get("fraction")
    )
    opts["heldout"] = entry.get("heldout_mode", config["heldout"].get("mode"))
    return {k: v for k, v in opts.items() if v is not None and v != []}


def fit_options(wildcards):
    return fit_options_of(wildcards.session, wildcards.method)


def fit_options_of(session, method):
    """FitConfig.from_options options of this session and method."""
    entry = _sessions()[session]
    opts = {**config["fit"], **entry.get("fit", {})}
    opts.update(config["method_options"].get(method, {}))
    opts.update(entry.get("method_options", {}).get(method, {}))
    return {k: v for k, v in opts.items() if v is not None}


def select_options_of(session):
    """The session's ``select`` block: the defaults, then its own overrides."""
    entry = _sessions()[session]
    return {**config["select"], **(entry.get("select") or {})}


def selection_enabled(session):
    return bool(select_options_of(session).get("enabled", False))


#: ``fit: {groups: auto}``: the groups are the session's selected partition
AUTO = "auto"


def auto_groups(session):
    entry = _sessions()[session]
    return {**config["fit"], **(entry.get("fit") or {})}.get("groups") == AUTO


def select_params(wildcards):
    """disrnn.selection.select options of the session: its SelectConfig options and
    each candidate method's fit options (the groups are the candidates' own)."""
    sid = wildcards.session
    opts = {k: v for k, v in select_options_of(sid).items() if k != "enabled"}
    return {
        "config": {k: v for k, v in opts.items() if v is not None},
        "method_options": {m: fit_options_of(sid, m) for m in ("lrRNN", "DisRNN")},
    }


# ---------------------------------------------------------------------------- paths
def selection_json(session):
    """The file a finished selection folder ends with."""
    return f"{RESULTS}/{session}/selection/selection.json"


def session_selection(session):
    """{"selection": selection.json} when the session runs a selection, else {}."""
    return {"selection": selection_json(session)} if selection_enabled(session) else {}


def dataset_inputs(wildcards):
    """The dataset, and with groups: auto the selection that names the groups."""
    inputs = {"dataset": f"{RESULTS}/{wildcards.session}/dataset.nc"}
    if auto_groups(wildcards.session):
        inputs["selection"] = selection_json(wildcards.session)
    return inputs


def fit_posthoc_inputs(wildcards):
    return {**dataset_inputs(wildcards), "init": lrrnn_fits(wildcards)}


def fit_info(session, method, seed):
    """The file a finished fit folder ends with."""
    return f"{RESULTS}/{session}/fits/{method}/seed{seed}/fit_info.json"


def eval_metrics(session, method, seed):
    """The metrics.json of an evaluation folder."""
    return f"{RESULTS}/{session}/evals/{method}/seed{seed}/metrics.json"


#: the folder name of a session's reference (the method, smoothing or pca, follows the
#: binned data and is metrics.json's ``method``; one deterministic run: seed 0)
REFERENCE = "reference"


def reference_metrics(session):
    """[the reference's metrics.json] of the session, or [] when references are off."""
    if not config["references"]["enabled"]:
        return []
    return [eval_metrics(session, REFERENCE, 0)]


def reference_options(wildcards):
    """run_reference options: the references section, the PCA K (the session's DisRNN
    rank, as FitConfig resolves its groups) and DisRNN's history option (None: the
    default L), so the reference scores the bins DisRNN's fits score."""
    refs = config["references"]
    opts = fit_options_of(wildcards.session, "DisRNN")
    rank = None  # groups: auto: the selected rank, read by the job from the selection
    if opts.get("groups") != AUTO:
        rank = int(sum(FitConfig.from_options("DisRNN", opts).groups))
    return {
        "kernel_sds": refs.get("kernel_sds"),
        "causal_kernel_sds": refs.get("causal_kernel_sds"),
        "alphas": refs.get("alphas"),
        "n_folds": refs.get("folds"),
        "n_components": rank,
        "history": opts.get("history"),
    }


def lrrnn_fits(wildcards):
    """The lrRNN fits a post-hoc job transforms: every seed of the session, in order."""
    return [
        fit_info(wildcards.session, "lrRNN", s) for s in seeds_of(wildcards.session)
    ]


def posterior_sources(wildcards, seeds):
    """The lrRNN evaluations whose smoothing posterior a post-hoc method's evaluation of
    ``seeds`` reuses (the same W; one per seed, in order), [] for a trained method."""
    if wildcards.method not in POSTHOC_METHODS:
        return []
    return [eval_metrics(wildcards.session, "lrRNN", s) for s in seeds]


def session_evals(session):
    return [
        eval_metrics(session, m, s)
        for m in methods_of(session)
        for s in seeds_of(session)
    ]


def session_results(session):
    """Every evaluation of the session and its reference: what its report shows."""
    return session_evals(session) + reference_metrics(session)


def session_report_inputs(wildcards):
    return {
        "dataset": f"{RESULTS}/{wildcards.session}/dataset.nc",
        "metrics": session_results(wildcards.session),
        **session_selection(wildcards.session),
    }


def all_selections():
    return [selection_json(s) for s in SESSIONS if selection_enabled(s)]


def all_evals():
    return [m for s in SESSIONS for m in session_results(s)]


# ------------------------------------------------------------ the validated config
def _sessions():
    return {s["id"]: s for s in config["sessions"]}


check_config(config)

RESULTS = config["results_dir"].rstrip("/")
RESOURCES = config["resources_dir"].rstrip("/")
LOGS = config["logs_dir"].rstrip("/")
SESSIONS = _sessions()

#: distinct seed lists -> the sessions fitted with each (one fit rule per list)
SEED_LISTS = {}
for _session in SESSIONS:
    SEED_LISTS.setdefault(tuple(int(s) for s in seeds_of(_session)), []).append(
        _session
    )
DEVICE = config["device"]


def warn_stale_datasets():
    """Warn when a local session's NWB file is no longer the one its dataset was binned
    from (the sha256 the dataset records): Snakemake reruns on newer files only."""
    for sid, entry in SESSIONS.items():
        if "local" in entry:
            dataset = f"{RESULTS}/{sid}/dataset.nc"
            stale = nwb_changed(dataset, entry["local"])
            if stale:
                logger.warning(
                    f"session {sid!r}: {stale}; rebuild it with --forcerun {dataset}"
                )


warn_stale_datasets()


def _escape(names):
    return "|".join(n.replace("+", r"\+").replace(".", r"\.") for n in names)


wildcard_constraints:
    session=_escape(SESSIONS) or "^$",
    seed=r"\d+",
    dandiset=r"\d{6}",
