"""Setup is one step, and a second run rebuilds nothing."""

import subprocess

from conftest import ROOT


def test_a_second_setup_run_does_nothing():
    result = subprocess.run([str(ROOT / "scripts" / "setup")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0
    assert result.stderr == "" and result.stdout == ""


def test_the_console_script_is_installed_in_the_venv():
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "assistant"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "replay" in result.stdout
