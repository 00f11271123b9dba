"""Prints the parameter overrides a guided `sam deploy` saved in samconfig.toml, NUL-separated.

Run with .venv-sam's Python (3.11+, tomllib): saved-parameter-overrides.py SAMCONFIG. Prints
nothing when none are saved (no deploy has been guided yet). scripts/deploy.sh passes them to
`sam deploy --parameter-overrides` ahead of FunctionArchitecture: an override given on the
command line replaces the saved ones instead of adding to them, so they are given again, as
saved, and SAM's parser lets the later FunctionArchitecture win.
"""

import sys
import tomllib


def saved(config, env="default"):
    """The deploy command's parameter_overrides, else the global ones, as SAM reads them."""
    for section in ("deploy", "global"):
        parameters = config.get(env, {}).get(section, {}).get("parameters", {})
        if "parameter_overrides" in parameters:
            return parameters["parameter_overrides"]
    return None


def flatten(value, where):
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [item for v in value for item in flatten(v, where)]
    sys.exit(f"saved-parameter-overrides: {where}: parameter_overrides is a {type(value).__name__}, "
             "not a string or a list of strings")


def main(path):
    with open(path, "rb") as f:
        config = tomllib.load(f)
    overrides = flatten(saved(config) or [], path)
    for item in overrides:
        if "\0" in item:
            sys.exit(f"saved-parameter-overrides: {path}: a parameter override holds a NUL byte")
    sys.stdout.write("".join(item + "\0" for item in overrides))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: saved-parameter-overrides.py SAMCONFIG")
    main(sys.argv[1])
