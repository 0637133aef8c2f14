#!/usr/bin/env python3
"""The dependency audit of `make test`: the lock files against pyproject.toml, and every
locked release against the known vulnerabilities of PyPI packages.

    python scripts/audit_dependencies.py                  # make test (before the suite)
    python scripts/audit_dependencies.py refresh SOURCE   # make advisories

1. requirements.lock and requirements-dev.lock (written by `make lock`) must hold every
   requirement of pyproject.toml at a version it allows, and the two must agree on the
   releases they share: a dependency added or raised without `make lock` fails here.
2. No locked release (both files, whatever its environment marker) may be affected by an
   advisory of audit/pypi-advisories.json, unless its id is in IGNORED with the reason.

The advisories are OSV records compacted to what the check reads, in
audit/pypi-advisories.json: downloaded, never committed (the file is in .gitignore). When it is
missing, the audit downloads it from OSV's export of PyPI's advisories (ADVISORIES_URL, the
zip `make advisories` reads too). Where that export cannot be reached (the project's own
machines reach only the package index; neither service pip-audit asks, PyPI's per-release
JSON API nor the OSV API, answers there), the lock checks still run and fail as usual, and
the audit says loudly that known vulnerabilities were NOT checked; `--strict` makes that a
failure (for a CI that can reach OSV). `refresh` rebuilds the file from OSV's zip (a URL or a
downloaded copy) or from a directory of OSV records, JSON or YAML (a checkout of PyPA's
advisory database). Records of malicious packages (MAL-, removed from PyPI) and withdrawn ones
are left out. The data is CC-BY-4.0, from PyPA's advisory database and GitHub's through OSV.

Exit status: 0 when all is well (one line on stdout; a warning on stderr when the advisories
could not be had), 1 with the problems on stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
ADVISORIES = Path("audit/pypi-advisories.json")
ADVISORIES_URL = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
RUNTIME_LOCK, DEV_LOCK = "requirements.lock", "requirements-dev.lock"

IGNORED: dict[str, str] = {}
"""Advisory id → why it does not apply here (reviewed; say who and when)."""

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;\\]+)"
    r"(?:\s*;\s*(?P<marker>[^\\]+?))?\s*\\?\s*$"
)


def canonical(name: str) -> str:
    """PEP 503's normal form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


# --- The lock files ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str
    marker: str | None


def read_lock(path: Path) -> list[Pin]:
    """The `name==version` lines of a requirements file (hashes and comments skipped)."""
    pins = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if found := _PIN.match(line):
            marker = found["marker"].strip() if found["marker"] else None
            pins.append(Pin(canonical(found["name"]), found["version"], marker))
    return pins


def check_locks(root: Path) -> list[str]:
    """What is wrong between pyproject.toml and the two lock files."""
    problems = []
    paths = {name: root / name for name in (RUNTIME_LOCK, DEV_LOCK)}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing:
        return [f"{', '.join(missing)} missing: run `make lock`"]
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = [Requirement(r) for r in project.get("dependencies", [])]
    optional = project.get("optional-dependencies", {}).values()
    extras = [Requirement(r) for deps in optional for r in deps]
    locks = {name: read_lock(path) for name, path in paths.items()}
    wanted = {RUNTIME_LOCK: runtime, DEV_LOCK: runtime + extras}
    environment = default_environment()
    for lock, requirements in wanted.items():
        versions: dict[str, set[str]] = {}
        for pin in locks[lock]:
            versions.setdefault(pin.name, set()).add(pin.version)
        for requirement in requirements:
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            name = canonical(requirement.name)
            if name not in versions:
                problems.append(f"{lock} lacks {requirement} (pyproject.toml): run `make lock`")
            elif not any(
                requirement.specifier.contains(v, prereleases=True) for v in versions[name]
            ):
                found = ", ".join(sorted(versions[name]))
                problems.append(
                    f"{lock} pins {name} {found}, pyproject.toml asks for {requirement}: "
                    "run `make lock`"
                )
    dev = {(pin.name, pin.marker): pin.version for pin in locks[DEV_LOCK]}
    for pin in locks[RUNTIME_LOCK]:
        if dev.get((pin.name, pin.marker), pin.version) != pin.version:
            problems.append(
                f"{RUNTIME_LOCK} pins {pin.name} {pin.version}, {DEV_LOCK} "
                f"{dev[(pin.name, pin.marker)]}: run `make lock`"
            )
    return problems


# --- Advisories ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    package: str  # canonical
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # each range: its (event, version) pairs
    versions: tuple[str, ...]  # listed affected versions, kept only when there is no range

    def affects(self, version: str) -> bool:
        if version in self.versions:
            return True
        candidate = _version(version)
        if candidate is None:
            return False
        return any(_in_range(candidate, events) for events in self.ranges)

    def fixed_in(self) -> list[str]:
        return sorted(
            {v for events in self.ranges for kind, v in events if kind == "fixed"},
            key=lambda v: _version(v) or Version("0"),
        )


_TIE = {
    "fixed": 0,
    "last_affected": 0,
    "introduced": 1,
}  # at one version: fixed, then re-introduced


def _in_range(version: Version, events: list[tuple[str, str]]) -> bool:
    """Whether `version` is in an OSV ECOSYSTEM range. Two readings, either one enough (some
    records list overlapping intervals that the first misses): OSV's own, the events in version
    order, each `introduced` at or below `version` making it affected and each `fixed` at or
    below it (`last_affected` below it) unaffected again; and the events as listed, each
    `introduced` opening an interval that the next `fixed` or `last_affected` closes.
    `introduced: "0"` is every version, pre-releases of 0.0.0 included."""

    def reached(kind: str, text: str, at: Version) -> bool:
        if kind == "introduced":
            return text == "0" or version >= at
        return version >= at if kind == "fixed" else version > at

    known = [(kind, text, at) for kind, text in events if (at := _version(text)) is not None]
    affected = False
    for kind, text, at in sorted(known, key=lambda e: (e[2], _TIE.get(e[0], 0))):
        if reached(kind, text, at):
            affected = kind == "introduced"
    if affected:
        return True
    opened = False
    for kind, text, at in known:
        if kind == "introduced":
            opened = reached(kind, text, at)
        elif kind in ("fixed", "last_affected"):
            if opened and not reached(kind, text, at):
                return True
            opened = False
    return opened


def load_advisories(path: Path) -> tuple[dict, list[Advisory]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    advisories = [
        Advisory(
            id=r["id"],
            aliases=tuple(r.get("aliases", ())),
            package=r["package"],
            ranges=tuple(tuple((k, v) for k, v in events) for events in r.get("ranges", ())),
            versions=tuple(r.get("versions", ())),
        )
        for r in data["records"]
    ]
    return {k: v for k, v in data.items() if k != "records"}, advisories


def vulnerable(pins: Iterable[Pin], advisories: Iterable[Advisory]) -> list[str]:
    by_package: dict[str, list[Advisory]] = {}
    for advisory in advisories:
        by_package.setdefault(advisory.package, []).append(advisory)
    found = []
    for name, version in sorted({(pin.name, pin.version) for pin in pins}):
        for advisory in by_package.get(name, ()):
            if advisory.id in IGNORED or not advisory.affects(version):
                continue
            aliases = f" ({', '.join(advisory.aliases)})" if advisory.aliases else ""
            fixed = advisory.fixed_in()
            remedy = f"fixed in {', '.join(fixed)}" if fixed else "no fixed release"
            found.append(f"{name} {version}: {advisory.id}{aliases}, {remedy}")
    return found


# --- refresh: OSV records → the compact file -------------------------------------------------


def _records(source: str) -> Iterator[dict]:
    if source.startswith("https://"):
        with urllib.request.urlopen(source, timeout=120) as response:  # noqa: S310 (https only)
            yield from _zip_records(io.BytesIO(response.read()))
        return
    path = Path(source)
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.suffix == ".json":
                yield json.loads(file.read_text(encoding="utf-8"))
            elif file.suffix in (".yaml", ".yml"):
                import yaml  # PyYAML, in the development tools (only PyPA's checkout needs it)

                yield yaml.safe_load(file.read_text(encoding="utf-8"))
    else:
        with path.open("rb") as f:
            yield from _zip_records(io.BytesIO(f.read()))


def _zip_records(data: io.BytesIO) -> Iterator[dict]:
    with zipfile.ZipFile(data) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith(".json"):
                yield json.loads(archive.read(name))


def compact(records: Iterable[dict]) -> tuple[list[dict], str]:
    """The compact records (one per advisory and package) and the newest `modified` date."""
    out, newest = [], ""
    for record in records:
        if not record or record.get("withdrawn") or str(record.get("id", "")).startswith("MAL-"):
            continue
        newest = max(newest, str(record.get("modified", ""))[:10])
        for affected in record.get("affected", ()):
            package = affected.get("package", {})
            if package.get("ecosystem") != "PyPI" or not package.get("name"):
                continue
            ranges = [
                [[kind, str(v)] for event in r.get("events", ()) for kind, v in event.items()]
                for r in affected.get("ranges", ())
                if r.get("type") == "ECOSYSTEM"
            ]
            entry = {
                "id": record["id"],
                "aliases": sorted(a for a in record.get("aliases", ()) if a != record["id"]),
                "package": canonical(package["name"]),
                "ranges": ranges,
            }
            if not ranges:
                entry["versions"] = [str(v) for v in affected.get("versions", ())]
            out.append(entry)
    out.sort(key=lambda e: (e["package"], e["id"]))
    return out, newest


def write_advisories(path: Path, records: list[dict], newest: str, source: str) -> None:
    header = {
        "about": (
            "Known vulnerabilities of PyPI packages: OSV records compacted for "
            "scripts/audit_dependencies.py (CC-BY-4.0: PyPA's advisory database, GitHub's "
            "through OSV). Refresh with `make advisories`."
        ),
        "source": source,
        "up_to": newest,
        "refreshed": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    lines = [json.dumps(header, ensure_ascii=False)[:-1] + ', "records": [']
    lines += [json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "," for r in records]
    if records:
        lines[-1] = lines[-1][:-1]
    lines.append("]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- The command -------------------------------------------------------------------------------


def fetch_advisories(path: Path, source: str) -> str | None:
    """Download and compact the advisories into `path`; None when done, else why not."""
    try:
        records, newest = compact(_records(source))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        return f"{type(exc).__name__}: {exc}"
    if not records:
        return f"no PyPI advisory in {source}"
    write_advisories(path, records, newest, source)
    return None


def audit(
    root: Path, advisories_path: Path, source: str | None = ADVISORIES_URL, strict: bool = False
) -> tuple[list[str], str]:
    problems = check_locks(root)
    if not advisories_path.is_file():
        why = fetch_advisories(advisories_path, source) if source else "no source given"
        if why is not None:
            warning = (
                f"WARNING: known vulnerabilities NOT checked: {advisories_path} is missing and "
                f"could not be downloaded ({why}); run `make advisories` where OSV's export "
                "can be reached"
            )
            if strict:
                return [*problems, warning], ""
            print(warning, file=sys.stderr)
            return problems, (
                f"Dependency audit: {RUNTIME_LOCK} and {DEV_LOCK} match pyproject.toml; "
                "known vulnerabilities not checked (no advisory data)"
            )
    about, advisories = load_advisories(advisories_path)
    pins = [
        pin
        for name in (RUNTIME_LOCK, DEV_LOCK)
        if (root / name).is_file()
        for pin in read_lock(root / name)
    ]
    problems += [f"known vulnerability: {line}" for line in vulnerable(pins, advisories)]
    releases = len({(pin.name, pin.version) for pin in pins})
    summary = (
        f"Dependency audit: {RUNTIME_LOCK} and {DEV_LOCK} match pyproject.toml; "
        f"{releases} locked releases, no known vulnerability "
        f"({len(advisories)} advisories up to {about.get('up_to') or '?'}; "
        "`make advisories` refreshes them)"
    )
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the project (pyproject.toml)")
    parser.add_argument("--advisories", type=Path, help=f"default: ROOT/{ADVISORIES}")
    parser.add_argument(
        "--source",
        default=ADVISORIES_URL,
        help="where to download the advisories when the file is missing ('' for nowhere)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail when the advisories cannot be had"
    )
    commands = parser.add_subparsers(dest="command")
    refresh = commands.add_parser("refresh", help="rebuild the advisories file")
    refresh.add_argument("source", help="https URL or path of OSV's zip, or a directory")
    refresh.add_argument("--label", help="what the source is (default: SOURCE)")
    args = parser.parse_args(argv)
    advisories_path = args.advisories or args.root / ADVISORIES

    if args.command == "refresh":
        records, newest = compact(_records(args.source))
        if not records:
            print(f"no PyPI advisory in {args.source}", file=sys.stderr)
            return 1
        write_advisories(advisories_path, records, newest, args.label or args.source)
        print(f"{advisories_path}: {len(records)} advisories up to {newest}")
        return 0

    problems, summary = audit(args.root, advisories_path, args.source or None, args.strict)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
