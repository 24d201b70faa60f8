#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Check that every RST file under Documentation/ parses cleanly with docutils
(any warning fails), and that ABI files have the fields Documentation/ABI/README
asks for."""
import glob
import io
import os
import re
import sys

import docutils.core
import docutils.utils

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bad = 0
for path in sorted(glob.glob(os.path.join(ROOT, "Documentation", "**", "*.rst"), recursive=True)):
    err = io.StringIO()
    try:
        docutils.core.publish_doctree(
            open(path).read(), source_path=path,
            settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": err})
    except docutils.utils.SystemMessage as e:
        err.write(str(e))
    if err.getvalue():
        bad += 1
        print(f"{os.path.relpath(path, ROOT)}:\n{err.getvalue()}")
for path in sorted(glob.glob(os.path.join(ROOT, "Documentation", "ABI", "*", "*"))):
    text = open(path).read()
    # An entry may have several What: lines; entries are apart by a blank line.
    for entry in re.split(r"\n\n+(?=What:)", text.strip()):
        for field in ("What:", "Date:", "KernelVersion:", "Contact:", "Description:"):
            if field not in entry:
                bad += 1
                print(f"{os.path.relpath(path, ROOT)}: entry {entry.splitlines()[0]!r} lacks {field}")
n = len(glob.glob(os.path.join(ROOT, "Documentation", "**", "*.rst"), recursive=True))
print(f"[check-docs] {n} RST files, {bad} problems")
sys.exit(1 if bad else 0)
