#!/usr/bin/env python3
"""check_strings.py - no string literal under src/ is split across source lines: an operator who
greps the sources for a log line or an error message must find it (issue 9). A literal that ends a
line and another that starts the next line are one string cut in two. Macros spliced between
literals on one line ("... %" PRIu64 " ...") are fine.

    check_strings.py SRC_DIR        exit 1 naming each file:line of a split
    check_strings.py --fix SRC_DIR  join them in place
    check_strings.py --self-test
"""

import os
import re
import sys

END = re.compile(r'"\s*$')
START = re.compile(r'^\s*"')


def splits(lines):
    """Line numbers (0-based) whose string literal goes on on the next line."""
    out = []
    for i in range(len(lines) - 1):
        a, b = lines[i], lines[i + 1]
        if a.lstrip().startswith(("#", "//", "*", "/*")):
            continue
        if END.search(a) and START.match(b) and a.count('"') % 2 == 0 and a.strip() != '"':
            out.append(i)
    return out


def join(lines):
    """Joins every split; returns the new lines."""
    out = list(lines)
    i = 0
    while i < len(out) - 1:
        if i in splits(out[i:i + 2]) or (END.search(out[i]) and START.match(out[i + 1]) and
                                           out[i].count('"') % 2 == 0 and
                                           not out[i].lstrip().startswith(("#", "//", "*", "/*"))):
            head = out[i].rstrip()[:-1]  # without the closing quote
            tail = out[i + 1].lstrip()[1:]  # without the opening quote
            out[i] = head + tail
            del out[i + 1]
            continue
        i += 1
    return out


def files(root):
    for d, _, names in os.walk(root):
        for n in sorted(names):
            if n.endswith((".c", ".h")):
                yield os.path.join(d, n)


def self_test():
    bad = ['        log_info(r, p, "one half "', '                 "and the other", x);']
    assert splits(bad) == [0], splits(bad)
    assert join(bad) == ['        log_info(r, p, "one half and the other", x);'], join(bad)
    ok = ['        f("a %" PRIu64 " b", v);', '        g("c");']
    assert splits(ok) == [], splits(ok)
    comment = [' * "quoted"', ' * "again"']
    assert splits(comment) == []
    print("check_strings: self-test passed")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    fix = len(argv) > 1 and argv[1] == "--fix"
    root = argv[2] if fix else argv[1]
    found = 0
    for path in files(root):
        with open(path) as f:
            lines = f.read().split("\n")
        s = splits(lines)
        if not s:
            continue
        if fix:
            with open(path, "w") as f:
                f.write("\n".join(join(lines)))
        else:
            for i in s:
                print("%s:%d: a string literal split across lines: %s" % (
                    path, i + 1, lines[i].strip()[:70]))
        found += len(s)
    if found and not fix:
        print("check_strings: %d split string literal(s); join them (--fix)" % found)
        return 1
    print("check_strings: %s" % ("joined %d" % found if fix else "no split string literal"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
