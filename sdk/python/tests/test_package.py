"""Packaging checks: the README shows the example the e2e suite runs, the
package is typed, and it installs with pip from its pyproject.toml."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

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

    def test_pip_installs_the_package_with_its_type_marker(self) -> None:
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
        with tempfile.TemporaryDirectory() as target, tempfile.TemporaryDirectory() as work:
            # Build from a copy so the checkout gets no build/ or egg-info.
            source = os.path.join(work, "python")
            shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
            result = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", target, source],
                capture_output=True,
                text=True,
                timeout=240,
            )
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
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
