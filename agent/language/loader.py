"""Journey files and the catalog: YAML in, validated models out, every mistake located.

:func:`load` reads files and folders (``*.yaml`` and ``*.yml``, recursively, sorted;
hidden folders skipped). A file named ``catalog.yaml`` is the services inventory; any
other file holds one journey, a list of journeys, or several ``---`` documents.

Every mistake is reported at once as ``file:line:col: path: message``, in one pass:
the structure (YAML, then each model's fields), the references (``${...}``) and the
catalog's business processes are all checked, whatever the others found, so that
fixing one error never reveals the next. A file with an error contributes no journeys
but never stops the others: the agent runs the good files, and on reload keeps the last
good version of a bad one, which is why results are also given per file
(:attr:`LoadResult.files`). Secrets written in a file are masked in every
message about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.language.catalog import Catalog
from agent.language.field_errors import field_errors, format_path, suggest
from agent.language.model import Journey
from agent.language.references import check_references
from agent.language.templating import EnvAllowList, Masker
from agent.language.yaml_hints import colon_hint
from agent.language.yaml_marks import Document, Marks, Position, parse
from agent.language.yaml_marks import Path as DataPath

__all__ = ["CATALOG_NAMES", "FileResult", "LoadResult", "LoadedJourney", "Problem", "load"]

CATALOG_NAMES = frozenset({"catalog.yaml", "catalog.yml"})
_SUFFIXES = (".yaml", ".yml")
_SECRET_FIELDS = frozenset({"secrets"})  # their values are never quoted in a message


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake (or warning) in one file; ``str()`` gives ``file:line:col: path: message``."""

    file: Path
    line: int  # 1-based; 0 when the problem is about the whole file
    column: int
    path: str  # the field, as steps[2].expect.status; "" when about the whole document
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else str(self.file)
        what = f"{self.path}: {self.message}" if self.path else self.message
        return f"{where}: {'warning: ' if self.warning else ''}{what}"


@dataclass(frozen=True, slots=True)
class LoadedJourney:
    journey: Journey
    source: Path
    line: int  # where the journey starts in its file


@dataclass(frozen=True, slots=True)
class FileResult:
    """What one file gave: its journeys (none if it has an error), or the catalog."""

    path: Path
    journeys: tuple[LoadedJourney, ...] = ()
    catalog: Catalog | None = None
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class LoadResult:
    files: Mapping[Path, FileResult]
    catalog: Catalog | None  # None when there is no catalog file, or it has errors

    @property
    def journeys(self) -> tuple[LoadedJourney, ...]:
        return tuple(j for f in self.files.values() for j in f.journeys)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for f in self.files.values() for p in f.errors)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for f in self.files.values() for p in f.warnings)


def load(
    paths: Iterable[str | Path],
    *,
    environ: Mapping[str, str] | None = None,
    require_env: bool = False,
    allow_env: EnvAllowList | None = None,
) -> LoadResult:
    """Load journey files and folders, and the catalog among them.

    ``environ`` is checked for every ``${env.NAME}``: an unset one is a warning, or an
    error with ``require_env``; None skips that check. With ``allow_env``, an
    ``${env.NAME}`` a journey may not read (``--allow-env``) is an error.
    """
    drafts = []
    for path, error in _discover(paths):
        draft = _Draft(path)
        if error:
            draft.add(None, (), error)
        else:
            draft.read(_EnvRules(environ, require_env, allow_env))
        drafts.append(draft)
    catalog = _the_catalog(drafts)
    if catalog is not None:
        _check_processes(drafts, catalog)
    _check_unique_ids(drafts)
    return LoadResult({d.path: d.result() for d in drafts}, catalog)


@dataclass(frozen=True)
class _EnvRules:
    """How ``${env.NAME}`` references are checked (see :func:`load`)."""

    environ: Mapping[str, str] | None
    require_env: bool
    allow_env: EnvAllowList | None


@dataclass
class _Parsed:
    """A journey as written, its model if it validated, and how to point into its file."""

    data: dict[Any, Any]
    journey: Journey | None
    marks: Marks
    root: DataPath  # the journey's path in its document: () or (index,) in a list

    def written(self, name: str) -> str | None:
        """A top-level text field as written, checked across files even when the journey
        has errors of its own."""
        value = self.data.get(name)
        return value if isinstance(value, str) else None


@dataclass
class _Draft:
    """One file while it is being loaded; becomes a frozen FileResult."""

    path: Path
    problems: list[Problem] = field(default_factory=list)
    journeys: list[_Parsed] = field(default_factory=list)
    catalog: Catalog | None = None
    masker: Masker = field(default_factory=Masker)

    def add(
        self, at: Position | None, path: DataPath, message: str, *, warning: bool = False
    ) -> None:
        line, column = (at.line, at.column) if at else (0, 0)
        text = self.masker(message)
        self.problems.append(Problem(self.path, line, column, format_path(path), text, warning))

    def add_at(self, parsed: _Parsed, path: DataPath, message: str) -> None:
        self.add(parsed.marks.at(parsed.root + path), path, message)

    def has_error_at(self, parsed: _Parsed, path: DataPath) -> bool:
        at = parsed.marks.at(parsed.root + path)
        return any(
            (p.line, p.column, p.path) == (at.line, at.column, format_path(path))
            for p in self.problems
            if not p.warning
        )

    def read(self, env: _EnvRules) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            self.add(None, (), "not UTF-8 text")
            return
        except OSError as error:
            self.add(None, (), f"cannot read: {error.strerror or error}")
            return
        documents, yaml_problems = parse(text)
        for document in documents:
            for secret in _literal_secrets(document.data):
                self.masker.add(secret)
        for problem in yaml_problems:
            self.add(problem.position, (), problem.message)
        for document in documents:
            for problem in document.problems:
                in_list = isinstance(document.data, list) and problem.path
                self.add(
                    problem.position, problem.path[1:] if in_list else problem.path, problem.message
                )
        if self.path.name in CATALOG_NAMES:
            self._read_catalog(documents)
        else:
            self._read_journeys(documents, env)

    def _read_catalog(self, documents: list[Document]) -> None:
        found = [d for d in documents if d.data is not None]
        for extra in found[1:]:
            self.add(extra.marks.at(()), (), "a catalog is one document; remove this one")
        if found:
            catalog = self._validate(Catalog, found[0].data, found[0].marks, ())
            self.catalog = catalog if isinstance(catalog, Catalog) else None
            self._unused_hints(found[0].marks, found[0])
        elif not self.problems:
            self.add(None, (), "the catalog is empty")

    def _read_journeys(self, documents: list[Document], env: _EnvRules) -> None:
        for document in documents:
            data, marks = document.data, document.marks
            items: list[tuple[DataPath, Any]] = [((), data)]
            if isinstance(data, list):
                items = [((index,), item) for index, item in enumerate(data)]
            for root, item in items:
                journey = self._validate(Journey, item, marks, root)
                if not isinstance(item, dict):
                    continue
                parsed = _Parsed(
                    item, journey if isinstance(journey, Journey) else None, marks, root
                )
                self.journeys.append(parsed)
                found_all = check_references(
                    item,
                    parsed.journey,
                    env.environ,
                    require_env=env.require_env,
                    allow_env=env.allow_env,
                )
                for found in found_all:
                    at = marks.at(root + found.path)
                    self.add(at, found.path, found.message, warning=not found.error)
            self._unused_hints(marks, document)
        if not self.journeys and not self.problems:
            self.add(None, (), "no journeys in this file", warning=True)

    def _validate(
        self, model: type[BaseModel], data: Any, marks: Marks, root: DataPath
    ) -> BaseModel | None:
        if data is None and root == ():
            return None  # an empty document, such as a trailing ---
        if not isinstance(data, dict):
            what = "a catalog" if model is Catalog else "a journey"
            got = "a list" if isinstance(data, list) else repr(data)
            hint = colon_hint(data)
            self.add(
                marks.at(root),
                (),
                f"expected {what} (a mapping of fields), got {got}"
                + (f" ({hint})" if hint else ""),
            )
            return None
        try:
            return model.model_validate(data)
        except ValidationError as error:
            for found in field_errors(error, data, model, secret_fields=_SECRET_FIELDS):
                full = root + found.path
                if not any(full[:end] in marks.broken for end in range(len(full) + 1)):
                    hint = marks.hints.pop(full, None)  # why the value is not as written
                    message = f"{found.message} ({hint})" if hint else found.message
                    self.add(marks.at(full), found.path, message)
            return None

    def _unused_hints(self, marks: Marks, document: Document) -> None:
        """A ``#`` that cut a value short with no error to tell is a warning of its own."""
        in_list = isinstance(document.data, list)
        for path, hint in marks.hints.items():
            self.add(marks.at(path), path[1:] if in_list else path, hint, warning=True)

    def result(self) -> FileResult:
        ordered = sorted(self.problems, key=lambda p: (p.line, p.column))
        errors = tuple(p for p in ordered if not p.warning)
        journeys = tuple(
            LoadedJourney(p.journey, self.path, p.marks.at(p.root).line)
            for p in self.journeys
            if p.journey is not None
        )
        return FileResult(
            self.path,
            () if errors else journeys,
            None if errors else self.catalog,
            errors,
            tuple(p for p in ordered if p.warning),
        )


def _discover(paths: Iterable[str | Path]) -> Iterator[tuple[Path, str | None]]:
    """Each file to read, or a path with what is wrong with it; each file once."""
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in _SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                yield path, "no journey files (*.yaml, *.yml) in this folder"
        elif path.exists():
            found = [path]
        else:
            yield path, "no such file or folder"
            continue
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                yield file, None


def _literal_secrets(data: Any) -> Iterator[str]:
    """Secret values written in the file itself, to be masked in messages."""
    for item in data if isinstance(data, list) else [data]:
        secrets = item.get("secrets") if isinstance(item, dict) else None
        if isinstance(secrets, dict):
            yield from (str(v) for v in secrets.values() if isinstance(v, str | int | float))


def _the_catalog(drafts: list[_Draft]) -> Catalog | None:
    catalogs = [d for d in drafts if d.path.name in CATALOG_NAMES]
    for extra in catalogs[1:]:
        extra.add(
            None, (), f"a second catalog: only one may be loaded (the first is {catalogs[0].path})"
        )
    if not catalogs or any(not p.warning for p in catalogs[0].problems):
        return None
    return catalogs[0].catalog


def _check_processes(drafts: list[_Draft], catalog: Catalog) -> None:
    known = [p.id for p in catalog.business_processes]
    for draft in drafts:
        for parsed in draft.journeys:
            process = parsed.written("business_process")
            where = ("business_process",)
            # a process the model refused (not an id) is reported once, by the model
            if process is None or process in known or draft.has_error_at(parsed, where):
                continue
            hint = suggest(process, known) or f" (the catalog has: {', '.join(known)})"
            draft.add_at(parsed, where, f"unknown business process {process!r}{hint}")


def _check_unique_ids(drafts: list[_Draft]) -> None:
    first: dict[str, str] = {}
    for draft in drafts:
        for parsed in draft.journeys:
            at = parsed.marks.at((*parsed.root, "journey"))
            where = f"{draft.path}:{at.line}:{at.column}"
            journey_id = parsed.written("journey")
            if journey_id is None:
                continue
            if journey_id in first:
                draft.add_at(
                    parsed,
                    ("journey",),
                    f"journey id {journey_id!r} is already used at {first[journey_id]}",
                )
            else:
                first[journey_id] = where
