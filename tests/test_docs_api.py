"""docs/api.md runs: its code blocks, executed in order in a scratch directory."""
import os
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_api_page_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) >= 6
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "tests" / "fixtures" / "nir", tmp_path / "tests" / "fixtures" / "nir")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, "docs/api.md", "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "uJ" in out and "loihi_sanafe" in out
    assert "update_rule: state" in out  # the warning printed for a bare raster
    assert "conv synaptic ops" in out and "nJ for" in out
    assert os.path.isdir(tmp_path / "runs" / "api-example" / "trace_infer")
