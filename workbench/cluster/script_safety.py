"""What a setting may hold before it is written into a batch job script.

Job scripts are shell scripts: a queue name with a newline in it ends its ``#SBATCH`` line and
the next line runs as a command in the job. dask-jobqueue writes profile values into its scripts
unquoted, and so do the directives of :mod:`workbench.jobs.systems`, so every value is checked
where it enters a script and refused with the key and the character at fault.

Three kinds of values:

- a **word** (queue, account, walltime, memory, ...): letters, digits and ``_-.,:=/@%+``;
  no spaces, which would add options of the attacker's choosing to the directive;
- a **directive** (``job-extra-directives``, ``--directive``) or a command word (``python``,
  ``worker-extra-args``): anything on one line except the shell's command characters
  ``; $ ` | & < >``; a path (``local-directory``) may name ``$VARIABLE`` as sites do
  (``$TMPDIR``), never ``$(...)``;
- a **prologue line** (``job-script-prologue``): shell by design, the user's own commands, so
  only one line each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from workbench.errors import ProfileError

WORD_KEYS = frozenset(
    {
        "queue",
        "account",
        "project",
        "walltime",
        "cores",
        "processes",
        "job-name",
        "name",
        "interface",
        "job-cpu",
        "job-mem",
        "resource-spec",
        "lsf-units",
        "ncpus",
        "mem",
        "disk",
        "scheduler-host",
        "scheduler-interface",
    }
)
DIRECTIVE_KEYS = frozenset(
    {
        "memory",  # parsed to bytes before dask-jobqueue writes it; "16 GB" is a fine value
        "job-extra-directives",
        "worker-extra-args",
        "worker-command",
        "python",
        "shebang",
        "submit-command-extra",
        "cancel-command-extra",
    }
)
PATH_KEYS = frozenset({"local-directory", "log-directory", "shared-temp-directory"})
LINE_KEYS = frozenset({"job-script-prologue"})
SCRIPT_KEYS = WORD_KEYS | DIRECTIVE_KEYS | PATH_KEYS | LINE_KEYS

_WORD = re.compile(r"[A-Za-z0-9_\-.,:=/@%+]*")
_COMMAND_CHARACTERS = ";$`|&<>"
# A variable a site's paths may name ($TMPDIR, ${SCRATCH}); it expands, it does not run.
_VARIABLE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")
_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space"}


def check_word(key: str, value: Any, where: str) -> None:
    """Refuse a one-word value (a queue, an account) with a character outside the safe set."""
    text = str(value)
    bad = next((c for c in text if not _WORD.fullmatch(c)), None)
    if bad is not None:
        _refuse(key, text, bad, where, "one word of letters, digits and _-.,:=/@%+")


def check_directive(key: str, value: Any, where: str, *, variables: bool = False) -> None:
    """Refuse a directive or command word holding a control character (a newline) or one of
    the shell's command characters; ``variables`` lets ``$NAME`` through (paths)."""
    text = str(value)
    scan = _VARIABLE.sub("", text) if variables else text
    bad = next((c for c in scan if c in _COMMAND_CHARACTERS or _control(c)), None)
    if bad is not None:
        allowed = "one line without ; $ ` | & < >"
        if variables:
            allowed += " ($NAME variables are allowed)"
        _refuse(key, text, bad, where, allowed)


def check_line(key: str, value: Any, where: str) -> None:
    """Refuse a prologue line that is in fact several lines."""
    text = str(value)
    bad = next((c for c in text if _control(c) and c != "\t"), None)
    if bad is not None:
        _refuse(key, text, bad, where, "one shell line per list item")


def check_setting(key: str, value: Any, where: str) -> None:
    """Check one profile setting by the kind of value its key holds (others pass)."""
    if value is None or isinstance(value, bool):
        return
    for item in _items(value):
        if key in WORD_KEYS:
            check_word(key, item, where)
        elif key in DIRECTIVE_KEYS:
            check_directive(key, item, where)
        elif key in PATH_KEYS:
            check_directive(key, item, where, variables=True)
        elif key in LINE_KEYS:
            check_line(key, item, where)


def _items(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):  # HTCondor's job-extra-directives: {"+ProjectName": '"p"'}
        return [*value.keys(), *value.values()]
    if isinstance(value, list | tuple):
        return value
    return [value]


def _control(char: str) -> bool:
    return ord(char) < 32 or ord(char) == 127


def _refuse(key: str, text: str, bad: str, where: str, allowed: str) -> None:
    name = _NAMES.get(bad, f"{bad!r}")
    raise ProfileError(
        f"{where}: {key} {text!r} contains {name}, which a job script cannot take safely "
        f"(it could run as a shell command in the job). {key} must be {allowed}: fix the value."
    )
