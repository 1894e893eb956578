"""Packaging checks: the README shows the example the e2e suite runs, the
package is typed, it installs with pip from its pyproject.toml, and the wheel
carries both licence files, the licence expression, the project URLs and a
supported-Python floor that is not end-of-life."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

import stateless_otp

from . import support

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*parts: str) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as handle:
        return handle.read()


class Package(unittest.TestCase):
    def test_readme_contains_the_example_verbatim(self) -> None:
        example = read("examples", "login.py")
        self.assertIn(f"```python\n{example}```", read("README.md"), "README.md must show examples/login.py unchanged")

    def test_version_matches_pyproject(self) -> None:
        self.assertIn(f'version = "{stateless_otp.__version__}"', read("pyproject.toml"))

    def test_no_runtime_dependencies(self) -> None:
        self.assertIn("dependencies = []", read("pyproject.toml"))
        stdlib = getattr(sys, "stdlib_module_names", None)
        if stdlib is None:
            self.skipTest("sys.stdlib_module_names needs Python >= 3.10")
        # Only the standard library is imported by the package.
        for name in os.listdir(os.path.join(ROOT, "src", "stateless_otp")):
            if name.endswith(".py"):
                text = read("src", "stateless_otp", name)
                for line in text.splitlines():
                    if line.startswith(("import ", "from ")) and not line.startswith("from ."):
                        module = line.split()[1].split(".")[0]
                        self.assertIn(module, set(stdlib) | {"__future__"}, f"{name}: {line}")

    def skip_unless_pip_can_build(self) -> None:
        # Offline build with the installed setuptools: it needs pip, and
        # either the `wheel` package or setuptools >= 70.1 (own bdist_wheel).
        missing = None
        if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
            missing = "pip is not available"
        elif importlib.util.find_spec("wheel") is None and importlib.util.find_spec("setuptools.command.bdist_wheel") is None:
            missing = "neither `wheel` nor setuptools >= 70.1 is installed (pip install wheel)"
        if missing is not None:
            if support.REQUIRE_ALL:
                self.fail(f"OTP_E2E_REQUIRE_ALL=1 but {missing}")
            self.skipTest(missing)

    def pip_from_a_copy(self, *args: str) -> None:
        """Runs ``pip ARGS… SOURCE`` offline on a copy of the package (so the
        checkout gets no build/ or egg-info) and asserts that it succeeded."""
        self.skip_unless_pip_can_build()
        with tempfile.TemporaryDirectory() as work:
            source = os.path.join(work, "python")
            shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
            result = subprocess.run(
                [sys.executable, "-m", "pip", *args, "--quiet", "--no-deps", "--no-build-isolation", "--no-index", source],
                capture_output=True,
                text=True,
                timeout=240,
            )
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_licence_files_equal_the_repository_ones(self) -> None:
        for name in ("LICENSE-MIT", "LICENSE-APACHE"):
            with open(os.path.join(ROOT, "..", "..", name), encoding="utf-8") as handle:
                self.assertEqual(read(name), handle.read(), f"{name} differs from the repository's")

    def test_the_wheel_carries_both_licences_the_urls_and_a_supported_python_floor(self) -> None:
        with tempfile.TemporaryDirectory() as out:
            self.pip_from_a_copy("wheel", "--wheel-dir", out)
            wheels = [name for name in os.listdir(out) if name.endswith(".whl")]
            self.assertEqual(len(wheels), 1, wheels)
            self.assertTrue(wheels[0].startswith(f"stateless_otp_client-{stateless_otp.__version__}-"), wheels[0])
            with zipfile.ZipFile(os.path.join(out, wheels[0])) as wheel:
                names = wheel.namelist()
                for licence in ("LICENSE-MIT", "LICENSE-APACHE"):
                    inside = [n for n in names if ".dist-info/" in n and n.endswith(licence)]
                    self.assertEqual(len(inside), 1, f"{licence} in the wheel: {names}")
                    self.assertEqual(wheel.read(inside[0]).decode("utf-8"), read(licence))
                self.assertIn("stateless_otp/py.typed", names)
                metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode("utf-8")
            fields = [line.split(": ", 1) for line in metadata.split("\n\n", 1)[0].splitlines() if ": " in line]
            self.assertIn(["License", "MIT OR Apache-2.0"], fields)
            self.assertIn(["Requires-Python", ">=3.10"], fields)
            urls = [value for key, value in fields if key == "Project-URL"]
            for label in ("Homepage", "Source", "Changelog", "Issues"):
                self.assertTrue(any(u.startswith(f"{label}, https://") for u in urls), f"{label} in {urls}")
            self.assertIn(["Version", stateless_otp.__version__], fields)

    def test_pip_installs_the_package_with_its_type_marker(self) -> None:
        with tempfile.TemporaryDirectory() as target:
            self.pip_from_a_copy("install", "--target", target)
            installed = os.path.join(target, "stateless_otp")
            self.assertTrue(os.path.isfile(os.path.join(installed, "py.typed")))
            probe = subprocess.run(
                [sys.executable, "-c", "import stateless_otp, sys; print(stateless_otp.__file__); print(stateless_otp.OTPClient.__name__)"],
                env={**os.environ, "PYTHONPATH": target},
                capture_output=True,
                text=True,
                timeout=60,
            )
            self.assertEqual(probe.returncode, 0, probe.stderr)
            self.assertTrue(probe.stdout.startswith(target), probe.stdout)
            self.assertIn("OTPClient", probe.stdout)


if __name__ == "__main__":
    unittest.main()
