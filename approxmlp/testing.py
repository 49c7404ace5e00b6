"""Helpers for users' own test suites: assert that a design verifies.

    from approxmlp.testing import assert_design_verifies

    def test_my_classifier_hardware(tmp_path):
        assert_design_verifies("hw")          # a folder written by `approxmlp compile`

Runs the RTL through cocotb + Verilator on every stored test vector, recomputing the
expected classes from the folder's IR, and fails with the first mismatch (sample, inputs,
RTL class, golden class) or the lint warnings.
"""

from __future__ import annotations

from pathlib import Path


def assert_design_verifies(folder: str | Path) -> dict:
    from .pipeline.verify import verify_folder

    result = verify_folder(Path(folder))
    if result["mismatches"] or result["lint_warnings"]:
        raise AssertionError(result["message"])
    return result
