"""Prints the figures of a fuzz run from its reports, and fails on any 5xx.

    python summary.py REPORT_DIR IDENTITY...

Each identity's directory holds schemathesis's HAR file (every request it sent), its
JUnit report (its failures), and waived.txt (the refusals hooks.py waived).
"""

import collections
import json
import pathlib
import sys
import xml.etree.ElementTree as ElementTree


def figures(directory):
    requests = server_errors = 0
    for har in directory.glob("har-*.json"):
        for entry in json.loads(har.read_text())["log"]["entries"]:
            requests += 1
            server_errors += entry["response"]["status"] >= 500
    failures = 0
    for junit in directory.glob("junit-*.xml"):
        root = ElementTree.parse(junit).getroot()
        failures += sum(
            len(case.findall("failure")) + len(case.findall("error"))
            for case in root.iter("testcase")
        )
    waivers = collections.Counter()
    log = directory / "waived.txt"
    if log.exists():
        waivers.update(line.split()[-1] for line in log.read_text().splitlines() if line)
    return requests, failures, server_errors, waivers


def main():
    base = pathlib.Path(sys.argv[1])
    worst = 0
    print(f"{'identity':<10} {'requests':>9} {'failures':>9} {'5xx':>5}  waived (hooks.py)")
    for identity in sys.argv[2:]:
        requests, failures, server_errors, waivers = figures(base / identity)
        waived = ", ".join(f"{code} {n}" for code, n in sorted(waivers.items())) or "none"
        print(f"{identity:<10} {requests:>9} {failures:>9} {server_errors:>5}  {waived}")
        if requests == 0 or server_errors:
            worst = 1
    sys.exit(worst)


if __name__ == "__main__":
    main()
