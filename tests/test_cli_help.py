"""The command line explains itself: every option's help gives its default (and, for the
agent's options, its environment variable), every subcommand shows an example, and
``--version`` is the installed distribution's."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from agent.cli import _parser
from agent.cli_options import agent_options

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser, as ``journeyman`` builds them."""
    (commands,) = (a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(commands.choices)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
    ]


def _agent_flags() -> set[str]:
    """The agent's options, read from the function that adds them to run and demo."""
    probe = argparse.ArgumentParser()
    agent_options(probe)
    return {flag for action in _options(probe) for flag in action.option_strings}


def journeyman(*argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *argv],
        cwd=ROOT,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_subcommand_help_shows_an_example(name: str) -> None:
    """Each subcommand's --help ends with an example that calls that very subcommand."""
    text = _commands()[name].format_help()
    assert "example:\n" in text
    example = text[text.index("example:\n") :]
    assert f"journeyman {name}" in example


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_help_shows_its_default(name: str) -> None:
    """Each option of each subcommand says its default in its help (a required one says
    it is required)."""
    missing = [
        action.option_strings[0]
        for action in _options(_commands()[name])
        if "(default: " not in (action.help or "")
        and not (action.required and "(required)" in (action.help or ""))
    ]
    assert missing == []


def test_agent_options_name_their_environment_variable_in_run_and_demo() -> None:
    """Every agent option of run and demo says which JOURNEYMAN_* variable it reads, and
    that variable really changes the option's default."""
    agent_flags = _agent_flags()
    assert {"--listen", "--log-level", "--max-browsers"} <= agent_flags
    for name in ("run", "demo"):
        parser = _commands()[name]
        for action in _options(parser):
            if action.option_strings[0] in agent_flags:
                assert "; env JOURNEYMAN_" in (action.help or ""), action.option_strings
    listen = next(a for a in _options(_commands()["run"]) if "--listen" in a.option_strings)
    assert "(default: 127.0.0.1:9464; env JOURNEYMAN_LISTEN)" in (listen.help or "")
    shown = journeyman("run", "--help", JOURNEYMAN_LISTEN="127.0.0.1:1")
    assert "(default: 127.0.0.1:9464; env" in " ".join(shown.stdout.split())


def test_log_level_lists_its_choices() -> None:
    """--log-level's help lists the levels it takes."""
    done = journeyman("run", "--help")
    assert "--log-level {debug,info,warning,error,critical}" in done.stdout


def test_version_is_the_installed_distribution() -> None:
    """`journeyman --version` prints the version in the package metadata and exits 0."""
    done = journeyman("--version")
    assert done.returncode == 0
    assert done.stdout == f"journeyman {version('journeyman')}\n"
