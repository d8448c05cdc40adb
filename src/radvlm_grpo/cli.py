"""What every script's command line shares: a ``--help`` that says what the script does, one-line user errors, and
the checks to run before hours of work (an output folder that cannot be written, a push that cannot happen).

Scripts run their entry point through ``run_cli``. An exception that is the user's to fix (``user_error`` decides)
ends the program with ``error: <what is wrong and the fix>`` as the last line on stderr and exit status 2 (argparse's
status for usage errors), instead of a traceback that buries that line. ``RADVLM_DEBUG=1`` shows the traceback, and
Python code that runs a script (a test's ``runpy.run_path``) gets the exception itself.

Which exceptions count as user errors, and why:

- ``UserError`` and the exception classes of this package (``CredentialedDataError``, ``ImageLoadError``,
  ``ScorerUnavailable``...): their messages are written for users and name the fix.
- Missing or existing files, folders and permissions, and an unreachable Hub (``FileNotFoundError``,
  ``FileExistsError``, ``NotADirectoryError``, ``IsADirectoryError``, ``PermissionError``, ``ConnectionError``):
  the user's paths and environment, from wherever they are raised.
- ``ValueError``, ``OSError``, ``ImportError`` and ``RuntimeError`` only when raised by this project's code
  (``src/radvlm_grpo``, ``scripts/``) or while parsing and validating arguments (argparse, ``HfArgumentParser``, a
  config dataclass's ``__post_init__``): that is where recipes and arguments are checked.
- Anything else (a ``TypeError``, a ``ValueError`` from inside torch mid-training...) keeps its traceback: it is
  probably a bug, and the traceback is what a bug report needs.

Errors that ``datasets`` wraps in a ``DatasetGenerationError`` are judged by their cause.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

DEBUG_ENV = "RADVLM_DEBUG"
EPILOG = f"A mistake in the arguments ends with one line that says what is wrong; {DEBUG_ENV}=1 shows the traceback."

_PACKAGE_DIR = Path(__file__).resolve().parent
_SCRIPTS_DIR = _PACKAGE_DIR.parents[1] / "scripts"
_PATH_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    ConnectionError,
)
_CHECK_ERRORS = (ValueError, OSError, ImportError, RuntimeError)
_PARSING_FILES = {"argparse.py", "hf_argparser.py"}

T = TypeVar("T")


class UserError(ValueError):
    """Input the user must fix (a misspelt recipe key, a missing recipe); the message says what and how."""


# ---------------------------------------------------------------------------------------------------------------------
# Help
# ---------------------------------------------------------------------------------------------------------------------


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The script's docstring as written (its usage examples keep their lines), and each option's default."""


# argparse %-formats help strings, so "95% intervals" crashes --help: "%%" and "%(name)s" are kept, a lone "%" doubled.
_PERCENT = re.compile(r"%%|%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|%")


def escape_help_percents(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Escape lone ``%`` in every option's help, so a help string written as prose cannot crash ``--help``."""
    for action in parser._actions:
        if isinstance(action.help, str):
            action.help = _PERCENT.sub(lambda match: "%%" if match.group() == "%" else match.group(), action.help)
    return parser


def make_parser(
    dataclass_types: Sequence[type],
    description: str | None = None,
    usage: str | None = None,
    parser_class: type | None = None,
):
    """An ``HfArgumentParser`` (or ``parser_class``) whose ``--help`` opens with what the script does and its usage."""
    if parser_class is None:
        from transformers import HfArgumentParser as parser_class
    parser = parser_class(
        list(dataclass_types),
        description=description,
        usage=usage,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    return escape_help_percents(parser)


# ---------------------------------------------------------------------------------------------------------------------
# Misspelt names
# ---------------------------------------------------------------------------------------------------------------------


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or "" when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dataclass_field_names(dataclass_types: Iterable[type]) -> set[str]:
    return {f.name for dtype in dataclass_types for f in dataclasses.fields(dtype) if f.init}


def check_recipe_keys(
    keys: Iterable[str], dataclass_types: Sequence[type], source: str, renamed: Mapping[str, str] | None = None
) -> None:
    """Raise a ``UserError`` naming every key of ``source`` that no dataclass field has, with the closest field.

    ``renamed`` maps keys that a library renamed to their new name, suggested instead of the closest spelling.
    """
    known = dataclass_field_names(dataclass_types)
    renamed = renamed or {}
    unknown = [key for key in keys if key not in known]
    if unknown:
        named = ", ".join(
            f"{key!r} (now called {renamed[key]!r})" if key in renamed else f"{key!r}{did_you_mean(key, known)}"
            for key in unknown
        )
        raise UserError(
            f"Unknown key{'s' if len(unknown) > 1 else ''} in {source}: {named}. Fix the spelling or remove the "
            "key; `--help` lists every field."
        )


def check_flags(args: Sequence[str], parser: argparse.ArgumentParser) -> None:
    """Raise a ``UserError`` for a ``--flag`` the parser does not know (argparse's unique prefixes are accepted)."""
    options = [option for option in parser._option_string_actions if option.startswith("--")]
    for arg in args:
        if not arg.startswith("--") or arg == "--":
            continue
        flag = arg.split("=", 1)[0]
        if not any(option.startswith(flag) for option in options):
            raise UserError(f"Unknown option {flag}{did_you_mean(flag, options)}; `--help` lists every option.")


def parse_dataclasses(
    dataclass_types: Sequence[type],
    argv: Sequence[str] | None = None,
    description: str | None = None,
    usage: str | None = None,
) -> tuple:
    """Parse the command line into ``dataclass_types`` with a described ``--help`` and did-you-mean for flags."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser(dataclass_types, description, usage)
    check_flags(args, parser)
    return parser.parse_args_into_dataclasses(args=args)


# ---------------------------------------------------------------------------------------------------------------------
# User errors
# ---------------------------------------------------------------------------------------------------------------------


def debug_mode() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _raised_by_checks(error: BaseException) -> bool:
    """Whether the innermost frame that raised ``error`` is the project's code or argument parsing/validation."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    innermost = frames[-1]
    path = Path(innermost.filename).resolve()
    ours = any(path.is_relative_to(folder) for folder in (_PACKAGE_DIR, _SCRIPTS_DIR))
    return ours or path.name in _PARSING_FILES or innermost.name == "__post_init__"


def user_error(error: BaseException) -> BaseException | None:
    """The exception whose message the user should see as the one error line, or None for a probable bug."""
    if type(error).__name__ == "DatasetGenerationError" and error.__cause__ is not None:
        return user_error(error.__cause__)
    if isinstance(error, UserError) or type(error).__module__.split(".")[0] == "radvlm_grpo":
        return error
    if isinstance(error, _PATH_ERRORS):
        return error
    if isinstance(error, _CHECK_ERRORS) and _raised_by_checks(error):
        return error
    return None


def one_line(error: BaseException) -> str:
    """The error's message on one line (multi-line messages joined), or its class name when it has none."""
    message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return message or type(error).__name__


def _called_from_python() -> bool:
    """Whether Python code (a test's ``runpy.run_path``, a notebook) runs the script and so can catch its errors.

    The script is the program when nothing but the interpreter's ``runpy`` (``python -m``) lies below its frames.
    """
    script = sys._getframe(2)  # 0: here, 1: run_cli, 2: the script that called run_cli
    frame = script.f_back
    while frame is not None and frame.f_code.co_filename == script.f_code.co_filename:
        frame = frame.f_back
    while frame is not None:
        if "runpy" not in Path(frame.f_code.co_filename).name:
            return True
        frame = frame.f_back
    return False


def run_cli(entry: Callable[[], T]) -> T:
    """Run a script's entry point: a user error ends the program with ``error: <message>`` and exit status 2.

    The original exception propagates with ``RADVLM_DEBUG=1``, for probable bugs, and when Python code called the
    script (a test asserting on the exception type).
    """
    try:
        return entry()
    except Exception as error:
        shown = user_error(error)
        if shown is None or debug_mode() or _called_from_python():
            raise
        sys.stdout.flush()
        print(f"error: {one_line(shown)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


# ---------------------------------------------------------------------------------------------------------------------
# Checks before the work starts
# ---------------------------------------------------------------------------------------------------------------------


def check_writable_dir(path: str | Path, flag: str = "--output_dir") -> None:
    """Fail now, not after hours of conversion or training, when ``path`` cannot be created or written."""
    path = Path(path).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(f"{flag} {path}: {existing} is a file, not a folder; choose another {flag}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{flag} {path}: {existing} is not writable; choose another {flag}.")


def check_hub_push(repo_id: str | None, flag: str = "--push_to_hub") -> None:
    """Fail now, not after the work, when a push cannot happen: no repo id, a malformed one, offline, no token."""
    from huggingface_hub import constants, get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not repo_id:
        raise UserError(f"Pushing needs a Hub repo id: set {flag}, e.g. {flag} your-name/radvlm-grpo.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise UserError(f"{flag} {repo_id!r} is not a Hub repo id (namespace/name): {error}") from error
    if constants.HF_HUB_OFFLINE:
        raise UserError(f"{flag} {repo_id}: HF_HUB_OFFLINE is set, so nothing can be pushed; unset it to push.")
    if get_token() is None:
        raise UserError(f"{flag} {repo_id}: no Hub token; run `hf auth login` or set HF_TOKEN, then run again.")


def check_report_to(report_to: str | Sequence[str] | None) -> None:
    """Fail before the model loads when a recipe logs to a tracker that is not installed (the Trainer would only
    say so once it is built, minutes later on a multi-GPU node)."""
    from transformers.integrations import get_available_reporting_integrations

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    wanted = [name for name in names if name not in ("none", "all")]
    missing = [name for name in wanted if name not in get_available_reporting_integrations()]
    if missing:
        raise UserError(
            f'report_to names {", ".join(missing)}, which is not installed: `pip install -e ".[tracking]"` '
            "(tensorboard, trackio) or `pip install <tracker>`, or set --report_to none."
        )
