"""Reliability (issue 15): nothing overwritten, no traceback, inputs confined.

Each test breaks something for real: outputs that resolve to inputs (through symlinks too), a
read-only directory (as an unprivileged user when the tests run as root), a file size limit
(``RLIMIT_FSIZE``) for a full disk, tampered policy folders, recorded inputs read from another
working directory.  Secrets and the sampler's failures: test_reliability_sampler.py.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import make_questions, run_cli, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


# named apart from the fixture (`pipe`) so test_reliability_sampler.py imports it without a clash
@pytest.fixture(scope="module", name="pipe")
def pipe_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Problems, simulated samples, curves, an allocation and an imitate policy."""
    from helpers import sim_pipeline

    from ttcalloc.stages.train import TrainOptions, train_policy

    p = sim_pipeline(tmp_path_factory.mktemp("pipe"), 40)
    p["samples"] = p["tmp"] / "samples"
    p["policy"] = p["tmp"] / "policy"
    train_policy(
        p["alloc"], p["problems"], p["policy"], TrainOptions(budget=1.5, folds=2, n_estimators=5)
    )
    return p


def _run(
    args: list[object], prefix: list[str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """``python -m ttcalloc ARGS`` in a subprocess, after ``prefix`` (e.g. ``unshare ...``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "ttcalloc", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        **kwargs,  # type: ignore[call-overload]
    )


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


# --- 1. an output that resolves to an input is refused, in every stage ---------------------------


def test_output_equal_to_an_input_is_refused_everywhere(
    pipe: dict[str, Path], tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "g.jsonl", make_questions(6))
    problems, curves, alloc = pipe["problems"], pipe["curves"], pipe["alloc"]
    imported = tmp_path / "imported.parquet"
    assert (
        run_cli("import", pipe["samples"], "--problems", problems, "--out", imported).exit_code == 0
    )
    link = tmp_path / "link.parquet"
    link.symlink_to(curves)
    cases = [
        ["data", "gsm8k", "--source", src, "--out", src],
        ["import", pipe["samples"], "--problems", problems, "--out", problems],
        ["import", imported, "--problems", problems, "--out", imported],
        ["sample", problems, "--model", "sim/weak", "--n", "1", "--out", problems.parent],
        ["estimate", imported, "--out", imported],
        ["estimate", pipe["samples"], "--out", pipe["samples"] / "curves.parquet"],
        ["estimate", imported, "--problems", problems, "--out", problems],
        ["solve", curves, "--budget", "2", "--out", curves],
        ["solve", link, "--budget", "2", "--out", curves],  # through a symlink
        ["solve", curves, "--budget", "2", "--out", link],
        [
            "train",
            alloc,
            "--problems",
            problems,
            "--learner",
            "imitate",
            "--budget",
            "1.5",
            "--out",
            problems.parent,
        ],
        ["evaluate", pipe["policy"], "--out", pipe["policy"]],
        ["allocate", pipe["policy"], problems, "--out", problems],
    ]
    before = {p: p.read_bytes() for p in (src, problems, curves, alloc, imported)}
    for args in cases:
        result = run_cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert "choose another path" in result.stderr, (args, result.stderr)
    for path, content in before.items():
        assert path.read_bytes() == content, f"{path} was changed"


def test_output_of_the_wrong_kind_is_one_line(pipe: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    afile = tmp_path / "a-file"
    afile.write_text("x")
    for args, message in [
        (["solve", pipe["curves"], "--budget", "2", "--out", folder], "a folder is there"),
        (["estimate", pipe["samples"], "--out", afile / "c.parquet"], "is a file, not a folder"),
        (["evaluate", pipe["policy"], "--out", afile], "a file is there"),
        (["sample", pipe["problems"], "--model", "sim/weak", "--out", afile], "a file is there"),
    ]:
        result = run_cli(*args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
    assert list(folder.iterdir()) == [] and afile.read_text() == "x"


# --- 7. OS errors are one line naming the path; temporary files are removed -----------------------


ReadOnly = tuple[Path, list[str]]


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[ReadOnly]:
    """A directory the CLI subprocess cannot write to, and the command prefix that runs it so.

    Mode 0555 stops an ordinary user; root writes anywhere, so as root the subprocess runs in
    its own mount namespace where the directory is a read-only bind mount (EROFS).
    """
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare: no way to make a read-only directory")
        script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
        prefix = ["unshare", "-m", "sh", "-c", script, str(ro)]
        probe = subprocess.run([*prefix, "touch", str(ro / "x")], capture_output=True)
        if probe.returncode == 0 or probe.returncode == 127:
            pytest.skip("cannot bind-mount a read-only directory here")
    try:
        yield ro, prefix
    finally:
        ro.chmod(0o755)


def _train(pipe: dict[str, Path], out: Path) -> list[object]:
    """A small, quick imitate training on the pipeline's allocation."""
    return ["train", "--learner", "imitate", pipe["alloc"], "--problems", pipe["problems"],
            "--budget", "1.5", "--folds", "2", "--n-estimators", "5", "--out", out]  # fmt: skip


def test_read_only_output_folder_is_one_line(
    pipe: dict[str, Path], readonly_dir: tuple[Path, dict[str, object]]
) -> None:
    ro, prefix = readonly_dir
    for args in (
        ["estimate", pipe["samples"], "--out", ro / "c.parquet"],
        ["solve", pipe["curves"], "--budget", "2", "--out", ro / "sub" / "a.parquet"],
        _train(pipe, ro / "policy"),
        ["evaluate", pipe["policy"], "--bootstrap", "100", "--orders", "4", "--out", ro / "rep"],
        ["sample", pipe["problems"], "--model", "sim/weak", "--n", "1", "--out", ro / "s"],
    ):
        result = _run(args, prefix)
        line = _one_error_line(result.stderr)
        assert result.returncode == 1, (args, result.stderr)
        assert str(ro) in line, line
        assert "permission denied" in line or "read-only file system" in line, line
    assert list(ro.iterdir()) == []


def test_unreadable_source_is_one_line(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "g.jsonl", make_questions(3))
    result = _run(["data", "gsm8k", "--source", tmp_path, "--out", tmp_path / "p.parquet"])
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    source.chmod(0o000)
    if os.access(source, os.R_OK):  # root reads anything: make it unreadable another way
        source.chmod(0o644)
        source.unlink()
        source.mkdir()  # a folder where a file is expected: EISDIR when opened
    result = _run(["data", "gsm8k", "--source", source, "--out", tmp_path / "p.parquet"])
    line = _one_error_line(result.stderr)
    assert result.returncode == 1 and str(source) in line, line


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("stage", ["estimate", "train", "evaluate"])
def test_disk_full_is_one_line_and_leaves_no_temporary_file(
    pipe: dict[str, Path], tmp_path: Path, stage: str
) -> None:
    out = tmp_path / "out"
    args: list[object] = {
        "estimate": ["estimate", pipe["samples"], "--out", out / "curves.parquet"],
        "train": _train(pipe, out),
        "evaluate": [
            "evaluate",
            pipe["policy"],
            "--bootstrap",
            "100",
            "--orders",
            "4",
            "--out",
            out,
        ],
    }[stage]
    out.mkdir()
    result = _run(args, preexec_fn=lambda: _limit_file_size(600))
    line = _one_error_line(result.stderr)
    assert result.returncode == 1, result.stderr
    assert str(out) in line and ("file too large" in line or "disk full" in line), line
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".")]
    assert leftovers == [], leftovers


def test_info_on_a_damaged_part_is_one_line(pipe: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "s"
    shutil.copytree(pipe["samples"], folder)
    parts = sorted(folder.glob("*.parquet"))
    if len(parts) < 2:
        shutil.copy(parts[0], folder / "part-zzz.parquet")
        parts = sorted(folder.glob("*.parquet"))
    parts[-1].write_bytes(b"PAR1 this is not parquet PAR1")
    result = run_cli("info", folder)
    assert result.exit_code == 1 and parts[-1].name in _one_error_line(result.stderr)


# --- 8. a policy folder is validated field by field and its model files confined to it ------------


def _tampered(pipe: dict[str, Path], tmp: Path, name: str, edit: object) -> Path:
    import json
    import shutil

    folder = tmp / name
    shutil.copytree(pipe["policy"], folder)
    data = json.loads((folder / "policy.json").read_text())
    edit(data, folder)  # type: ignore[operator]
    (folder / "policy.json").write_text(json.dumps(data))
    return folder


def test_tampered_policy_folders_are_refused_in_one_line(
    pipe: dict[str, Path], tmp_path: Path
) -> None:
    def files(names: list[str]) -> object:
        def set_files(d: dict, folder: Path) -> None:
            d["model_files"] = names
            d["model_folds"] = [[n] for n in names]

        return set_files

    def link_out(d: dict, folder: Path) -> None:
        (folder / "evil.ubj").symlink_to("/etc/passwd")
        files(["evil.ubj"])(d, folder)  # type: ignore[operator]

    def damage(d: dict, folder: Path) -> None:
        (folder / d["model_folds"][0][0]).write_bytes(b"{not a model")

    cases = {
        "dotdot": (files(["../../../etc/passwd"]), "not a plain file name"),
        "absolute": (files(["/etc/passwd"]), "not a plain file name"),
        "symlink": (link_out, "leads outside the policy folder"),
        "nan-mu": (lambda d, f: d.update(mu=float("nan")), "mu: nan is not a finite number"),
        "string-mu": (lambda d, f: d.update(mu="0.1"), "mu: expected a number"),
        "no-learner": (lambda d, f: d.pop("learner"), "'learner' is missing"),
        "empty-actions": (lambda d, f: d.update(actions=[]), "actions: expected a non-empty"),
        "bad-action": (lambda d, f: d.update(actions=["maj@1"]), "actions[0]: expected"),
        "learner": (lambda d, f: d.update(learner="plugin"), "does the learner match the model"),
        "fewer-features": (
            lambda d, f: d.update(features=d["features"][:-1]),
            "does not match policy.json",
        ),
        "unknown-feature": (lambda d, f: d["features"].append("nope"), "feature 'nope'"),
        "damaged-model": (damage, "cannot load the model"),
        "budget": (lambda d, f: d.update(budget=-1), "budget: -1 must be positive"),
    }
    for name, (edit, message) in cases.items():
        folder = _tampered(pipe, tmp_path, name, edit)
        for args in (
            ["allocate", folder, pipe["problems"], "--out", tmp_path / "plan.parquet"],
            ["info", folder],
        ):
            result = run_cli(*args)
            if args[0] == "info" and name in ("fewer-features", "unknown-feature", "damaged-model"):
                continue  # info reads policy.json only, not the models
            line = _one_error_line(result.stderr)
            assert result.exit_code != 0 and message in line, (name, args[0], line)
            assert "Stack trace" not in line and "[bt]" not in line and len(line) < 400
        assert not (tmp_path / "plan.parquet").exists()


# --- 9. recorded inputs are found relative to the artifact, fingerprints and units checked -------


def test_recorded_inputs_resolve_against_the_artifact_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_jsonl(a / "q.jsonl", make_questions(40))
    monkeypatch.chdir(a)  # the pipeline runs in a/ with relative paths
    for args in (
        ["data", "gsm8k", "--source", "q.jsonl", "--test-frac", "0.3", "--out", "problems.parquet"],
        ["sample", "problems.parquet", "--model", "sim/medium", "--n", "8", "--out", "samples"],
        ["estimate", "samples", "--ks", "1,2,4", "--cost", "samples", "--out", "curves.parquet"],
        [
            "solve",
            "curves.parquet",
            "--problems",
            "problems.parquet",
            "--budget",
            "2",
            "--out",
            "alloc.parquet",
        ],
        [
            "train",
            "--learner",
            "imitate",
            "alloc.parquet",
            "--problems",
            "problems.parquet",
            "--folds",
            "2",
            "--n-estimators",
            "5",
            "--out",
            "policy",
        ],
        ["estimate", "samples", "--ks", "1,2,4", "--cost", "tokens", "--out", "tokens.parquet"],
    ):
        assert run_cli(*args).exit_code == 0, args
    curves_print = json.loads((a / "policy" / "policy.json").read_text())["provenance"]["inputs"][
        "curves"
    ]["fingerprint"]
    # b/ has unrelated files under the same relative names
    monkeypatch.chdir(b)
    write_jsonl(b / "q.jsonl", make_questions(30, seed=5))
    assert (
        run_cli("data", "gsm8k", "--source", "q.jsonl", "--out", "problems.parquet").exit_code == 0
    )
    assert (
        run_cli(
            "sample", "problems.parquet", "--model", "sim/weak", "--n", "4", "--out", "samples"
        ).exit_code
        == 0
    )
    assert run_cli("estimate", "samples", "--ks", "1,2", "--out", "curves.parquet").exit_code == 0
    ok = run_cli(
        "evaluate", "../a/policy", "--bootstrap", "100", "--orders", "4", "--out", "rep", "--json"
    )
    assert ok.exit_code == 0, ok.stderr
    used = json.loads(ok.stdout)["provenance"]["inputs"]["curves"]
    assert (
        used["fingerprint"] == curves_print and Path(used["path"]).resolve() == a / "curves.parquet"
    )
    # the recorded curves changed since the policy was trained: refused, with the way out
    monkeypatch.chdir(a)
    assert (
        run_cli(
            "estimate", "samples", "--ks", "1,2", "--cost", "samples", "--out", "curves.parquet"
        ).exit_code
        == 0
    )
    changed = run_cli("evaluate", "policy", "--bootstrap", "100", "--out", "rep2")
    line = _one_error_line(changed.stderr)
    assert changed.exit_code != 0 and "has changed since it was recorded" in line, line
    assert "--curves" in line
    # curves in another cost unit than the policy's: refused
    other = run_cli(
        "evaluate", "policy", "--curves", "tokens.parquet", "--bootstrap", "100", "--out", "rep3"
    )
    assert other.exit_code != 0 and "costs are in tokens" in _one_error_line(other.stderr)
    other = run_cli(
        "train",
        "--learner",
        "imitate",
        "alloc.parquet",
        "--problems",
        "problems.parquet",
        "--curves",
        "tokens.parquet",
        "--out",
        "p2",
    )
    assert other.exit_code != 0 and "costs are in tokens" in _one_error_line(other.stderr)
