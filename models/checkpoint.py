"""Vetting a PyTorch checkpoint (``.pt``) before anything loads it.

A ``.pt`` is a zip whose ``data.pkl`` is a pickle, and unpickling runs whatever callables the
pickle names. So a checkpoint from outside is accepted only when (docs/models.md):

1. the same bytes are found in at least three unrelated places (``--copy``; sha256 compared),
2. its pickle references only ``torch``, ``ultralytics`` and ``collections`` globals (and the
   plain ``set``/``frozenset``/``slice`` constructors): the opcodes are read with
   :mod:`pickletools` and never executed,
3. and only then, loaded, it gives the same outputs as the registered ONNX export on real
   footage (``edge`` letterbox and all).
"""

from __future__ import annotations

import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from models.registry import sha256_file

ALLOWED_ROOTS = ("torch", "ultralytics", "collections")
# Plain data constructors that every torch.save of a module writes (a module's set of hooks' names):
# they build a value and run nothing else. getattr, eval, exec, os.* and the like stay refused.
ALLOWED_DATA_TYPES = frozenset({"builtins.set", "__builtin__.set", "builtins.frozenset", "__builtin__.frozenset",
                                "builtins.slice", "__builtin__.slice"})
MIN_COPIES = 3
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


class CheckpointRefused(ValueError):
    pass


def pickle_globals(path: Path) -> list[str]:
    """Every ``module.name`` the checkpoint's pickle(s) would import, in order, without unpickling."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise CheckpointRefused(f"{path}: not a zip archive (a legacy or foreign format; refused unread)") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith(".pkl")]
        if not pickles:
            raise CheckpointRefused(f"{path}: no .pkl member in the archive")
        found: list[str] = []
        for name in pickles:
            found += _globals_of(archive.read(name))
    return found


def _globals_of(data: bytes) -> list[str]:
    memo: dict[int, object] = {}
    recent: list[object] = []  # the values pushed lately (STACK_GLOBAL takes the last two strings)
    found = []
    for opcode, arg, _pos in pickletools.genops(data):
        if opcode.name in _STRING_OPS:
            recent.append(arg)
        elif opcode.name in ("MEMOIZE",):
            memo[len(memo)] = recent[-1] if recent else None
        elif opcode.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = recent[-1] if recent else None  # type: ignore[arg-type]
        elif opcode.name in ("BINGET", "LONG_BINGET", "GET"):
            recent.append(memo.get(int(arg)))  # type: ignore[arg-type]
        elif opcode.name == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            found.append(f"{module}.{name}")
        elif opcode.name == "STACK_GLOBAL":
            pair = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
            found.append(f"{pair[0]}.{pair[1]}")
        elif opcode.name in ("INST", "OBJ", "EXT1", "EXT2", "EXT4"):
            found.append(f"<{opcode.name} {arg}>")  # old-style construction: never allowed
        else:
            recent.append(None)
    return found


def refused_globals(names: list[str]) -> list[str]:
    return sorted({n for n in names if n.split(".", 1)[0] not in ALLOWED_ROOTS and n not in ALLOWED_DATA_TYPES})


@dataclass
class Vetting:
    file: str
    sha256: str
    copies: dict[str, str] = field(default_factory=dict)  # place -> sha256
    globals_seen: int = 0
    refused: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.problems


def vet(path: Path, copies: list[Path]) -> Vetting:
    """Checks 1 and 2 (no code of the file runs)."""
    result = Vetting(file=str(path), sha256=sha256_file(path))
    for copy in dict.fromkeys(c.resolve() for c in copies if c.resolve() != path.resolve()):
        result.copies[str(copy)] = sha256_file(copy)
    same = 1 + sum(1 for sha in result.copies.values() if sha == result.sha256)
    differing = [p for p, sha in result.copies.items() if sha != result.sha256]
    if differing:
        result.problems.append(f"copies with other bytes: {', '.join(differing)}")
    if same < MIN_COPIES:
        result.problems.append(f"{same} identical cop{'y' if same == 1 else 'ies'}; at least {MIN_COPIES} from unrelated "
                               "places are needed (--copy PATH for each)")
    try:
        names = pickle_globals(path)
    except CheckpointRefused as exc:
        result.problems.append(str(exc))
        return result
    result.globals_seen = len(set(names))
    result.refused = refused_globals(names)
    if result.refused:
        result.problems.append(f"the pickle references globals outside {', '.join(ALLOWED_ROOTS)}: {', '.join(result.refused)}")
    return result
