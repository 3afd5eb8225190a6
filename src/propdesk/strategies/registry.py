"""Strategy specs: resolving ``--strategy SPEC`` to a :class:`~propdesk.strategies.base.Strategy` class, and
building one from ``--param k=v`` pairs.

``propdesk backtest --strategy SPEC --param fast=10`` (and ``run --replay``, ``run --broker projectx``) resolves
``SPEC`` here with :func:`resolve_strategy` and builds it with :func:`build_strategy`. A spec is one of:

=============================== ======================================================================================
``sma_cross``                   a bundled strategy (:data:`STRATEGIES`: ``sma_cross``, ``overnight_range``,
                                ``mean_reversion``, ``trend_following``); a bundled name wins over an installed one
``my_strategy``                 an installed strategy: an entry point of the group ``propdesk.strategies`` (below)
``package.module:ClassName``    a class in an importable module (``importlib.import_module``; ``sys.path`` as usual)
``path/to/file.py:ClassName``   a class in a Python file, loaded on its own under a unique module name
                                (``importlib.util.spec_from_file_location``); relative paths are from the working
                                directory; a spec whose left part ends in ``.py`` or contains a path separator is a file
=============================== ======================================================================================

The class must subclass :class:`~propdesk.strategies.base.Strategy`, set its own ``name`` (a non-empty string: the
default tag and the name in reports) and its ``config_cls`` (a :class:`~propdesk.strategies.base.StrategyConfig`
subclass, its parameters), possibly through a base class other than ``Strategy``.

**For package authors.** Make a strategy installable under a name with an entry point in the package's
``pyproject.toml``::

    [project.entry-points."propdesk.strategies"]
    my_strategy = "my_package.strategies:MyStrategy"

after which ``propdesk strategies list`` shows it (source ``installed``) and ``--strategy my_strategy`` runs it.
The entry point's name is the spec; keep it equal to the class's ``name``.

Every failure is a :class:`~propdesk.core.errors.ConfigError` of one line naming the spec and what was wrong (no
such bundled or installed name, module not found, file not found, an error while importing it, no such class, not a
``Strategy`` subclass, no ``name`` or ``config_cls``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Final, Literal

from propdesk.core.errors import ConfigError
from propdesk.strategies.base import Strategy, StrategyConfig
from propdesk.strategies.mean_reversion import MeanReversion
from propdesk.strategies.overnight_range import OvernightRange
from propdesk.strategies.sma_cross import SmaCross
from propdesk.strategies.trend_following import TrendFollowing

__all__ = [
    "ENTRY_POINT_GROUP",
    "STRATEGIES",
    "StrategyInfo",
    "available_strategies",
    "build_strategy",
    "get_strategy",
    "resolve_strategy",
    "resolve_strategy_info",
]

ENTRY_POINT_GROUP: Final[str] = "propdesk.strategies"
"""The entry-point group installed packages register strategies under (``name = "module:Class"``)."""

STRATEGIES: Final[dict[str, type[Strategy]]] = {
    cls.name: cls for cls in (SmaCross, OvernightRange, MeanReversion, TrendFollowing)
}
"""The bundled strategy classes by their ``name``."""

_FILE_MODULE_PREFIX: Final[str] = "propdesk_user_strategy_"
"""Module names of strategy files loaded by path: the prefix, a hash of the resolved path, the file's stem."""

Source = Literal["bundled", "installed", "module", "path"]


@dataclass(frozen=True, slots=True)
class StrategyInfo:
    """A resolvable strategy.

    Attributes:
        spec: what ``--strategy`` takes to run it (``sma_cross``, ``my_strategy``, ``pkg.mod:Cls``, ``f.py:Cls``).
        cls: the class.
        source: ``bundled``, ``installed`` (an entry point), ``module`` or ``path``.
        origin: where it comes from: ``module:Class`` for bundled and module specs, the distribution and the entry
            point's value for installed ones, the file for a path.
    """

    spec: str
    cls: type[Strategy]
    source: Source
    origin: str

    @property
    def description(self) -> str:
        """The first line of the class's docstring (empty without one)."""
        doc = inspect.getdoc(self.cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


def _entry_points() -> list[metadata.EntryPoint]:
    """The installed entry points of :data:`ENTRY_POINT_GROUP`, by name (the first of a duplicated name)."""
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)
    return sorted(seen.values(), key=lambda e: e.name)


def _is_file_spec(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def resolve_strategy(spec: str) -> type[Strategy]:
    """The strategy class of ``spec`` (see the module docstring for the grammar).

    Raises:
        ConfigError: one line naming the spec and what was wrong.
    """
    return _resolve(spec).cls


def resolve_strategy_info(spec: str) -> StrategyInfo:
    """The strategy of ``spec`` with where it comes from (source and origin).

    Raises:
        ConfigError: as :func:`resolve_strategy`.
    """
    return _resolve(spec)


def get_strategy(spec: str) -> type[Strategy]:
    """The strategy class of ``spec``: a bundled or installed name, ``module:Class`` or ``file.py:Class``.

    Raises:
        ConfigError: as :func:`resolve_strategy`; for an unknown name the message lists the known names.
    """
    return resolve_strategy(spec)


def build_strategy(spec: str, params: dict[str, str]) -> Strategy:
    """Build the strategy of ``spec`` from string parameters (coerced and validated by its config model).

    Raises:
        ConfigError: an unresolvable spec (:func:`resolve_strategy`), or an unknown or invalid parameter (the
            message names it and, for an unknown one, lists the valid keys).
    """
    return resolve_strategy(spec).from_params(params)


def available_strategies(broken: list[str] | None = None) -> list[StrategyInfo]:
    """The bundled strategies, then the installed ones (entry points, by name; one whose name a bundled strategy
    already has is left out, as ``--strategy`` would never reach it).

    Args:
        broken: when given, an installed entry point that cannot be loaded is left out and its error message
            appended here instead of raised.

    Raises:
        ConfigError: without ``broken``, an installed entry point that cannot be loaded or is not a valid strategy
            (the message names the entry point and its distribution).
    """
    out = [_bundled(name, cls) for name, cls in STRATEGIES.items()]
    for ep in _entry_points():
        if ep.name in STRATEGIES:
            continue
        try:
            out.append(_load_entry_point(ep.name, ep))
        except ConfigError as exc:
            if broken is None:
                raise
            broken.append(str(exc))
    return out


# ------------------------------------------------------------------------------------------------------ resolving


def _resolve(spec: str) -> StrategyInfo:
    text = spec.strip()
    if not text:
        raise ConfigError("strategy '': empty spec (a name such as sma_cross, module:Class or path/to/file.py:Class)")
    if ":" not in text:
        return _resolve_name(spec, text)
    target, _, attr = text.rpartition(":")
    if not target or not attr:
        raise ConfigError(f"strategy {spec!r}: expected module.path:ClassName or path/to/file.py:ClassName")
    if _is_file_spec(target):
        path = Path(target).expanduser()
        module = _load_file(spec, path)
        return StrategyInfo(text, _check_class(spec, _attr(spec, module, attr, str(path))), "path", str(path))
    module = _import_module(spec, target)
    return StrategyInfo(text, _check_class(spec, _attr(spec, module, attr, f"module {target}")), "module", text)


def _resolve_name(spec: str, name: str) -> StrategyInfo:
    cls = STRATEGIES.get(name)
    if cls is not None:
        return _bundled(name, cls)
    eps = {ep.name: ep for ep in _entry_points()}
    ep = eps.get(name)
    if ep is not None:
        return _load_entry_point(spec, ep)
    known = ", ".join(sorted({*STRATEGIES, *eps}))
    raise ConfigError(
        f"unknown strategy {spec!r}; known strategies: {known} (or give module.path:ClassName or "
        "path/to/file.py:ClassName)"
    )


def _bundled(name: str, cls: type[Strategy]) -> StrategyInfo:
    return StrategyInfo(name, cls, "bundled", f"{cls.__module__}:{cls.__qualname__}")


def _load_entry_point(spec: str, ep: metadata.EntryPoint) -> StrategyInfo:
    dist = ep.dist.name if ep.dist is not None else "?"
    where = f"entry point {ep.name} = {ep.value!r} of {dist}"
    try:
        obj = ep.load()
    except ModuleNotFoundError as exc:
        raise ConfigError(f"strategy {spec!r}: {where}: module not found ({exc.name})") from None
    except AttributeError:
        raise ConfigError(f"strategy {spec!r}: {where}: no such class") from None
    except Exception as exc:  # the package's own code failed while importing
        raise ConfigError(f"strategy {spec!r}: {where}: importing it failed: {_one_line(exc)}") from None
    return StrategyInfo(ep.name, _check_class(spec, obj, where), "installed", f"{dist} ({ep.value})")


def _import_module(spec: str, name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise ConfigError(f"strategy {spec!r}: module not found: {name}") from None
        raise ConfigError(f"strategy {spec!r}: importing module {name} failed: {_one_line(exc)}") from None
    except Exception as exc:  # the module's own code failed
        raise ConfigError(f"strategy {spec!r}: importing module {name} failed: {_one_line(exc)}") from None


def _load_file(spec: str, path: Path) -> ModuleType:
    """Execute the strategy file ``path`` as a module of its own (cached in ``sys.modules`` by its resolved path,
    so loading the same file twice gives the same classes)."""
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "file not found"
        raise ConfigError(f"strategy {spec!r}: {what}: {path}")
    if path.suffix != ".py":
        raise ConfigError(f"strategy {spec!r}: {path} is not a Python file (*.py)")
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in resolved.stem)
    mod_name = f"{_FILE_MODULE_PREFIX}{digest}_{stem}"
    cached = sys.modules.get(mod_name)
    if cached is not None:
        return cached
    import_spec = importlib.util.spec_from_file_location(mod_name, resolved)
    if import_spec is None or import_spec.loader is None:
        raise ConfigError(f"strategy {spec!r}: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(import_spec)
    sys.modules[mod_name] = module  # pydantic and dataclasses resolve annotations through sys.modules
    try:
        import_spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[mod_name]
        raise ConfigError(f"strategy {spec!r}: {path}, line {exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:  # the file's own code failed
        del sys.modules[mod_name]
        raise ConfigError(f"strategy {spec!r}: loading {path} failed: {_one_line(exc)}") from None
    return module


def _attr(spec: str, module: ModuleType, attr: str, where: str) -> object:
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            defined = sorted(
                n
                for n, v in vars(module).items()
                if inspect.isclass(v) and issubclass(v, Strategy) and v.__module__ == module.__name__
            )
            hint = f" (its strategies: {', '.join(defined)})" if defined else " (it defines no Strategy subclass)"
            raise ConfigError(f"strategy {spec!r}: no class {attr} in {where}{hint}")
        obj = getattr(obj, part)
    return obj


def _check_class(spec: str, obj: object, where: str = "") -> type[Strategy]:
    label = f"strategy {spec!r}: " + (f"{where}: " if where else "")
    if not inspect.isclass(obj):
        raise ConfigError(f"{label}{_name_of(obj)} is not a class but a {type(obj).__name__}")
    if obj is Strategy:
        raise ConfigError(f"{label}Strategy is the base class itself; name a subclass of it")
    if not issubclass(obj, Strategy):
        raise ConfigError(f"{label}{obj.__qualname__} is not a subclass of propdesk.strategies.base.Strategy")
    owners = [k for k in obj.__mro__ if issubclass(k, Strategy) and k is not Strategy]
    if not any("name" in vars(k) for k in owners) or not isinstance(obj.name, str) or not obj.name.strip():
        raise ConfigError(f"{label}{obj.__qualname__} sets no name (a class attribute: name = 'my_strategy')")
    config_cls = obj.config_cls
    if not any("config_cls" in vars(k) for k in owners):
        raise ConfigError(
            f"{label}{obj.__qualname__} sets no config_cls (a StrategyConfig subclass holding its parameters)"
        )
    if not (inspect.isclass(config_cls) and issubclass(config_cls, StrategyConfig)):
        raise ConfigError(
            f"{label}{obj.__qualname__}.config_cls is {_name_of(config_cls)}, not a StrategyConfig subclass"
        )
    return obj


def _name_of(obj: object) -> str:
    return str(getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
