"""Runs the FinOps Foundation's focus-validator (a Python >= 3.12 program) on a file, from a cached virtualenv."""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

FOCUS_VALIDATOR_VERSION = "2.2.1"
# focus-validator 2.2.1 pins numpy < 2 but leaves pyarrow open, and pyarrow 22+ needs numpy 2:
# pinning both keeps the environment the one this test was written against.
REQUIREMENTS = (f"focus-validator=={FOCUS_VALIDATOR_VERSION}", "pyarrow==21.0.0", "numpy==1.26.4")

CACHE_ROOT = Path(
    os.environ.get("COSTPORTAL_FOCUS_VALIDATOR_CACHE", "~/.cache/costportal-focus-validator")
).expanduser()
PYTHON_CANDIDATES = (
    os.environ.get("FOCUS_VALIDATOR_PYTHON", ""),
    "/root/.pyenv/versions/3.12.1/bin/python3",
    "python3.14",
    "python3.13",
    "python3.12",
    "python3",
)

_RESULT = re.compile(
    r"^\S+\s+(?P<rule>[A-Za-z]+-[A-Z]-\d{3}-[A-Z]): (?P<status>PASS|FAIL|SKIPPED)\s+\((?P<detail>.*)\)$"
)
_TOTALS = re.compile(r"Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)")


class NoPython312(Exception):
    """No Python >= 3.12 on this machine, which focus-validator 2.x requires."""


def find_python312() -> str:
    for candidate in PYTHON_CANDIDATES:
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate) if candidate else None
        if not path or not os.path.exists(path):
            continue
        try:
            probe = subprocess.run(
                [path, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return path
    raise NoPython312(
        "focus-validator 2.x needs Python >= 3.12 and none was found "
        f"(looked for {', '.join(c for c in PYTHON_CANDIDATES if c)}; set FOCUS_VALIDATOR_PYTHON to point at one)."
    )


def validator_environment() -> Path:
    """The virtualenv holding the pinned focus-validator: built once per machine, shared by test sessions."""
    python = find_python312()
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    home = CACHE_ROOT / f"focus-validator-{FOCUS_VALIDATOR_VERSION}-py{version}"
    ready = home / ".ready"
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / ".lock", "w") as lock:
        # Two test sessions starting at once build the environment once, not twice into the same folder.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists() and ready.read_text() == "\n".join(REQUIREMENTS):
            return home
        shutil.rmtree(home, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(home)], check=True, capture_output=True)
        install = subprocess.run(
            [str(home / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", *REQUIREMENTS],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            shutil.rmtree(home, ignore_errors=True)
            raise RuntimeError(f"Could not install {' '.join(REQUIREMENTS)}:\n{install.stdout}\n{install.stderr}")
        ready.write_text("\n".join(REQUIREMENTS))
    return home


@dataclass
class ValidationReport:
    command: list[str]
    output: str
    totals: tuple[int, int, int, int]  # total, passed, failed, skipped
    statuses: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    real_failures: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        total, passed, failed, skipped = self.totals
        return f"focus-validator {FOCUS_VALIDATOR_VERSION}: {total} rules, {passed} passed, {failed} failed, {skipped} skipped"

    def failure_report(self) -> str:
        lines = [self.summary, "Failed rules that no passing alternative covers:"]
        lines += [f"  {rule}: {self.details[rule]}" for rule in self.real_failures]
        return "\n".join(lines) + "\n\n" + self.output[-6000:]


def run_focus_validator(data_file: Path, *, version: str, applicability_criteria: tuple[str, ...], workdir: Path):
    home = validator_environment()
    site = subprocess.run(
        [
            str(home / "bin" / "python"),
            "-c",
            "import focus_validator, os; print(os.path.dirname(focus_validator.__file__))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # focus-validator 2.2.1 reads focus_validator/rules/currency_codes.csv relative to the working
    # directory and writes its log there: run it in a scratch folder that shows it the package.
    workdir.mkdir(parents=True, exist_ok=True)
    link = workdir / "focus_validator"
    if not link.exists():
        link.symlink_to(site, target_is_directory=True)
    command = [
        str(home / "bin" / "focus-validator"),
        "--data-file",
        str(data_file.resolve()),
        "--validate-version",
        version,
        "--focus-dataset",
        "CostAndUsage",
        "--block-download",  # the rules bundled with the pinned release, no network
        "--applicability-criteria",
        ",".join(applicability_criteria),
        "--show-violations",
    ]
    completed = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise RuntimeError(f"focus-validator exited with {completed.returncode}:\n{output[-6000:]}")
    totals = _TOTALS.search(output)
    if totals is None:
        raise RuntimeError(f"focus-validator printed no results:\n{output[-6000:]}")
    report = ValidationReport(command=command, output=output, totals=tuple(int(n) for n in totals.groups()))
    for line in completed.stdout.splitlines():
        match = _RESULT.match(line.strip())
        if match:
            report.statuses[match["rule"]] = match["status"]
            report.details[match["rule"]] = match["detail"]
    alternatives = _alternatives_of_passed_choices(Path(site) / "rules", version, report.statuses)
    report.real_failures = sorted(
        rule for rule, status in report.statuses.items() if status == "FAIL" and rule not in alternatives
    )
    return report


def _alternatives_of_passed_choices(rules_dir: Path, version: str, statuses: dict[str, str]) -> set[str]:
    """Rules that failed only as a losing branch of an OR rule that passed, with the rules below them.

    The validator lists such a branch as a failure (InvoiceId "MUST be null" fails when the invoice
    id is set, while its OR with "MUST NOT be null" passes); it does not make the dataset invalid.
    """
    [model_file] = [p for p in rules_dir.glob(f"model-{version}*.json")]
    rules = json.loads(model_file.read_text())["ModelRules"]

    def children(rule_id: str) -> list[str]:
        requirement = rules.get(rule_id, {}).get("ValidationCriteria", {}).get("Requirement", {})
        found, stack = [], [requirement]
        while stack:
            node = stack.pop()
            if node.get("CheckFunction") == "CheckModelRule":
                found.append(node["ModelRuleId"])
            stack.extend(node.get("Items", []))
        return found

    covered: set[str] = set()
    for rule_id, rule in rules.items():
        requirement = rule.get("ValidationCriteria", {}).get("Requirement", {})
        if requirement.get("CheckFunction") == "OR" and statuses.get(rule_id) == "PASS":
            stack = children(rule_id)
            while stack:
                child = stack.pop()
                if child not in covered:
                    covered.add(child)
                    stack.extend(children(child))
    return covered


if __name__ == "__main__":  # python -m tests.exports.focus_validator FILE: the same check by hand
    from apps.exports.focus import FOCUS_APPLICABILITY_CRITERIA, FOCUS_VERSION

    result = run_focus_validator(
        Path(sys.argv[1]),
        version=FOCUS_VERSION,
        applicability_criteria=FOCUS_APPLICABILITY_CRITERIA,
        workdir=CACHE_ROOT / "run",
    )
    print(result.failure_report() if result.real_failures else result.summary)
