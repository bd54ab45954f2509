"""The built wheel works from an empty folder: `init`, `validate`, `demo` (issue 14).

Issue 14: after a normal (non-editable) install, `healthscore demo` ended in a
traceback because the playbooks were not in the package. This test builds the
wheel from the checkout (`pip wheel --no-deps`, build isolation fetching
setuptools from the configured index), installs it into a new virtual
environment and runs the installed `healthscore` script from an empty temporary
folder with PYTHONPATH removed, so nothing of the checkout can be imported.

Why the environment borrows its dependencies: a plain fresh venv plus a full
`pip install` of the wheel took 233 s on the CI machine (2 shared cores), more
than the ~3 minutes this test may cost. So the new venv gets only the wheel
(`--no-deps`), and a `.pth` line puts the test interpreter's site-packages
*after* its own: prefect, typer, etc. come from there, while `healthscore`,
`flows` and `tasks` resolve to the wheel's copy (checked below). `.pth` files of
the borrowed folder are not processed, so the checkout's editable install stays
invisible. The dependency list itself is checked by `.ci/run`'s real install.

Marked `install`: the normal suite (and CI) runs it; `pytest -m "not install"`
skips it while iterating locally.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.install


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(the venv's bin folder, an environment without the checkout) with the wheel installed."""
    root = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    dist = root / "dist"
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)], root, env)
    (wheel,) = dist.glob("healthscore-*.whl")

    fresh = root / "venv"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / "bin" / "python"
    _run([*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)], root, env)
    own = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, env
    ).strip()
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(own) / "zz_borrowed_dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")

    imports = "import healthscore, flows, tasks; print(healthscore.__file__, flows.__file__)"
    where = _run([str(python), "-c", imports], root, env)
    assert all(p.startswith(str(fresh)) for p in where.split()), where
    return fresh / "bin", env


def test_wheel_init_validate_demo_from_an_empty_folder(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bin_dir, env = installed
    healthscore = str(bin_dir / "healthscore")
    work = tmp_path / "empty"
    work.mkdir()

    written = _run([healthscore, "init"], work, env)
    assert sorted(p.name for p in work.iterdir()) == [
        "playbook.schema.json",
        "playbook.yaml",
        "prefect.yaml",
    ]
    assert "wrote playbook.yaml" in written
    first = (work / "playbook.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=playbook.schema.json"

    validated = _run([healthscore, "validate", "playbook.yaml", "default"], work, env)
    assert "playbook.yaml: valid — 'Customer health', 5 groups, 11 rules" in validated
    assert "default.yaml: valid — 'Customer health', 5 groups, 14 rules, 3 actions" in validated
    assert str(bin_dir.parent) in validated  # `default` is the installed copy

    demo = _run([healthscore, "demo", "--accounts", "60", "--weeks", "2"], work, env, timeout=900)
    assert "healthscore demo — 60 companies" in demo
    assert "(2 runs," in demo
    output = work / "demo-output"
    assert (output / "dashboard.html").stat().st_size > 10_000
    assert (output / "history.db").is_file()
    assert (output / "crm.json").is_file()
