#!/usr/bin/env python3
"""check_layers.py - every #include "x.h" in src/<layer>/ names a header of its own folder, of a
folder it may use (src/meson.build's layer_below, read from there, transitively) or the generated
protobuf header where proto is allowed. The meson build enforces the same by include paths; this
says it from the sources, naming the file, the line and the header, and is run as a meson test.

usage: check_layers.py SRC_DIR          exit 0 when clean, 1 with one line per wrong-way include
       check_layers.py --self-test      shows it fails on a wrong-way include (a temp tree)
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
BELOW = re.compile(r"layer_below\s*=\s*\{(.*?)\n\}", re.S)
ROW = re.compile(r"'(\w+)'\s*:\s*\[([^\]]*)\]")


def read_layers(src):
    with open(os.path.join(src, "meson.build")) as f:
        m = BELOW.search(f.read())
    if not m:
        raise SystemExit("check_layers: no layer_below table in %s/meson.build" % src)
    return {name: re.findall(r"'(\w+)'", deps) for name, deps in ROW.findall(m.group(1))}


def allowed(layers, name):
    seen, todo = set(), [name]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(layers.get(n, []))
    return seen


def check(src):
    layers = read_layers(src)
    owner = {}
    for layer in layers:
        d = os.path.join(src, layer)
        for f in os.listdir(d) if os.path.isdir(d) else []:
            if f.endswith(".h"):
                owner[f] = layer
    # the headers protoc-c generates from proto/*.proto
    proto = os.path.join(src, os.pardir, "proto")
    for f in os.listdir(proto) if os.path.isdir(proto) else []:
        if f.endswith(".proto"):
            owner[f[:-len(".proto")] + ".pb-c.h"] = "proto"
    owner["api.pb-c.h"] = "proto"
    bad = []
    for layer in layers:
        ok = allowed(layers, layer)
        d = os.path.join(src, layer)
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not f.endswith((".c", ".h")):
                continue
            with open(os.path.join(d, f)) as fh:
                for n, line in enumerate(fh, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    h = os.path.basename(m.group(1))
                    where = owner.get(h)
                    if where is None:
                        bad.append("%s/%s:%d: includes \"%s\", which is no layer's header"
                                   % (layer, f, n, m.group(1)))
                    elif where not in ok:
                        bad.append("%s/%s:%d: includes \"%s\" of %s/, which %s/ may not use "
                                   "(it may use: %s)" % (layer, f, n, h, where, layer,
                                                        ", ".join(sorted(ok - {layer})) or "nothing"))
    return bad


def self_test():
    with tempfile.TemporaryDirectory() as t:
        for layer in ("base", "rpc", "cmd"):
            os.mkdir(os.path.join(t, layer))
        with open(os.path.join(t, "meson.build"), "w") as f:
            f.write("layer_below = {\n  'base' : [],\n  'rpc' : ['base'],\n  'cmd' : ['rpc'],\n}\n")
        files = {"base/log.h": "", "base/log.c": '#include "log.h"\n#include "cli.h"\n',
                 "rpc/grpc.h": '#include "log.h"\n', "cmd/cli.h": '#include "grpc.h"\n'}
        for p, text in files.items():
            with open(os.path.join(t, p), "w") as f:
                f.write(text)
        bad = check(t)
        assert bad == ['base/log.c:2: includes "cli.h" of cmd/, which base/ may not use '
                       '(it may use: nothing)'], bad
    print("check_layers: self-test passed")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    bad = check(argv[1])
    for b in bad:
        print("check_layers: " + b)
    if not bad:
        print("check_layers: every include runs downwards")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
