"""Plugin discovery: one pluggy manager, one entry-point group, broken plugins survive.

Names are validated as plugins register them; a family's or exporter's target is imported
and checked when it is first used (or by `zoo plugins --check`), and every error names the
plugin and distribution it came from.

Environment:
  ZOO_PLUGINS         comma-separated entry-point or distribution names to load; set but
                      empty loads none (not even the built-ins). Unset loads all.
  ZOO_STRICT_PLUGINS  "1" makes any plugin error fatal (for plugin authors).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from zoo.base.settings import TrainSettings, check_schema, merge, within
from zoo.contract import hookspecs
from zoo.contract.specs import (
    NAME_RE,
    CatalogueEntry,
    DataSourceSpec,
    ExporterSpec,
    FamilySpec,
    LoggerSpec,
    SampleOption,
    import_target,
    printable,
    printable_fields,
)
from zoo.errors import UsageError, ZooError, debug_enabled
from zoo.registry.catalogue import builtin_catalogue, validate_entry

if TYPE_CHECKING:
    import click

GROUP = "zoo"
# what plugin code may raise and zoo contains, naming the plugin: anything but Ctrl-C, so a
# plugin that calls sys.exit() cannot end every command silently
PLUGIN_FAULTS = (Exception, SystemExit)
SLOW_SECONDS = 3.0  # plugin code running longer than this gets a line saying which plugin


def plugin_timeout() -> float:
    """Seconds plugin code may take to load or register (ZOO_PLUGIN_TIMEOUT, default 30)
    before zoo goes on without that plugin."""
    text = os.environ.get("ZOO_PLUGIN_TIMEOUT", "").strip()
    try:
        value = float(text) if text else 30.0
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise UsageError(f"ZOO_PLUGIN_TIMEOUT={text!r}: use a positive number of seconds")
    return value


BUILTIN_DIST = "zoo-gen"
HOOKS = (
    "register_families",
    "register_exporters",
    "register_data_sources",
    "register_loggers",
    "register_catalogue",
)
# kind of registered object -> the PluginRecord list that names them
LISTS = {
    "family": "families",
    "exporter": "exporters",
    "data source": "data_sources",
    "logger": "loggers",
    "model": "catalogue",
}
COMMANDS_HOOK = "register_commands"  # needs the CLI, so it runs later: Registry.commands


@dataclass
class PluginRecord:
    """One plugin as `zoo plugins` reports it."""

    name: str
    distribution: str
    version: str
    module: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    exporters: list[str] = field(default_factory=list)
    data_sources: list[str] = field(default_factory=list)
    loggers: list[str] = field(default_factory=list)
    catalogue: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    error: str | None = None
    deprecations: list[str] = field(default_factory=list)

    def origin(self) -> str:
        dist = f"{self.distribution} {self.version}".strip()
        return f"plugin {self.name!r} ({dist})"

    def fail(self, message: str) -> None:
        self.error = f"{self.error}; {message}" if self.error else message

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class PluginError(ZooError):
    pass


@dataclass
class Registry:
    """Everything the plugins registered, and what went wrong while they did."""

    families: dict[str, FamilySpec] = field(default_factory=dict)
    exporters: dict[str, ExporterSpec] = field(default_factory=dict)
    data_sources: dict[str, DataSourceSpec] = field(default_factory=dict)
    loggers: dict[str, LoggerSpec] = field(default_factory=dict)
    catalogue: dict[str, CatalogueEntry] = field(default_factory=dict)
    plugins: list[PluginRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # names claimed by more than one plugin -> the distributions that claim them
    clashes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    strict: bool = False
    _owners: dict[tuple[str, str], str] = field(default_factory=dict)
    _command_hooks: list[tuple[Callable[..., Any], PluginRecord]] = field(default_factory=list)
    _commands: dict[str, click.Command] | None = None
    _verified: set[tuple[str, str]] = field(default_factory=set)

    def family(self, name: str, load: bool = True) -> FamilySpec:
        """The family's spec, once its class imports and implements the model contract;
        ``load=False`` leaves the class unimported (for what the spec alone describes)."""
        self._check_clash("family", name)
        try:
            spec = self.families[name]
        except KeyError:
            raise UsageError(
                f"unknown family {name!r}{suggest(name, self.families)}; "
                f"families: {', '.join(sorted(self.families)) or 'none loaded'}"
            ) from None
        if load:
            self._verify("family", spec)
        return spec

    def exporter(self, name: str) -> ExporterSpec:
        """The exporter's spec, once its target imports and is callable."""
        self._check_clash("exporter", name)
        try:
            spec = self.exporters[name]
        except KeyError:
            raise UsageError(
                f"unknown export format {name!r}{suggest(name, self.exporters)}; "
                f"formats: {', '.join(sorted(self.exporters)) or 'none loaded'}"
            ) from None
        self._verify("exporter", spec)
        return spec

    def data_source(self, source: str) -> tuple[DataSourceSpec, Any]:
        """The spec and loader for ``--data source`` (``name`` or ``name:argument``)."""
        name, colon, _ = source.partition(":")
        spec = self.data_sources.get(name)
        if spec is not None and bool(colon) != bool(spec.argument):
            usage = f"--data {name}:{spec.argument}" if spec.argument else f"--data {name}"
            raise UsageError(f"bad data source {source!r}: use {usage}")
        if spec is None:
            shown = [s.name + (f":{s.argument}" if s.argument else "") for s in self.sources()]
            raise UsageError(
                f"unknown data source {source!r}{suggest(name, self.data_sources)}; "
                f"sources: {', '.join(shown) or 'none loaded'}"
            )
        self._check_clash("data source", name)
        self._verify("data source", spec)
        return spec, import_target(spec.target)

    def sources(self) -> list[DataSourceSpec]:
        return list(self.data_sources.values())

    def logger(self, name: str) -> Any:
        """The factory of logger ``name`` (`zoo.training.loggers`), imported and checked."""
        self._check_clash("logger", name)
        spec = self.loggers.get(name)
        if spec is None:
            raise UsageError(
                f"unknown logger {name!r}{suggest(name, self.loggers)}; "
                f"loggers: {', '.join(sorted(self.loggers)) or 'none loaded'}"
            )
        self._verify("logger", spec)
        return import_target(spec.target)

    def plugin_of(self, kind: str, name: str) -> PluginRecord | None:
        """The plugin that registered ``kind`` (family, exporter, model, command) ``name``."""
        attr = LISTS.get(kind, "commands")
        return next((p for p in self.plugins if name in getattr(p, attr)), None)

    def _verify(
        self, kind: str, spec: FamilySpec | ExporterSpec | DataSourceSpec | LoggerSpec
    ) -> None:
        """Import ``spec.target`` and check it, so a broken plugin fails with its name."""
        if (kind, spec.name) in self._verified:
            return
        try:
            target = import_target(spec.target)
            if kind == "family":
                from zoo.contract.model import check_family_class

                check_family_class(target, spec.name)
            elif not callable(target):
                raise ZooError(f"{kind} {spec.name!r}: {spec.target!r} is not callable")
        except PLUGIN_FAULTS as exc:  # a plugin's module may raise anything while importing
            message = str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}"
            record = self.plugin_of(kind, spec.name)
            origin = record.origin() if record else "unknown plugin"
            raise PluginError(f"{message} (registered by {origin})") from exc
        self._verified.add((kind, spec.name))

    def check(self) -> None:
        """Import and check every family and exporter, and the family of each plugin's
        catalogue entry; failures go to the plugin's ``error`` (`zoo plugins --check`)."""
        checked = (
            ("family", self.families),
            ("exporter", self.exporters),
            ("data source", self.data_sources),
            ("logger", self.loggers),
        )
        for kind, specs in checked:
            for name in sorted(specs):
                try:
                    if kind in ("data source", "logger"):
                        self._verify(kind, specs[name])
                    else:
                        getattr(self, kind)(name)
                except ZooError as exc:
                    self._blame(kind, name, str(exc))
        for plugin in self.plugins:
            for name in plugin.catalogue:
                entry = self.catalogue[name]
                if entry.family not in self.families:
                    self._blame("model", name, f"model {name!r}: no family {entry.family!r}")
                    continue
                try:
                    self.families[entry.family].config.resolve(
                        entry.config, f"the config of {name}"
                    )
                except UsageError as exc:
                    self._blame("model", name, str(exc))

    def _blame(self, kind: str, name: str, message: str) -> None:
        record = self.plugin_of(kind, name)
        if record is not None:
            record.fail(message)
        self.problems.append(message)

    def commands(self, reserved: Iterable[str] = ()) -> dict[str, click.Command]:
        """The commands plugins add through ``register_commands``, collected once.

        Each plugin fills its own `click.Group`, so a failure or a name clash with
        ``reserved`` (the built-in commands) or another plugin is reported against it.
        """
        if self._commands is not None:
            return self._commands
        import click

        self._commands = {}
        owners = dict.fromkeys(reserved, BUILTIN_DIST)
        for hook, record in self._command_hooks:
            group = click.Group()
            try:
                hook(cli=group)
            except PLUGIN_FAULTS as exc:
                record.fail(f"{COMMANDS_HOOK} raised {type(exc).__name__}: {exc}")
                self._problem(f"{record.origin()} failed: {record.error}", exc)
                continue
            for name, command in group.commands.items():
                if name in owners:
                    self._problem(
                        f"command {name!r} of {record.origin()} clashes with the one from "
                        f"{owners[name]}; it is not available"
                    )
                    continue
                owners[name] = record.distribution
                self._commands[name] = command
                record.commands.append(name)
        return self._commands

    def model(self, name: str) -> CatalogueEntry:
        self._check_clash("model", name)
        try:
            return self.catalogue[name]
        except KeyError:
            raise UsageError(
                f"unknown model {name!r}{suggest(name, self.catalogue)}; "
                "run `zoo list` to see the catalogue"
            ) from None

    def _check_clash(self, kind: str, name: str) -> None:
        if (kind, name) in self.clashes:
            dists = " and ".join(self.clashes[kind, name])
            raise PluginError(
                f"{kind} {name!r} is registered by both {dists}; uninstall one of them"
            )

    def _problem(self, message: str, exc: BaseException | None = None) -> None:
        if self.strict:
            raise PluginError(message) from exc
        self.problems.append(message)
        print(f"zoo: warning: {printable(message)}", file=sys.stderr)

    def _claim(self, kind: str, name: str, record: PluginRecord) -> bool:
        owner = self._owners.get((kind, name))
        if owner is None:
            self._owners[kind, name] = record.distribution
            return True
        if BUILTIN_DIST in (owner, record.distribution) and owner != record.distribution:
            # a plugin may never disable a built-in for everyone: the built-in wins, whichever
            # registered first, and the plugin is blamed
            loser = record if owner == BUILTIN_DIST else self.plugin_of(kind, name)
            if loser is not None and loser is not record:
                getattr(loser, LISTS.get(kind, "commands")).remove(name)
                self._owners[kind, name] = BUILTIN_DIST
            origin = loser.origin() if loser else "a plugin"
            message = (
                f"{kind} {name!r} of {origin} has the name of a built-in {kind}; the built-in "
                "is kept (rename it in the plugin)"
            )
            if loser is not None:
                loser.fail(message)
            self._problem(message)
            return record.distribution == BUILTIN_DIST
        self.clashes.setdefault((kind, name), [owner]).append(record.distribution)
        self._problem(
            f"{kind} {name!r} is registered by both {owner} and {record.distribution}; "
            "uninstall one of them"
        )
        return False


@contextmanager
def slow_warning(what: str) -> Iterator[None]:
    """Say on stderr what is still running after SLOW_SECONDS, so a plugin that hangs at
    import does not hang `zoo --help` without a hint; with `--debug`, how long it took."""

    def warn() -> None:
        print(
            f"zoo: {printable(what)} is taking a while (over {SLOW_SECONDS:g} s); "
            "ZOO_PLUGINS=NAME,... loads only the plugins named",
            file=sys.stderr,
            flush=True,
        )

    timer = threading.Timer(SLOW_SECONDS, warn)
    timer.daemon = True
    start = time.perf_counter()
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        if debug_enabled():
            ms = (time.perf_counter() - start) * 1000
            print(f"zoo: debug: {printable(what)}: {ms:.1f} ms", file=sys.stderr, flush=True)


class PluginTimeout(Exception):
    """Plugin code still running after `plugin_timeout`: zoo goes on without the plugin."""


def bounded(what: str, call: Callable[[], Any]) -> Any:
    """``call()`` in a thread of its own, said on stderr after SLOW_SECONDS and abandoned
    after `plugin_timeout` (PluginTimeout), so a plugin that hangs at import or in a hook
    cannot hang every command, the built-ins' included. Its exceptions (SystemExit too) are
    raised here."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # handed to the caller, who contains plugin faults
            failure.append(exc)

    limit = plugin_timeout()
    worker = threading.Thread(target=run, name=f"zoo plugin: {what}", daemon=True)
    with slow_warning(what):
        worker.start()
        worker.join(limit)
    if worker.is_alive():
        raise PluginTimeout(
            f"still running after {limit:g} s; skipped (ZOO_PLUGINS=NAME,... loads only the "
            "plugins named, ZOO_PLUGIN_TIMEOUT waits longer)"
        )
    if failure:
        raise failure[0]
    return result[0]


def suggest(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean ...?)' suffix with the closest names, or ''."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


# `zoo sample`'s own options, which a family's sample options must not shadow
SAMPLE_RESERVED = {
    *("n", "seed", "out", "label", "input", "runtime", "device", "threads", "nrow"),
    *("truncation", "interpolate", "walk", "latents"),  # the latent tools, for every prior
    *("offline", "help", "debug"),  # zoo sample's flags and the CLI's
}
OPTION_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def check_sample_options(spec: FamilySpec) -> None:
    """A family's declared sample options: well-formed, and not `zoo sample`'s own."""
    for option in spec.sample_options:
        where = f"family {spec.name!r}"
        if not isinstance(option, SampleOption):
            raise UsageError(f"{where}: sample_options must hold zoo.SampleOption objects")
        if not OPTION_RE.match(option.name) or option.name in SAMPLE_RESERVED:
            raise UsageError(
                f"{where}: bad sample option name {option.name!r} (lower-case, and none of "
                f"zoo sample's own: {', '.join(sorted(SAMPLE_RESERVED))})"
            )
        if option.type not in ("str", "int", "float"):
            raise UsageError(f"{where}: sample option {option.name!r} has type {option.type!r}")
        if option.range:
            try:
                within(0, option.range)
            except ValueError:
                raise UsageError(
                    f"{where}: sample option {option.name!r} has a bad range {option.range!r}"
                ) from None


def _recorders(registry: Registry, record: PluginRecord) -> dict[str, Callable[[Any], None]]:
    """The ``register`` callables handed to each hook, validating as objects arrive."""

    def check_name(kind: str, obj: Any, cls: type[Any]) -> bool:
        if not isinstance(obj, cls):
            registry._problem(
                f"plugin {record.name!r} ({record.distribution}) registered a "
                f"{type(obj).__name__} as a {kind}; expected zoo.{cls.__name__}"
            )
            return False
        if not NAME_RE.match(obj.name):
            registry._problem(
                f"plugin {record.name!r} ({record.distribution}) registered a {kind} with "
                f"the bad name {obj.name!r}; use lower-case letters, digits, '-' and '_'"
            )
            return False
        targeted = FamilySpec | ExporterSpec | DataSourceSpec | LoggerSpec
        if isinstance(obj, targeted) and ":" not in obj.target:
            registry._problem(
                f"plugin {record.name!r} ({record.distribution}) registered {kind} "
                f"{obj.name!r} with target {obj.target!r}; expected 'package.module:attr'"
            )
            return False
        return registry._claim(kind, obj.name, record)

    def family(spec: FamilySpec) -> None:
        if not check_name("family", spec, FamilySpec):
            return
        try:
            check_schema(spec.config, f"family {spec.name!r}")
            check_sample_options(spec)
            merge(
                TrainSettings.defaults(),
                spec.train,
                f"the train of family {spec.name!r}",
                TrainSettings,
            )
        except UsageError as exc:
            registry._problem(f"plugin {record.name!r} ({record.distribution}): {exc}")
            return
        registry.families[spec.name] = printable_fields(spec)
        record.families.append(spec.name)

    def named(kind: str, cls: type) -> Callable[[Any], None]:
        """The recorder of a kind that needs no more than a valid, unclaimed name."""

        def register(spec: Any) -> None:
            if check_name(kind, spec, cls):
                getattr(registry, LISTS[kind])[spec.name] = printable_fields(spec)
                getattr(record, LISTS[kind]).append(spec.name)

        return register

    def model(entry: CatalogueEntry) -> None:
        if not check_name("model", entry, CatalogueEntry):
            return
        entry = printable_fields(entry)
        try:
            validate_entry(entry)
        except UsageError as exc:
            registry._problem(f"plugin {record.name!r} ({record.distribution}): {exc}")
            return
        registry.catalogue[entry.name] = entry
        record.catalogue.append(entry.name)

    return {
        "register_families": family,
        "register_exporters": named("exporter", ExporterSpec),
        "register_data_sources": named("data source", DataSourceSpec),
        "register_loggers": named("logger", LoggerSpec),
        "register_catalogue": model,
    }


def _wanted() -> set[str] | None:
    value = os.environ.get("ZOO_PLUGINS")
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    unique = []
    # editable installs can expose the same entry point twice (egg-info beside dist-info)
    for ep in metadata.entry_points(group=GROUP):
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            unique.append(ep)
    return unique


def _unknown_hooks(
    registry: Registry, pm: pluggy.PluginManager, records: dict[str, PluginRecord]
) -> None:
    """pluggy keeps implementations of hooks nobody specified (a misspelt name) and never
    calls them: report each against its plugin."""
    known = [*HOOKS, COMMANDS_HOOK]
    for name, caller in vars(pm.hook).items():
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            record = records.get(impl.plugin_name)
            if record is None:
                continue
            record.fail(f"implements unknown hook {name!r}{suggest(name, known)}")
            registry._problem(
                f"plugin {record.name!r} ({record.distribution}) implements unknown hook "
                f"{name!r}{suggest(name, known)}; zoo's hooks: {', '.join(known)}"
            )


def _run_hooks(registry: Registry, pm: pluggy.PluginManager, records: dict[str, PluginRecord]):
    """Call every hook implementation on its own, so one failure names its plugin."""
    for hook_name in (*HOOKS, COMMANDS_HOOK):
        # pluggy orders implementations last-registered first; keep registration order
        for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
            record = records[impl.plugin_name]
            record.hooks.append(hook_name)
            if hook_name == COMMANDS_HOOK:
                registry._command_hooks.append((impl.function, record))
                continue
            # pluggy lets an implementation take fewer arguments than its spec
            register = _recorders(registry, record)[hook_name]
            try:
                kwargs = {"register": register} if impl.argnames else {}
                returned = bounded(
                    f"{hook_name} of {record.origin()}",
                    lambda f=impl.function, k=kwargs: f(**k),  # type: ignore[misc]
                )
                if returned is not None:
                    raise TypeError(
                        f"returned {type(returned).__name__} instead of calling register(...)"
                    )
            except PluginError:
                raise
            except PluginTimeout as exc:
                message = f"{hook_name} {exc}"
                record.fail(message)
                registry._problem(f"plugin {record.name!r} ({record.distribution}): {message}")
            except PLUGIN_FAULTS as exc:
                message = f"{hook_name} raised {type(exc).__name__}: {exc}"
                record.fail(message)
                registry._problem(
                    f"plugin {record.name!r} ({record.distribution}) failed: {message}", exc
                )


def build_registry(
    extra: Iterable[tuple[Any, PluginRecord]] = (), *, entry_points: bool = True
) -> Registry:
    """Load the built-in catalogue, every wanted entry point, then ``extra`` plugins."""
    registry = Registry(strict=os.environ.get("ZOO_STRICT_PLUGINS", "") not in ("", "0"))
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    records: dict[str, PluginRecord] = {}

    def add(plugin: Any, record: PluginRecord) -> None:
        registry.plugins.append(record)
        key = f"{record.distribution}:{record.name}"
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pm.register(plugin, name=key)
        except Exception as exc:  # pluggy rejects hookimpls that do not match a spec
            record.error = f"{type(exc).__name__}: {exc}"
            registry._problem(
                f"plugin {record.name!r} ({record.distribution}) is invalid: {record.error}",
                exc,
            )
            return
        for warning in caught:  # a hookspec's warn_on_impl: the deprecation path of a hook
            record.deprecations.append(str(warning.message))
            print(f"zoo: warning: {record.origin()}: {warning.message}", file=sys.stderr)
        if not pm.get_hookcallers(plugin):  # e.g. an entry point naming the wrong object
            record.fail("implements no zoo hooks")
            registry._problem(
                f"plugin {record.name!r} ({record.distribution}) implements no zoo hooks; "
                f"check that its entry point {record.module!r} names the hook module"
            )
        records[key] = record

    wanted = _wanted()
    for ep in _entry_points() if entry_points else []:
        dist = ep.dist.name if ep.dist else "unknown"
        if wanted is not None and ep.name not in wanted and dist not in wanted:
            continue
        record = PluginRecord(
            name=printable(ep.name),
            distribution=printable(dist),
            version=printable(ep.dist.version) if ep.dist else "",
            module=printable(ep.value),
            builtin=dist == BUILTIN_DIST,
        )
        try:
            plugin = bounded(f"loading {record.origin()}", ep.load)
        except PluginTimeout as exc:
            record.error = f"loading {exc}"
            registry.plugins.append(record)
            registry._problem(f"plugin {ep.name!r} ({dist}): {record.error}")
            continue
        except PLUGIN_FAULTS as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            registry.plugins.append(record)
            registry._problem(f"plugin {ep.name!r} ({dist}) failed to load: {record.error}", exc)
            continue
        add(plugin, record)
    for plugin, record in extra:
        add(plugin, record)
    _unknown_hooks(registry, pm, records)

    for entry in builtin_catalogue():
        registry.catalogue[entry.name] = entry
        registry._owners["model", entry.name] = BUILTIN_DIST
    _run_hooks(registry, pm, records)
    return registry


_current: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _current
    if _current is None:
        _current = build_registry()
    return _current


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (tests, embedding applications)."""
    global _current
    _current = registry
