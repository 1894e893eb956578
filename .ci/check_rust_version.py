#!/usr/bin/env python3
"""Fails when the workspace's `rust-version` is not the true minimum: the
highest `rust_version` any locked dependency declares (cargo metadata over
Cargo.lock, every platform and dev-dependency included).

Usage: python3 .ci/check_rust_version.py   (from the repository root)
"""
import json
import re
import subprocess
import sys


def parse(version):
    return tuple(int(part) for part in version.split(".")) + (0,) * (3 - version.count(".") - 1)


def main():
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    needs = [
        (parse(p["rust_version"]), f'{p["name"]} {p["version"]}')
        for p in metadata["packages"]
        if p.get("rust_version") and p.get("source")
    ]
    highest = max(v for v, _ in needs)
    by = sorted(name for v, name in needs if v == highest)
    with open("Cargo.toml", encoding="utf-8") as handle:
        declared = re.search(r'^rust-version = "([0-9.]+)"', handle.read(), re.M)
    if declared is None:
        sys.exit("Cargo.toml: [workspace.package] has no rust-version")
    ours = parse(declared.group(1))
    shown = ".".join(map(str, highest[:2])) if highest[2:] == (0,) else ".".join(map(str, highest))
    if ours != highest:
        sys.exit(
            f"Cargo.toml declares rust-version {declared.group(1)}, but the locked "
            f"dependencies need {shown} ({', '.join(by)}): set rust-version = \"{shown}\""
        )
    print(f"rust-version {declared.group(1)} = the highest rust_version of the lock ({', '.join(by)})")


if __name__ == "__main__":
    main()
