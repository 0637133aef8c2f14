"""The dependency audit of `make test` (issue #13, point 12): scripts/audit_dependencies.py
fails on a locked release with a known vulnerability and on locks that pyproject.toml has
left behind."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile

import pytest

from webapp.config import ROOT

pytestmark = pytest.mark.run_once  # the same on both databases: run once

_spec = importlib.util.spec_from_file_location(
    "audit_dependencies", ROOT / "scripts/audit_dependencies.py"
)
audit = importlib.util.module_from_spec(_spec)
sys.modules.setdefault(_spec.name, audit)  # its dataclasses look their module up
_spec.loader.exec_module(audit)

ADVISORY = {
    "id": "PYSEC-2099-1",
    "modified": "2099-01-02T03:04:05Z",
    "aliases": ["CVE-2099-1"],
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "Some_Package"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.5"}]}],
            "versions": ["1.0", "1.4"],
        }
    ],
}


def _project(tmp_path, dependencies, pins, dev_pins=None):
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\nversion = '1'\n"
        f"dependencies = {json.dumps(dependencies)}\n"
        "[project.optional-dependencies]\ndev = ['pytest>=8']\n"
    )
    lines = [f"{name}=={version} \\\n    --hash=sha256:{'0' * 64}" for name, version in pins]
    (tmp_path / "requirements.lock").write_text("# make lock\n" + "\n".join(lines) + "\n")
    dev = lines + [
        f"{name}=={version} ; python_version >= '3.11'" for name, version in (dev_pins or [])
    ]
    (tmp_path / "requirements-dev.lock").write_text("\n".join(dev) + "\n")
    return tmp_path


def _run(root, capsys, *args):
    status = audit.main(["--root", str(root), *args])
    out, err = capsys.readouterr()
    return status, out, err


PILLOW_CVE = {
    "id": "PYSEC-2022-168",
    "modified": "2022-03-28T00:00:00Z",
    "aliases": ["CVE-2022-24303"],
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "pillow"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.0.1"}]}],
        }
    ],
}


@pytest.fixture
def advisories(tmp_path, capsys):
    """An advisories file made by `refresh` from a directory of OSV records: Pillow's
    CVE-2022-24303 and a made-up one."""
    records = tmp_path / "osv"
    records.mkdir()
    for record in (PILLOW_CVE, ADVISORY):
        (records / f"{record['id']}.json").write_text(json.dumps(record))
    target = tmp_path / "advisories.json"
    assert _run(tmp_path, capsys, "--advisories", str(target), "refresh", str(records))[0] == 0
    return target


def test_the_project_passes_its_own_audit(advisories, capsys):
    status, out, err = _run(ROOT, capsys, "--advisories", str(advisories))
    assert status == 0, err
    assert "no known vulnerability" in out and "match pyproject.toml" in out


def test_a_locked_release_with_a_known_vulnerability_fails(tmp_path, advisories, capsys):
    """Pillow 9.0.0 had CVE-2022-24303, fixed in 9.0.1."""
    root = _project(tmp_path, ["pillow>=9"], [("pillow", "9.0.0")], [("pytest", "8.0.0")])
    status, out, err = _run(root, capsys, "--advisories", str(advisories))
    assert status == 1 and out == ""
    assert "known vulnerability: pillow 9.0.0: PYSEC-2022-168 (CVE-2022-24303" in err
    assert "fixed in 9.0.1" in err


def test_without_advisory_data_the_audit_says_so_and_strict_fails(tmp_path, capsys):
    """Where the advisories cannot be downloaded, the locks are still checked, the output says
    that vulnerabilities were not, and --strict fails."""
    root = _project(tmp_path, ["pillow>=9"], [("pillow", "9.0.0")], [("pytest", "8.0.0")])
    missing = ["--advisories", str(tmp_path / "none.json"), "--source", str(tmp_path / "no.zip")]
    status, out, err = _run(root, capsys, *missing)
    assert status == 0
    assert "known vulnerabilities NOT checked" in err and "not checked" in out
    status, _out, err = _run(root, capsys, *missing, "--strict")
    assert status == 1 and "known vulnerabilities NOT checked" in err


def test_locks_left_behind_by_pyproject_fail(tmp_path, capsys):
    root = _project(
        tmp_path,
        ["pillow>=13", "newthing>=1"],
        [("pillow", "12.0.0")],
        [("pytest", "7.4.0")],
    )
    (root / "advisories.json").write_text('{"records": []}')
    status, _out, err = _run(root, capsys, "--advisories", str(root / "advisories.json"))
    assert status == 1
    assert "requirements.lock lacks newthing>=1 (pyproject.toml): run `make lock`" in err
    assert "requirements.lock pins pillow 12.0.0, pyproject.toml asks for pillow>=13" in err
    assert "requirements-dev.lock pins pytest 7.4.0, pyproject.toml asks for pytest>=8" in err


def test_the_two_locks_must_agree(tmp_path, capsys):
    root = _project(tmp_path, ["pillow>=9"], [("pillow", "13.0.0")], [("pytest", "8.0.0")])
    dev = root / "requirements-dev.lock"
    dev.write_text(dev.read_text().replace("pillow==13.0.0", "pillow==12.0.0"))
    (root / "advisories.json").write_text('{"records": []}')
    status, _out, err = _run(root, capsys, "--advisories", str(root / "advisories.json"))
    assert status == 1
    assert "requirements.lock pins pillow 13.0.0, requirements-dev.lock 12.0.0" in err


def test_advisories_refreshed_from_an_osv_export(tmp_path, capsys):
    """`make advisories` reads OSV's zip of JSON records; malicious-package and withdrawn
    records are left out; the result flags an affected pin and not a fixed one."""
    export = tmp_path / "all.zip"
    with zipfile.ZipFile(export, "w") as z:
        z.writestr("PYSEC-2099-1.json", json.dumps(ADVISORY))
        z.writestr("MAL-2099-1.json", json.dumps({**ADVISORY, "id": "MAL-2099-1"}))
        z.writestr("GHSA-x.json", json.dumps({**ADVISORY, "id": "GHSA-x", "withdrawn": "2099"}))
    target = tmp_path / "advisories.json"
    status, out, _err = _run(tmp_path, capsys, "--advisories", str(target), "refresh", str(export))
    assert status == 0 and "1 advisories up to 2099-01-02" in out
    about, advisories = audit.load_advisories(target)
    assert about["up_to"] == "2099-01-02" and [a.id for a in advisories] == ["PYSEC-2099-1"]

    root = _project(tmp_path, ["some-package>=1"], [("some.package", "1.4")])
    status, _out, err = _run(root, capsys, "--advisories", str(target))
    assert status == 1 and "some-package 1.4: PYSEC-2099-1 (CVE-2099-1), fixed in 1.5" in err
    root = _project(tmp_path, ["some-package>=1"], [("some-package", "1.5")], [("pytest", "8")])
    assert _run(root, capsys, "--advisories", str(target))[0] == 0


@pytest.mark.parametrize(
    ("events", "affected", "unaffected"),
    [
        ([("introduced", "0"), ("fixed", "2.0")], ["0.0.0b1", "1.9.9"], ["2.0", "3.0"]),
        ([("introduced", "1.0"), ("last_affected", "1.2")], ["1.0", "1.2"], ["0.9", "1.2.1"]),
        ([("introduced", "2.0")], ["2.0", "99"], ["1.9"]),  # not fixed yet
        (
            # two intervals, listed out of order (as some PYSEC records are)
            [("introduced", "3.0"), ("fixed", "3.1"), ("introduced", "0"), ("fixed", "2.5")],
            ["2.4", "3.0.5"],
            ["2.5", "2.9", "3.1"],
        ),
        (
            # overlapping intervals: OSV's version-order reading alone would miss 2.11.6
            [("introduced", "2.11"), ("fixed", "2.11.7"), ("introduced", "0"), ("fixed", "2.11.6")],
            ["2.11.6", "2.10"],
            ["2.11.7"],
        ),
    ],
)
def test_osv_ranges(events, affected, unaffected):
    advisory = audit.Advisory("X", (), "p", (tuple(events),), ())
    assert [v for v in affected if not advisory.affects(v)] == []
    assert [v for v in unaffected if advisory.affects(v)] == []
