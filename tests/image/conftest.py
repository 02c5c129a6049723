"""conftest.py - fixtures for the release tests (`health`, the container image): the integration
suite's own fixtures (a fake device tree, the test kubelet, the daemon under test, with the same
teardown checks), loaded from tests/integration/conftest.py under another module name so that both
directories can run in one pytest session, plus sdp.py on the path.

The binary is $SGXDEVPLUGIN (default build/sgxdevplugin); timeouts scale with sdp.SCALE.
"""

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(os.path.dirname(HERE), "integration")
if INTEGRATION not in sys.path:
    sys.path.insert(0, INTEGRATION)


def _load_integration_fixtures():
    name = "sdp_integration_fixtures"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(INTEGRATION, "conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_fx = _load_integration_fixtures()

# pytest collects fixtures and hooks by name from this module's namespace.
binary = _fx.binary
mknod_ok = _fx.mknod_ok
workdir = _fx.workdir
devtree = _fx.devtree
node = _fx.node
pytest_runtest_makereport = _fx.pytest_runtest_makereport

FIGURES = {}  # name -> measured value, shown after the run


@pytest.fixture(scope="session")
def figures():
    """A dict the tests fill with what they measured (sizes, durations); printed at the end."""
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("release figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line("%-36s %s" % (name, value))
