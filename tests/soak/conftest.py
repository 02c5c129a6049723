"""conftest.py - fixtures for the soak and fault tests: the integration suite's simulated node
(tests/integration/conftest.py, loaded here under its own module name and reused as is: the
`node` fixture and its teardown checks), and the figures a run prints at its end (soak.py).

The binary is $SGXDEVPLUGIN (default build/sgxdevplugin), as for the integration tests.
"""

import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(os.path.dirname(HERE), "integration")
sys.path.insert(0, INTEGRATION)
sys.path.insert(0, HERE)

from soak import FIGURES  # noqa: E402

_spec = importlib.util.spec_from_file_location("integration_conftest",
                                               os.path.join(INTEGRATION, "conftest.py"))
_it = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_it)

# The integration fixtures, reused (pytest finds fixtures and hooks by name in this module).
binary = _it.binary
mknod_ok = _it.mknod_ok
workdir = _it.workdir
devtree = _it.devtree
node = _it.node
pytest_runtest_makereport = _it.pytest_runtest_makereport
pytest_report_header = _it.pytest_report_header


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("soak and fault figures")
        for name, text in FIGURES:
            terminalreporter.write_line("%s: %s" % (name, text))
