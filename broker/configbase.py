"""What every configuration model shares: the strict base model and ids, errors that name the file,
the key and a fix, ``${VAR}`` expansion from the environment, and reading YAML."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from broker.topics import ID_PATTERN

Id = Annotated[str, Field(pattern=f"^{ID_PATTERN}$", max_length=64)]


class StrictModel(BaseModel):
    """Unknown keys are errors: a misspelt key must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


def require_unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} appears twice; each {what} must be unique")
        seen.add(value)


class ConfigError(Exception):
    """A configuration file that cannot be used, with one line per problem."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{self.path}: invalid configuration\n" + "\n".join(f"  - {p}" for p in problems))


_FIXES = {
    "extra_forbidden": "remove this key or check its spelling",
    "missing": "add this key",
    "string_pattern_mismatch": "use lower-case letters, digits and '-' only",
    "literal_error": "use one of the allowed values",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "greater_than": "use a larger value",
    "float_parsing": "use a number",
    "int_parsing": "use a whole number",
}


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def describe_errors(path: Path | str, exc: ValidationError) -> ConfigError:
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        fix = _FIXES.get(err["type"])
        line = f"{_key_path(err['loc'])}: {msg}"
        if fix:
            line += f" (fix: {fix})"
        problems.append(line)
    return ConfigError(path, problems)


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, path: str, key: str = "", keep: re.Pattern[str] | None = None) -> Any:
    """Replace ${VAR} and ${VAR:-default} in strings; a missing variable is a config error.
    Strings at keys matching ``keep`` are left as written."""
    if isinstance(value, dict):
        return {k: expand_env(v, path, f"{key}.{k}" if key else str(k), keep) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, path, f"{key}[{i}]", keep) for i, v in enumerate(value)]
    if isinstance(value, str) and keep is not None and keep.match(key):
        return value
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(path, [f"{key}: environment variable {name} is not set (fix: export {name}=...)"])
        return _ENV_RE.sub(repl, value)
    return value


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found (fix: check the path)"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from None
