#!/usr/bin/env bash
# Dependency check: lists every resolved package with its version and fails on any that is not
# pinned to a released version (a branch, a revision, a local path, or an unversioned package).
# The hosted workflow adds GitHub's dependency review and advisories (docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# Package.swift must name every dependency by URL and `from:` a released version.
if grep -nE '\.package\((path|name:.*path):|branch:|revision:|\.branch\(|\.revision\(' Package.swift; then
    echo "deps: FAIL Package.swift names a dependency by path, branch or revision (above)"
    exit 1
fi

mkdir -p .build
swift package show-dependencies --format json >.build/dependencies.json 2>.build/dependencies.err || {
    cat .build/dependencies.err >&2
    exit 1
}
python3 - .build/dependencies.json <<'PY'
import json, re, sys

root = json.load(open(sys.argv[1]))
seen = {}

def walk(package):
    for dependency in package.get("dependencies", []):
        seen[dependency["identity"]] = (dependency.get("version", ""), dependency.get("url", ""))
        walk(dependency)

walk(root)
released = re.compile(r"^\d+\.\d+\.\d+$")
bad = []
print(f"{'package':32} {'version':10} source")
for identity, (version, url) in sorted(seen.items()):
    mark = "" if released.match(version) else "   <- not a released version"
    if mark:
        bad.append(identity)
    print(f"{identity:32} {version:10} {url}{mark}")
print(f"deps: {len(seen)} packages resolved")
if bad:
    print(f"deps: FAIL not pinned to a released version: {', '.join(bad)}")
    sys.exit(1)
print("deps: every package is a released version")
PY
