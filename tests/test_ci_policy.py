"""The test suite's own CI policy (tests/conftest.py): under CI=true a skip for a missing set-up dependency (gradio,
playwright, chromium) is a failure, other skips stay skips."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SKIPPING = '''
import pytest

def test_no_chromium():
    pytest.skip("/usr/bin/chromium is absent: apt-get install -y chromium")

def test_no_playwright():
    pytest.importorskip("playwright_missing_in_this_test.sync_api")

def test_no_gpu():
    pytest.skip("needs a GPU")
'''
NO_GRADIO = '''
import pytest
pytest.importorskip("gradio_missing_in_this_test", reason="the Space needs gradio")

def test_space():
    pass
'''


def test_setup_skips_fail_under_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_skipping=SKIPPING, test_no_gradio=NO_GRADIO)
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("-p", "no:cacheprovider", "--continue-on-collection-errors",
                                "-o", "addopts=")
    result.assert_outcomes(failed=2, skipped=1, errors=1)  # chromium, playwright; gradio at collection; GPU skips
    result.stdout.fnmatch_lines(["*CI=true, but this test was skipped because chromium is missing*"])
