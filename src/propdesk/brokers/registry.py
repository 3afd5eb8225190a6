"""The broker registry: a broker's name -> its settings model and its factory; what ``--broker NAME`` chooses from.

A broker is one package under ``brokers/`` plus one :class:`BrokerEntry` in :data:`_BUILTIN` (or a
:func:`register` call). An entry names its settings model (a pydantic ``BaseModel``: :class:`~propdesk.brokers.sim.
config.SimConfig`, :class:`~propdesk.brokers.projectx.config.ProjectXSettings`) and its factory, either as objects or
as ``"module:attribute"`` paths that are imported only when first used, so listing or validating broker names never
imports a broker's dependencies (the ProjectX adapter's HTTP and SignalR clients).

A factory has the signature ``factory(settings, *, account_id, clock, **deps) -> Broker``: ``settings`` is an
instance of the entry's settings model, ``account_id`` the account it trades, ``clock`` the node's clock, and
``deps`` whatever else that broker takes (the simulated broker: ``starting_balance``, ``contracts``, ``history``;
ProjectX: ``rest``, ``hub_factory``, ``last_fill_ns``).

Use: ``get(name)`` (the entry, or a one-line ``ConfigError`` listing the known names), ``names()``,
``create(name, settings, account_id=..., clock=..., **deps)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from pydantic import BaseModel, ValidationError

from propdesk.core.errors import ConfigError

if TYPE_CHECKING:
    from propdesk.brokers.base import Broker
    from propdesk.core.clock import Clock
    from propdesk.model.identifiers import AccountId

__all__ = ["BrokerEntry", "BrokerFactory", "create", "get", "names", "register"]


class BrokerFactory(Protocol):
    """Builds a broker: ``(settings, *, account_id, clock, **deps) -> Broker`` (see the module docstring)."""

    def __call__(self, settings: Any, *, account_id: AccountId, clock: Clock, **deps: Any) -> Broker: ...


def _load(path: str, what: str) -> Any:
    """The object at ``"module:attribute"``.

    Raises:
        ConfigError: the module cannot be imported or has no such attribute (the message names ``what``).
    """
    module, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {path!r} cannot be loaded: {exc}") from None


@dataclass(frozen=True, slots=True)
class BrokerEntry:
    """One registered broker.

    Attributes:
        name: what ``--broker`` takes (``sim``, ``projectx``): lower case letters, digits, ``-`` and ``_``.
        settings_cls: its settings model (a pydantic ``BaseModel`` subclass), or its ``"module:Class"`` path.
        factory: its :class:`BrokerFactory`, or its ``"module:function"`` path.
        description: one line for help texts.
        live: True for a broker that talks to a real venue (orders reach a real account).
    """

    name: str
    settings_cls: type[BaseModel] | str
    factory: BrokerFactory | str
    description: str = ""
    live: bool = False

    def settings_type(self) -> type[BaseModel]:
        """The settings model (imported on first use).

        Raises:
            ConfigError: the path cannot be imported, or does not name a ``BaseModel`` subclass.
        """
        cls = self.settings_cls
        if isinstance(cls, str):
            cls = _load(cls, f"broker {self.name!r}: settings model")
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            raise ConfigError(f"broker {self.name!r}: settings model {cls!r} is not a pydantic BaseModel")
        return cls

    def factory_fn(self) -> BrokerFactory:
        """The factory (imported on first use).

        Raises:
            ConfigError: the path cannot be imported or does not name a callable.
        """
        fn = self.factory
        if isinstance(fn, str):
            fn = _load(fn, f"broker {self.name!r}: factory")
        if not callable(fn):
            raise ConfigError(f"broker {self.name!r}: factory {fn!r} is not callable")
        return cast("BrokerFactory", fn)

    def settings(self, values: BaseModel | Mapping[str, Any] | None = None) -> BaseModel:
        """An instance of the settings model: ``values`` itself if it is one, the model's defaults for ``None``, else
        the model validated from the mapping.

        Raises:
            ConfigError: ``values`` is another model, or fails validation (the first error, with its field).
        """
        cls = self.settings_type()
        if values is None:
            values = {}
        if isinstance(values, cls):
            return values
        if isinstance(values, BaseModel):
            raise ConfigError(f"broker {self.name!r} takes {cls.__name__} settings, not {type(values).__name__}")
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            raise ConfigError(f"broker {self.name!r}: {where}: {err['msg']}") from None

    def create(
        self,
        settings: BaseModel | Mapping[str, Any] | None,
        *,
        account_id: AccountId,
        clock: Clock,
        **deps: Any,
    ) -> Broker:
        """A new broker of this kind for ``account_id`` on ``clock`` (``settings`` as :meth:`settings` takes them).

        Raises:
            ConfigError: as :meth:`settings` and :meth:`factory_fn`; whatever the factory raises.
        """
        return self.factory_fn()(self.settings(settings), account_id=account_id, clock=clock, **deps)


_BUILTIN: tuple[BrokerEntry, ...] = (
    BrokerEntry(
        "sim",
        "propdesk.brokers.sim.config:SimConfig",
        "propdesk.brokers.sim.broker:create_broker",
        "the simulated CME exchange (backtests, replays, the gateway emulator)",
    ),
    BrokerEntry(
        "projectx",
        "propdesk.brokers.projectx.config:ProjectXSettings",
        "propdesk.brokers.projectx.broker:create_broker",
        "ProjectX Gateway API (TopstepX): live orders on a real account",
        live=True,
    ),
)

_REGISTRY: dict[str, BrokerEntry] = {e.name: e for e in _BUILTIN}


def register(entry: BrokerEntry, *, replace: bool = False) -> None:
    """Add ``entry`` (a broker outside this package, or a test double).

    Raises:
        ConfigError: the name is malformed, or already registered and ``replace`` is False.
    """
    ok = entry.name and entry.name[0].isalpha() and all(c.isalnum() or c in "-_" for c in entry.name)
    if not ok or entry.name != entry.name.lower():
        raise ConfigError(f"broker name {entry.name!r} must be lower case letters, digits, '-' or '_'")
    if entry.name in _REGISTRY and not replace:
        raise ConfigError(f"broker {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry


def names() -> tuple[str, ...]:
    """The registered broker names, in registration order (``("sim", "projectx")`` built in)."""
    return tuple(_REGISTRY)


def get(name: str) -> BrokerEntry:
    """The entry of ``name``.

    Raises:
        ConfigError: unknown name; the one-line message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown broker {name!r}; known brokers: {', '.join(_REGISTRY)}") from None


def create(
    name: str,
    settings: BaseModel | Mapping[str, Any] | None = None,
    *,
    account_id: AccountId,
    clock: Clock,
    **deps: Any,
) -> Broker:
    """A new broker named ``name`` (see :meth:`BrokerEntry.create`).

    Raises:
        ConfigError: unknown name, settings of the wrong model or failing validation; whatever the factory raises.
    """
    return get(name).create(settings, account_id=account_id, clock=clock, **deps)
