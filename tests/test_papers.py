"""`accel-sim papers`: the claims table from real (smoke) runs of the shipped configs, the
finished runs reused, and clear errors."""
import json

import pytest
from conftest import requires_mnist

from accel_sim import papers as papers_module
from accel_sim.cli import main
from accel_sim.config import load_config
from accel_sim.config.loader import shipped_config
from accel_sim.papers import CLAIMS, papers
from accel_sim.registry import family_of
from accel_sim.run.rundir import RESOLVED


def test_every_claim_reads_shipped_configs_with_quick_overrides():
    for claim in CLAIMS:
        for name in claim.configs:
            cfg = load_config(shipped_config(name))
            quick = load_config(shipped_config(name), family_of(cfg).quick_overrides(cfg))
            assert quick.data.train_samples is not None and quick.data.train_samples <= 512


@requires_mnist
def test_quick_runs_write_the_table_and_are_reused(tmp_path, capsys):
    out = tmp_path / "papers"
    assert main(["papers", "--quick", "--only", "test accuracy, N=100", "--out", str(out),
                 "--no-progress"]) == 0
    text = (out / "papers.md").read_text()
    row = next(line for line in text.splitlines() if "N=100" in line)
    stats = json.loads((out / "mnist_dc100" / "stats.json").read_text())
    assert "82.9 %" in row and f"**{100 * stats['accuracy']['test']:.2f} %**" in row
    assert "`mnist_dc100`" in row
    assert f"accel-sim run configs/mnist_dc100.yaml --set 'data.train_samples=200' " \
           f"--set 'data.test_samples=100' --set 'run.checkpoint_every=0' " \
           f"--out {out / 'mnist_dc100'}" in text.splitlines()
    assert "Diehl & Cook 2015" in capsys.readouterr().out
    before = (out / "mnist_dc100" / "stats.json").stat().st_mtime_ns
    papers(out, quick=True, only="test accuracy, N=100", progress=False)  # reused, not re-run
    assert (out / "mnist_dc100" / "stats.json").stat().st_mtime_ns == before
    # a run made with other threads and replay workers has the same results: reused too
    resolved = out / "mnist_dc100" / RESOLVED
    text = resolved.read_text()
    assert "  threads: 0\n" in text and "  chip_workers: 0\n" in text
    resolved.write_text(text.replace("  threads: 0\n", "  threads: 1\n")
                        .replace("  chip_workers: 0\n", "  chip_workers: 2\n"))
    papers(out, quick=True, only="test accuracy, N=100", progress=False)
    assert (out / "mnist_dc100" / "stats.json").stat().st_mtime_ns == before
    with pytest.raises(papers_module.RunError, match="another config"):
        papers(out, quick=False, only="test accuracy, N=100")  # the full protocol: not these


def test_a_filter_that_matches_nothing_names_the_papers(tmp_path, capsys):
    assert main(["papers", "--only", "nothing like it", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no claim matches 'nothing like it'" in err and "FSpiNN" in err
