#!/usr/bin/env python3
"""The source tree's architecture rules, checked.

  check_layering.py includes SRC ARCHITECTURE.md
      Every `#include "folder/..."` in SRC goes to the file's own folder or to one that the
      layer table in ARCHITECTURE.md (between <!-- layers:begin --> and <!-- layers:end -->)
      allows for it. Every folder holding sources must be in the table.
  check_layering.py sizes SRC MAX_LINES
      No source file is longer than MAX_LINES lines.
  check_layering.py selftest
      Both checks catch a planted violation (so that a passing run means something).
"""
import os
import re
import sys
import tempfile

SOURCE_EXT = (".h", ".hpp", ".cpp", ".c", ".mm")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def read_table(architecture_md):
    text = open(architecture_md, encoding="utf-8").read()
    m = re.search(r"<!-- layers:begin -->(.*?)<!-- layers:end -->", text, re.S)
    if not m:
        sys.exit(f"{architecture_md}: no <!-- layers:begin --> ... <!-- layers:end --> table")
    table = {}
    for line in m.group(1).splitlines():
        row = ROW.match(line.strip())
        if row:
            table[row.group(1).strip("/")] = set(re.findall(r"`([^`]+)`", row.group(2)))
    if not table:
        sys.exit(f"{architecture_md}: the layer table has no rows")
    for folder, allowed in table.items():
        for a in allowed:
            if a not in table:
                sys.exit(f"{architecture_md}: `{folder}` may include `{a}`, which is not a row of the table")
    return table


def folder_of(rel_path, table):
    """The longest table key that is a folder prefix of rel_path (None if none)."""
    parts = rel_path.split("/")[:-1]
    for n in range(len(parts), 0, -1):
        key = "/".join(parts[:n])
        if key in table:
            return key
    return None


def sources(src):
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if name.endswith(SOURCE_EXT):
                path = os.path.join(root, name)
                yield path, os.path.relpath(path, src).replace(os.sep, "/")


def check_includes(src, table):
    problems = []
    for path, rel in sources(src):
        here = folder_of(rel, table)
        if here is None:
            problems.append(f"{rel}: its folder is not in the layer table")
            continue
        text = open(path, encoding="utf-8", errors="replace").read()
        for m in INCLUDE.finditer(text):
            target = m.group(1)
            if "/" not in target or not os.path.exists(os.path.join(src, target)):
                continue  # same-folder relative includes, generated files, system-like headers
            there = folder_of(target, table)
            if there is None or there == here or there in table[here]:
                continue
            line = text.count("\n", 0, m.start()) + 1
            problems.append(f"{rel}:{line}: includes {target} ({there}/ is not among what {here}/ may include)")
    return problems


def check_sizes(src, max_lines):
    problems = []
    for path, rel in sources(src):
        n = sum(1 for _ in open(path, encoding="utf-8", errors="replace"))
        if n > max_lines:
            problems.append(f"{rel}: {n} lines (the limit is {max_lines})")
    return problems


def selftest():
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "src")
        for rel, body in {"core/a.h": "", "model/m.h": '#include "core/a.h"\n',
                          "core/bad.cpp": '#include "model/m.h"\n' + "x\n" * 5}.items():
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            open(os.path.join(src, rel), "w").write(body)
        md = os.path.join(d, "A.md")
        open(md, "w").write("<!-- layers:begin -->\n| `core` | |\n| `model` | `core` |\n<!-- layers:end -->\n")
        found = check_includes(src, read_table(md))
        assert found == ["core/bad.cpp:1: includes model/m.h (model/ is not among what core/ may include)"], found
        assert check_sizes(src, 5) == ["core/bad.cpp: 6 lines (the limit is 5)"], check_sizes(src, 5)
        assert check_sizes(src, 6) == []
    print("selftest: both checks report the planted violations")
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == "selftest":
        return selftest()
    if len(argv) == 4 and argv[1] == "includes":
        problems = check_includes(argv[2], read_table(argv[3]))
        what = "include crosses the layering"
    elif len(argv) == 4 and argv[1] == "sizes":
        problems = check_sizes(argv[2], int(argv[3]))
        what = "source file is too long"
    else:
        print(__doc__)
        return 2
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} {what}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
