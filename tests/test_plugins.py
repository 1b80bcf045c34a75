"""Plugin discovery, validation and plugin commands.

Discovery runs against real ``*.dist-info`` directories written into a temporary site
directory on ``sys.path`` (in-process) or on ``PYTHONPATH`` (CLI subprocesses).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from zoo import CatalogueEntry, ExporterSpec, FamilySpec, hookimpl
from zoo.cli.main import COMMANDS, cli, main
from zoo.errors import UsageError, ZooError
from zoo.registry.discovery import PluginError, PluginRecord, build_registry, set_registry

GOOD = """
from zoo import CatalogueEntry, FamilySpec, hookimpl

@hookimpl
def register_families(register):
    register(FamilySpec("goodfam", "a family", "goodfam_model:Model"))

@hookimpl
def register_catalogue(register):
    register(CatalogueEntry("good-model", "goodfam", "mnist-5k"))
"""
BROKEN_IMPORT = "raise ImportError('needs libfoo')\n"
RAISES = """
from zoo import FamilySpec, hookimpl

@hookimpl
def register_families(register):
    raise RuntimeError("boom")
"""
TWIN = """
from zoo import FamilySpec, hookimpl

@hookimpl
def register_families(register):
    register(FamilySpec("twin", "a family", "twin_model:Model"))
"""


def write_dist(
    site: Path,
    dist: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
    version: str = "1.0",
) -> None:
    """Write module files and an installed ``*.dist-info`` for them (RECORD included, so
    pip can uninstall it) into ``site``."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[zoo]\n{lines}")
    (info / "INSTALLER").write_text("pip\n")
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    files = [f"{info.name}/{p.name}" for p in info.iterdir()] + [f"{m}.py" for m in modules]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in [*files, f"{info.name}/RECORD"]))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ZOO_PLUGINS", raising=False)
    monkeypatch.delenv("ZOO_STRICT_PLUGINS", raising=False)
    yield
    set_registry(None)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site directory on sys.path; the modules imported from it are forgotten afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))  # also invalidates importlib's caches
    yield root
    for name in [n for n, m in sys.modules.items() if str(root) in str(getattr(m, "__file__", ""))]:
        del sys.modules[name]


def record(name: str, dist: str = "demo-dist") -> PluginRecord:
    return PluginRecord(name=name, distribution=dist, version="1.0", module="", builtin=False)


def by_name(registry, name: str) -> PluginRecord:
    return next(p for p in registry.plugins if p.name == name)


# -- discovery from dist-info ------------------------------------------------------------------


def test_good_plugin_is_discovered(site: Path) -> None:
    write_dist(site, "good-dist", {"good": "good_plugin"}, {"good_plugin": GOOD}, "2.3")
    reg = build_registry()
    good = by_name(reg, "good")
    assert (good.distribution, good.version, good.builtin) == ("good-dist", "2.3", False)
    assert good.hooks == ["register_families", "register_catalogue"]
    assert good.families == ["goodfam"] and good.catalogue == ["good-model"]
    assert reg.catalogue["good-model"].family == "goodfam"
    assert any(p.builtin for p in reg.plugins)  # ZOO_PLUGINS unset: the built-ins load too


def test_import_error_is_recorded_and_others_load(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dist(site, "good-dist", {"good": "good_plugin"}, {"good_plugin": GOOD})
    write_dist(site, "broken-dist", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN_IMPORT})
    monkeypatch.setenv("ZOO_PLUGINS", "good,broken")
    reg = build_registry()
    assert "ImportError: needs libfoo" in by_name(reg, "broken").error
    assert "goodfam" in reg.families
    assert capsys.readouterr().err.count("broken-dist") == 1


def test_hook_that_raises_is_recorded(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dist(site, "raise-dist", {"raiser": "raiser_plugin"}, {"raiser_plugin": RAISES})
    write_dist(site, "good-dist", {"good": "good_plugin"}, {"good_plugin": GOOD})
    monkeypatch.setenv("ZOO_PLUGINS", "raiser,good-dist")  # entry-point or distribution names
    reg = build_registry()
    assert by_name(reg, "raiser").error == "register_families raised RuntimeError: boom"
    assert "goodfam" in reg.families
    assert any("raiser" in p and "raise-dist" in p for p in reg.problems)


def test_duplicate_family_names_both_distributions(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dist(site, "twin-a", {"twa": "twin_a"}, {"twin_a": TWIN})
    write_dist(site, "twin-b", {"twb": "twin_b"}, {"twin_b": TWIN})
    monkeypatch.setenv("ZOO_PLUGINS", "twa,twb")
    reg = build_registry()
    with pytest.raises(PluginError, match="registered by both twin-") as err:
        reg.family("twin")
    assert "twin-a" in str(err.value) and "twin-b" in str(err.value)


def test_zoo_plugins_selects_and_empty_loads_none(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dist(site, "good-dist", {"good": "good_plugin"}, {"good_plugin": GOOD})
    write_dist(site, "broken-dist", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN_IMPORT})
    monkeypatch.setenv("ZOO_PLUGINS", "good")
    reg = build_registry()
    assert [p.name for p in reg.plugins] == ["good"] and not reg.problems
    monkeypatch.setenv("ZOO_PLUGINS", "")
    reg = build_registry()
    assert reg.plugins == [] and reg.families == {}
    assert reg.catalogue  # the built-in catalogue is data, not a plugin


def test_strict_mode_makes_errors_fatal(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dist(site, "broken-dist", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN_IMPORT})
    monkeypatch.setenv("ZOO_PLUGINS", "broken")
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"'broken' \(broken-dist\) failed to load"):
        build_registry()


def zoo_cli(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    environ.pop("ZOO_PLUGINS", None)
    code = "import zoo.cli.main; zoo.cli.main.main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=environ, capture_output=True, text=True
    )


def test_cli_survives_a_broken_plugin(site: Path) -> None:
    write_dist(site, "broken-dist", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN_IMPORT})
    result = zoo_cli(site, "list")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "broken-dist" in line]
    assert len(warnings) == 1 and warnings[0].startswith("zoo: warning:")
    result = zoo_cli(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = json.loads(result.stdout)["plugins"]
    assert "needs libfoo" in next(p for p in plugins if p["name"] == "broken")["error"]
    strict = zoo_cli(site, "list", ZOO_STRICT_PLUGINS="1")
    assert strict.returncode == 1 and "broken-dist" in strict.stderr
    assert "Traceback" not in strict.stderr


# -- plugins registered in the test ------------------------------------------------------------

BAD_FAMILY = """
from zoo.contract.model import GenerativeModel

class Model(GenerativeModel):
    def configure_optimizers(self):
        return {}
"""


class Demo:
    """A plugin object registered through build_registry(extra=...)."""

    @hookimpl
    def register_families(self, register):
        register(FamilySpec("half", "misses methods", "half_model:Model"))
        register(FamilySpec("ghost", "cannot import", "no_such_module_zoo:Model"))
        register(FamilySpec("Bad Name", "bad", "x:y"))

    @hookimpl
    def register_exporters(self, register):
        register(ExporterSpec("txt", "not callable", ".txt", "half_model:__doc__"))

    @hookimpl
    def register_catalogue(self, register):
        register(CatalogueEntry("orphan", "nosuchfamily", "mnist-5k"))

    @hookimpl
    def register_commands(self, cli):
        @cli.command("demo-hello")
        @click.option("--name", default="world")
        def hello(name: str) -> None:
            """Say hello."""
            click.echo(f"hello {name}")

        @cli.command("list")
        def shadow() -> None:
            """Tries to replace a built-in command."""


@pytest.fixture
def demo(site: Path, monkeypatch: pytest.MonkeyPatch):
    (site / "half_model.py").write_text(BAD_FAMILY)
    monkeypatch.setenv("ZOO_PLUGINS", "")  # only the plugin under test
    reg = build_registry(extra=[(Demo(), record("demo"))])
    set_registry(reg)
    return reg


def test_validation_names_the_plugin(demo) -> None:
    assert set(demo.families) == {"half", "ghost"}
    assert any("'Bad Name'" in p and "demo-dist" in p for p in demo.problems)
    with pytest.raises(ZooError, match=r"does not implement train_step, graphs, sample.*demo-dist"):
        demo.family("half")
    with pytest.raises(ZooError, match=r"cannot import 'no_such_module_zoo'.*plugin 'demo'"):
        demo.family("ghost")
    with pytest.raises(ZooError, match=r"'half_model:__doc__' is not callable.*demo-dist"):
        demo.exporter("txt")


def test_plugins_check_reports_each_problem(demo, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["plugins", "--check", "--json"])
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    assert err.splitlines()[-1].startswith("Error: found ")
    report = json.loads(out)
    error = report["plugins"][0]["error"]
    for expected in ("does not implement", "cannot import", "not callable", "no family"):
        assert expected in error
    text = CliRunner().invoke(cli, ["plugins"]).stdout
    assert "demo-dist 1.0" in text and "command:demo-hello" in text


def test_plugin_commands_run_and_cannot_shadow_builtins(demo) -> None:
    commands = demo.commands(reserved=COMMANDS)
    assert set(commands) == {"demo-hello"}
    assert any("'list'" in p and "demo-dist" in p for p in demo.problems)
    result = CliRunner().invoke(cli, ["demo-hello", "--name", "zoo"])
    assert result.exit_code == 0 and result.stdout == "hello zoo\n"
    assert "demo-hello" in CliRunner().invoke(cli, ["--help"]).stdout


def test_register_commands_failure_is_a_plugin_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Failing:
        @hookimpl
        def register_commands(self, cli):
            raise ValueError("no click here")

    monkeypatch.setenv("ZOO_PLUGINS", "")
    reg = build_registry(extra=[(Failing(), record("failing"))])
    assert reg.commands() == {}
    assert reg.plugins[0].error == "register_commands raised ValueError: no click here"


def test_plugin_helper_registers_each_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo import CatalogueEntry, ExporterSpec, FamilySpec, plugin

    monkeypatch.setenv("ZOO_PLUGINS", "")
    obj = plugin(
        FamilySpec("toy", "a toy family", "zoo.plugins.gan:GAN"),
        ExporterSpec("toyfmt", "a toy format", ".toy", "zoo.exporters.onnx_exporter:export"),
        CatalogueEntry("toy-digits", "toy", "digits"),
    )
    reg = build_registry(extra=[(obj, record("toy"))])
    assert reg.problems == []
    assert (reg.family("toy").name, reg.exporter("toyfmt").suffix) == ("toy", ".toy")
    assert reg.model("toy-digits").family == "toy"
    assert reg.plugins[0].hooks == ["register_families", "register_exporters", "register_catalogue"]


def test_plugin_without_hooks_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    monkeypatch.setenv("ZOO_PLUGINS", "")
    reg = build_registry(extra=[(types.SimpleNamespace(), record("empty"))])
    assert reg.plugins[0].error == "implements no zoo hooks"
    assert "names the hook module" in reg.problems[0]


def test_a_deprecated_hook_still_runs_and_names_its_plugins(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # how a hook evolves: its spec gains pluggy's warn_on_impl (hookspecs.py says so) while
    # the plugins that implement it keep working for the releases the message names
    from zoo import LoggerSpec, plugin
    from zoo.contract import hookspecs

    message = "register_loggers is deprecated and goes in zoo 2.0: use register_sinks"
    spec = hookspecs.register_loggers
    opts = {**spec.zoo_spec, "warn_on_impl": DeprecationWarning(message)}
    monkeypatch.setattr(spec, "zoo_spec", opts)
    monkeypatch.setenv("ZOO_PLUGINS", "")
    obj = plugin(LoggerSpec("toylog", "a toy logger", "zoo.training.loggers:CSVLogger"))
    reg = build_registry(extra=[(obj, record("old"))])
    assert "toylog" in reg.loggers and reg.problems == []
    assert by_name(reg, "old").deprecations == [message]
    assert f"zoo: warning: plugin 'old' (demo-dist 1.0): {message}" in capsys.readouterr().err


def test_debug_times_each_plugin_hook(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zoo import FamilySpec, plugin

    monkeypatch.setenv("ZOO_PLUGINS", "")
    obj = plugin(FamilySpec("toy", "a toy family", "zoo.plugins.gan:GAN"))
    build_registry(extra=[(obj, record("toy"))])
    assert "debug" not in capsys.readouterr().err
    monkeypatch.setenv("ZOO_DEBUG", "1")
    build_registry(extra=[(obj, record("toy"))])
    err = capsys.readouterr().err
    assert re.search(
        r"zoo: debug: register_families of plugin 'toy' \(demo-dist 1.0\): [\d.]+ ms", err
    )


@pytest.mark.parametrize("name", [*sorted(COMMANDS), "demo-hello"])
def test_help_of_every_command(demo, name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


def test_help_and_list_do_not_import_torch(site: Path) -> None:
    write_dist(site, "good-dist", {"good": "good_plugin"}, {"good_plugin": GOOD})
    code = textwrap.dedent(
        """
        import sys
        import zoo.cli.main
        for args in (["--help"], ["list"]):
            try:
                zoo.cli.main.main(args)
            except SystemExit as exc:
                assert exc.code == 0, args
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "good-model" in result.stdout


class Misspelt:
    """A hook whose name is one letter off, and one that returns specs instead of
    registering them: both used to be dropped without a word."""

    @hookimpl
    def register_exporter(self, register):
        register(ExporterSpec("txt", "never seen", ".txt", "x:y"))

    @hookimpl
    def register_families(self, register):
        return [FamilySpec("lost", "returned, not registered", "x:y")]


def test_misspelt_hooks_and_returned_specs_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_PLUGINS", "")
    reg = build_registry(extra=[(Misspelt(), record("typo"))])
    error = by_name(reg, "typo").error
    assert "unknown hook 'register_exporter' (did you mean register_exporters" in error
    assert "register_families raised TypeError: returned list instead of calling register" in error
    assert "lost" not in reg.families
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="unknown hook 'register_exporter'"):
        build_registry(extra=[(Misspelt(), record("typo"))])


class Impostor:
    @hookimpl
    def register_families(self, register):
        register(FamilySpec("gan", "an impostor", "impostor:Model"))

    @hookimpl
    def register_catalogue(self, register):
        register(CatalogueEntry("dcgan-mnist", "gan", "digits"))


def test_a_plugin_cannot_replace_a_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZOO_PLUGINS", raising=False)
    reg = build_registry(extra=[(Impostor(), record("impostor"))])
    assert reg.family("gan").target == "zoo.plugins.gan:GAN"  # still usable
    assert reg.model("dcgan-mnist").data == "mnist-5k"
    impostor = by_name(reg, "impostor")
    assert "family 'gan' of" in impostor.error and "the built-in is kept" in impostor.error
    assert "model 'dcgan-mnist'" in impostor.error
    assert impostor.families == [] and impostor.catalogue == []


# -- plugin code that misbehaves ---------------------------------------------------------------

EXITS_AT_IMPORT = "import sys\nsys.exit(0)\n"
HANGS_AT_IMPORT = "import time\ntime.sleep(1.0)\n" + GOOD
ESCAPES = """
from zoo import CatalogueEntry, hookimpl

@hookimpl
def register_catalogue(register):
    register(CatalogueEntry("sly-model", "gan", "mnist-5k", summary="\\x1b[2J\\x1b[31mred\\rover"))
"""


def test_a_plugin_that_exits_at_import_cannot_end_every_command(site: Path) -> None:
    write_dist(
        site, "exit-dist", {"quitter": "quitter_plugin"}, {"quitter_plugin": EXITS_AT_IMPORT}
    )
    result = zoo_cli(site, "list")
    assert result.returncode == 0 and "dcgan-mnist" in result.stdout
    assert "plugin 'quitter' (exit-dist) failed to load: SystemExit: 0" in result.stderr


def test_slow_plugin_import_is_named(site: Path, monkeypatch, capsys) -> None:
    import zoo.registry.discovery

    monkeypatch.setattr(zoo.registry.discovery, "SLOW_SECONDS", 0.2)
    write_dist(site, "slow-dist", {"slow": "slow_plugin"}, {"slow_plugin": HANGS_AT_IMPORT})
    build_registry()
    assert "loading plugin 'slow' (slow-dist 1.0) is taking a while" in capsys.readouterr().err


def test_a_plugin_that_hangs_at_import_is_skipped_after_the_timeout(site: Path) -> None:
    hangs = "import time\ntime.sleep(3600)\n" + GOOD
    write_dist(site, "hang-dist", {"hang": "hang_plugin"}, {"hang_plugin": hangs})
    result = zoo_cli(site, "list", ZOO_PLUGIN_TIMEOUT="1")
    assert result.returncode == 0 and "dcgan-mnist" in result.stdout  # the built-ins work
    assert "plugin 'hang' (hang-dist): loading still running after 1 s; skipped" in result.stderr


def test_plugin_text_cannot_drive_the_terminal(site: Path) -> None:
    write_dist(site, "sly-dist", {"sly": "sly_plugin"}, {"sly_plugin": ESCAPES})
    result = zoo_cli(site, "list")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "sly-model" in line)
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    assert "\\x1b[31mred\\rover" in line


def _exporter_plugin(target: str) -> Any:
    class Exporters:
        @hookimpl
        def register_exporters(self, register):
            register(ExporterSpec("bad", "misbehaves", ".bad", target))

    return Exporters()


BAD_EXPORTERS = """
import sys
from pathlib import Path
from typing import Any

def exits(model, out, info):
    out.write_bytes(b"half")
    raise SystemExit(3)

def raises(model, out, info):
    out.write_bytes(b"half")
    raise RuntimeError("boom")

def lies(model, out, info):
    return [out]

def elsewhere(model, out, info):
    other = Path.cwd() / "elsewhere.bad"
    other.write_bytes(b"x")
    return [other]
"""


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("exits", "failed: SystemExit: 3; nothing was written"),
        ("raises", "failed: RuntimeError: boom; nothing was written"),
        ("lies", "reported model.bad but did not write it beside --out"),
        ("elsewhere", "reported elsewhere.bad but did not write it beside --out"),
    ],
)
def test_a_failing_exporter_is_named_and_leaves_nothing(
    site: Path, zoo, function: str, message: str
) -> None:
    (site / "bad_exporters.py").write_text(BAD_EXPORTERS)
    set_registry(
        build_registry(extra=[(_exporter_plugin(f"bad_exporters:{function}"), record("b"))])
    )
    out = Path("out")
    out.mkdir()
    (out / "model.bad").write_bytes(b"an earlier export")
    result = zoo("export", "gan-mnist", "--format", "bad", "--out", "out/model.bad")
    assert result.code == 1
    assert f"exporter 'bad' of plugin 'b' (demo-dist 1.0) {message}" in result.err
    assert sorted(p.name for p in out.iterdir()) == ["model.bad"]  # no staging folder left
    assert (out / "model.bad").read_bytes() == b"an earlier export"  # nothing replaced


def test_export_checks_the_formats_suffix(zoo) -> None:
    result = zoo("export", "gan-mnist", "--format", "safetensors", "--out", "g.onnx")
    assert result.code == 2
    assert "--out g.onnx should end in .safetensors for --format safetensors" in result.err


SCHEMAS = """
from dataclasses import dataclass

from zoo import CatalogueEntry, Config, FamilySpec, hookimpl, setting


@dataclass(frozen=True)
class Good(Config):
    width: int = setting(8, "layer width", ">= 1")


@dataclass(frozen=True)
class OutOfRange(Config):
    width: int = setting(0, "layer width", ">= 1")


class NotADataclass(Config):
    pass


@dataclass(frozen=True)
class NoHelp(Config):
    width: int = 8


@hookimpl
def register_families(register):
    register(FamilySpec("good", "typed", "zoo.plugins.gan:GAN", Good, {"batch_size": 16}))
    register(FamilySpec("outofrange", "bad default", "x:y", OutOfRange))
    register(FamilySpec("plain", "no dataclass", "x:y", NotADataclass))
    register(FamilySpec("nohelp", "a bare field", "x:y", NoHelp))
    register(FamilySpec("badtrain", "bad train key", "x:y", Good, {"batchsize": 16}))


@hookimpl
def register_catalogue(register):
    register(CatalogueEntry("good-wide", "good", "digits", config={"width": 0}))
"""


def test_family_schemas_are_checked_as_they_register(site: Path) -> None:
    """A plugin's schema mistakes are reported once, naming the plugin, before any user
    meets them; only the family with a sound schema is kept."""
    write_dist(site, "schema-dist", {"schemas": "schema_plugin"}, {"schema_plugin": SCHEMAS})
    reg = build_registry()
    assert set(reg.families) & {"good", "outofrange", "plain", "nohelp", "badtrain"} == {"good"}
    problems = "\n".join(reg.problems)
    for expected in (
        "bad value 0 for 'width' in the defaults of family 'outofrange': it must be >= 1",
        "family 'plain': config NotADataclass must be a @dataclass",
        "family 'nohelp': setting 'width' has no help; use zoo.setting()",
        "unknown key 'batchsize' in the train of family 'badtrain'",
    ):
        assert expected in problems
    assert "plugin 'schemas' (schema-dist)" in problems
    reg.check()  # the entry's config is checked against its family's schema
    assert "bad value 0 for 'width' in the config of good-wide: it must be >= 1" in reg.problems


def noise_source(source: str, **_):
    """A plugin's data source: noise:N gives N random 8x8 images with 2 classes."""
    import torch

    from zoo.contract.imagesets import Dataset, ImageSet

    n = int(source.removeprefix("noise:"))
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=gen)
    labels = torch.arange(n) % 2
    split = n // 5
    train, test = ImageSet(images[split:], labels[split:]), ImageSet(images[:split], labels[:split])
    return Dataset(source, train, test, classes=["a", "b"])


def test_a_plugin_adds_a_data_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from zoo import DataSourceSpec, plugin
    from zoo.api import train
    from zoo.data.sources import load_dataset

    obj = plugin(DataSourceSpec("noise", "random images", f"{__name__}:noise_source", "N"))
    set_registry(build_registry(extra=[(obj, record("noise"))]))
    try:
        data = load_dataset("noise:40", image_size=16)
        assert (len(data.train), len(data.test), data.spec.size) == (32, 8, 16)
        assert data.classes == ["a", "b"]
        result = train(
            "cgan",
            data="noise:40",
            out=tmp_path / "run",
            steps=2,
            progress=False,
            overrides={"image_size": 16, "nz": 4, "ngf": 4, "ndf": 4, "batch_size": 4},
        )
        assert result.step == 2
        with pytest.raises(UsageError, match="bad data source 'noise': use --data noise:N"):
            load_dataset("noise")
    finally:
        set_registry(None)


@pytest.mark.parametrize("name", ["offline", "help", "debug", "seed"])
def test_a_sample_option_may_not_shadow_zoos_own(name):
    from zoo import SampleOption
    from zoo.registry.discovery import check_sample_options

    spec = FamilySpec("shadow", "a family", "x:Y", sample_options=(SampleOption(name, "h"),))
    with pytest.raises(UsageError, match=f"bad sample option name '{name}'"):
        check_sample_options(spec)


def float_source(source: str, **_: Any) -> Any:
    """A data source that hands over float images in [0, 1000]."""
    data = noise_source("noise:20")
    data.train.images = data.train.images.float() * 4
    return data


def test_a_data_source_of_the_wrong_kind_names_its_plugin() -> None:
    from zoo import DataSourceSpec, plugin
    from zoo.data.sources import load_dataset
    from zoo.errors import ZooError

    obj = plugin(DataSourceSpec("floaty", "float images", f"{__name__}:float_source"))
    set_registry(build_registry(extra=[(obj, record("floaty"))]))
    try:
        with pytest.raises(ZooError, match=r"data source 'floaty' of plugin 'floaty' .*float32"):
            load_dataset("floaty")
    finally:
        set_registry(None)


def test_a_family_without_settings_says_how_to_declare_them() -> None:
    from zoo import CatalogueEntry

    class Bare:
        @hookimpl
        def register_families(self, register):
            register(FamilySpec("bare", "declares no settings", "bare_model:Model"))

        @hookimpl
        def register_catalogue(self, register):
            register(CatalogueEntry("bare-mnist", "bare", "mnist-5k", config={"nz": 8}))

    set_registry(build_registry(extra=[(Bare(), record("bare"))]))
    try:
        from zoo.registry.recipes import recipe_settings, resolve

        with pytest.raises(UsageError) as err:
            recipe_settings(resolve("bare-mnist"), {})
        assert str(err.value).endswith(
            "valid keys: none (a family declares its settings as a zoo.Config dataclass, "
            "FamilySpec(config=...); see 'Migrating' in docs/plugins.md)"
        )
    finally:
        set_registry(None)


def test_plain_zoo_plugins_does_not_call_unimported_families_ok(zoo) -> None:
    r = zoo("plugins")
    row = next(line for line in r.out.splitlines() if line.startswith("dcgan "))
    assert " loaded " in row and "`zoo plugins --check` imports and checks them" in r.out
