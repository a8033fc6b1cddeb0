"""Config validation, the session table and input functions (nothing else).

The config is checked against workflow/schemas/config.schema.yaml before any job is
scheduled; an error names the session and the field. Everything below reads the
validated config only.
"""

import os

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

SCHEMA = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")
#: methods that transform the lrRNN fit of the same seed instead of training
POSTHOC = ("lrRNN+ICA", "LINT")
TRAINED = ("lrRNN", "bdRNN", "DisRNN-full", "DisRNN", "DisRNN-MLP")
#: per-session keys that override config["binning"]
BINNING_KEYS = (
    "bin_width",
    "trials",
    "align",
    "window",
    "window_length",
    "activity",
    "behavior",
    "min_rate",
    "max_rate",
    "min_spikes",
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
    where = _where(config, error.absolute_path)
    if error.validator == "enum" and "lrRNN" in error.validator_value:
        return [
            f"{where}: unknown method {error.instance!r}; valid methods: "
            + ", ".join(error.validator_value)
        ]
    return [f"{where}: {error.message}"]


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
            local = entry.get("local")
            if local is not None and not os.path.exists(local):
                problems.append(
                    f"session {entry['id']!r} (sessions[{i}]), field 'local': no file "
                    f"{local!r} (relative paths are taken from the working directory "
                    f"{os.getcwd()!r})"
                )
    if problems:
        raise WorkflowError(
            "invalid config:\n  " + "\n  ".join(dict.fromkeys(problems))
        )
    validate(config, SCHEMA)  # fills in the schema's defaults


check_config(config)

RESULTS = config["results_dir"].rstrip("/")
RESOURCES = config["resources_dir"].rstrip("/")
LOGS = config["logs_dir"].rstrip("/")
SESSIONS = {s["id"]: s for s in config["sessions"]}
DEVICE = config["device"]


def _escape(names):
    return "|".join(n.replace("+", r"\+").replace(".", r"\.") for n in names)


wildcard_constraints:
    session=_escape(SESSIONS) or "^$",
    seed=r"\d+",
    dandiset=r"\d{6}",


# ------------------------------------------------------------------- settings per session
def methods_of(session):
    return SESSIONS[session].get("methods", config["methods"])


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
    """BinConfig keyword arguments: defaults, then the session's overrides."""
    entry = SESSIONS[wildcards.session]
    opts = dict(config["binning"])
    opts.update({k: entry[k] for k in BINNING_KEYS if k in entry})
    split = {**config["split"], **entry.get("split", {})}
    opts["split"] = split.get("fractions")
    opts["stratify"] = split.get("stratify")
    opts["seed"] = split.get("seed", 0)
    opts["heldout_fraction"] = entry.get(
        "heldout_fraction", config["heldout"].get("fraction")
    )
    return {k: v for k, v in opts.items() if v is not None and v != []}


def fit_options(wildcards):
    """FitConfig.create keyword arguments for this session and method."""
    entry = SESSIONS[wildcards.session]
    method = wildcards.method
    opts = {**config["fit"], **entry.get("fit", {})}
    opts.update(config["method_options"].get(method, {}))
    opts.update(entry.get("method_options", {}).get(method, {}))
    return {k: v for k, v in opts.items() if v is not None}


# ---------------------------------------------------------------------------- paths
def fit_info(session, method, seed):
    """The file a finished fit folder ends with."""
    return f"{RESULTS}/{session}/fits/{method}/seed{seed}/fit_info.json"


def eval_metrics(session, method, seed):
    """The metrics.json of an evaluation folder."""
    return f"{RESULTS}/{session}/evals/{method}/seed{seed}/metrics.json"


def lrrnn_fit(wildcards):
    return fit_info(wildcards.session, "lrRNN", wildcards.seed)


def session_evals(session):
    return [
        eval_metrics(session, m, s)
        for m in methods_of(session)
        for s in seeds_of(session)
    ]


def session_report_inputs(wildcards):
    return {
        "dataset": f"{RESULTS}/{wildcards.session}/dataset.nc",
        "metrics": session_evals(wildcards.session),
    }


def all_evals():
    return [m for s in SESSIONS for m in session_evals(s)]
