"""conftest.py - fixtures for the Helm chart tests (tests/chart): the pinned helm 3 and helm 4
binaries and the CEL evaluator that get-tools.sh fetches (once per run, cached under
build-chart/tools or $SGXDEVPLUGIN_TOOLS), and a `helm` fixture that every chart test takes, so
that each runs once with each helm. Renders are parsed with python3-yaml."""

import copy
import os
import shutil
import subprocess
import tempfile

import pytest
import yaml

from chartlib import CHART, HERE, RELEASE, RENDERS


def pytest_collection_modifyitems(config, items):
    """test_models.py's "every render" test runs last, once the other tests have rendered."""
    last = [i for i in items if i.module.__name__ == "test_models" and "every_render" in i.name]
    items[:] = [i for i in items if i not in last] + last


@pytest.fixture(scope="session")
def tools():
    """{"helm-3", "helm-4", "celjs", "models", "node"}: paths from get-tools.sh."""
    r = subprocess.run(["sh", os.path.join(HERE, "get-tools.sh")], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, "get-tools.sh failed:\n" + r.stderr
    got = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    for name in ("helm-3", "helm-4", "celjs", "models", "node"):
        assert name in got and os.path.exists(got[name]), r.stdout + r.stderr
    return got


@pytest.fixture(scope="session")
def helm_home():
    """A scratch HOME for helm's config and cache; nothing outside is touched."""
    d = tempfile.mkdtemp(prefix="sgxdevplugin-helm-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Helm:
    """One helm binary: run(), template() (parsed documents), and failing renders."""

    def __init__(self, major, path, home):
        self.major = major
        self.path = path
        self.env = dict(os.environ, HOME=home, HELM_CACHE_HOME=home + "/cache",
                        HELM_CONFIG_HOME=home + "/config", HELM_DATA_HOME=home + "/data")
        self.env.pop("KUBECONFIG", None)
        self._cache = {}

    def __repr__(self):
        return "helm-%d" % self.major

    def run(self, *args):
        return subprocess.run([self.path] + list(args), capture_output=True, text=True,
                              env=self.env, timeout=120)

    def render_text(self, *args, release=RELEASE, namespace="default"):
        r = self.run("template", release, CHART, "--namespace", namespace, *args)
        assert r.returncode == 0, "helm template %s failed:\n%s" % (" ".join(args), r.stderr)
        return r.stdout

    def template(self, *args, release=RELEASE, namespace="default"):
        """The rendered documents (empty ones dropped), parsed; a fresh copy each call."""
        key = (args, release, namespace)
        if key not in self._cache:
            text = self.render_text(*args, release=release, namespace=namespace)
            RENDERS.append((self.major, args, release, namespace, text))
            self._cache[key] = [d for d in yaml.safe_load_all(text) if d]
        return copy.deepcopy(self._cache[key])

    def template_fails(self, *args):
        """Runs a render that must fail; returns its stderr."""
        r = self.run("template", RELEASE, CHART, *args)
        assert r.returncode != 0, "helm template %s rendered:\n%s" % (" ".join(args), r.stdout)
        return r.stderr


@pytest.fixture(scope="session", params=[3, 4], ids=["helm3", "helm4"])
def helm(request, tools, helm_home):
    h = Helm(request.param, tools["helm-%d" % request.param], helm_home)
    v = h.run("version", "--template", "{{ .Version }}").stdout
    assert v.startswith("v%d." % request.param), v
    return h
