"""`zoo train --out`: a folder of the user's is never adopted, and a cleanup removes only the
temporaries that zoo's own dead processes left."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

from conftest import TINY_GAN


def train(zoo, out, *extra):
    return zoo(
        "train", "gan", "--data", "digits", "--steps", "4", "-q", *TINY_GAN, "--out", out, *extra
    )


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_folder_zoo_did_not_make_is_refused_and_left_as_it_was(tmp_path, zoo):
    mine = tmp_path / "p"
    mine.mkdir()
    (mine / "config.json").write_text('{"mine": 1}')
    (mine / ".notes.tmp").write_text("draft")
    r = train(zoo, str(mine))
    assert r.code == 2
    assert "is a folder zoo did not make and it is not empty" in r.err
    assert "new or empty folder" in r.err and "Traceback" not in r.err
    assert sorted(p.name for p in mine.iterdir()) == [".notes.tmp", "config.json"]
    assert (mine / "config.json").read_text() == '{"mine": 1}'
    assert (mine / ".notes.tmp").read_text() == "draft"


def test_out_dot_in_a_project_folder_is_refused(tmp_path, zoo):
    (tmp_path / "README.md").write_text("my project")
    r = train(zoo, ".")
    assert r.code == 2 and "zoo did not make" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


def test_an_empty_folder_or_a_file_path(tmp_path, zoo):
    (tmp_path / "empty").mkdir()
    assert train(zoo, str(tmp_path / "empty")).code == 0
    assert (tmp_path / "empty" / "checkpoints").is_dir()
    (tmp_path / "f").write_text("x")
    r = train(zoo, str(tmp_path / "f"))
    assert r.code == 2 and "is a file, not a folder" in r.err
    assert (tmp_path / "f").read_text() == "x"


def test_a_run_zoo_made_starts_again_and_cleans_only_its_own_dead_temporaries(tmp_path, zoo):
    run = tmp_path / "run"
    assert train(zoo, str(run)).code == 0
    shutil.rmtree(run / "checkpoints")  # as a run killed before its first checkpoint leaves it
    host = socket.gethostname()
    stale = run / f".config.json.{host}-{dead_pid()}.abc123.tmp"
    stale.write_text("half-written")
    mine = run / ".notes.tmp"  # a user's file that merely ends in .tmp
    mine.write_text("draft")
    other_host = run / f".config.json.elsewhere-{dead_pid()}.abc123.tmp"
    other_host.write_text("another node's write")
    assert train(zoo, str(run)).code == 0  # no checkpoint yet: a fresh start, no --resume
    assert not stale.exists()
    assert mine.read_text() == "draft" and other_host.exists()
    assert not (run / ".lock").exists()  # the lock goes with the process


def test_a_run_of_an_older_zoo_without_the_mark_still_resumes(tmp_path, zoo):
    run = tmp_path / "run"
    assert train(zoo, str(run)).code == 0
    (run / ".zoo-run").unlink()
    assert train(zoo, str(run)).code == 2  # holds a run: --resume or another --out
    r = zoo("train", "gan", "--steps", "8", "-q", "--out", str(run), "--resume")
    assert r.code == 0, r.err
    assert json.loads((run / "config.json").read_text())["family"] == "gan"
