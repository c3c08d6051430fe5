"""Name -> class registries for model families and datamodules.

One small :class:`Registry` serves both kinds (the idea of timm's ``_registry.py``, much smaller).
Classes are registered, never factory functions, so LightningCLI and ``load_from_checkpoint`` see
them. Built-in families are imported, and plug-ins from other packages are loaded through the
entry-point groups ``genlight.models`` / ``genlight.datamodules``, the first time a registry is read.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def snake_case(name: str) -> str:
    """``BetaVAE`` -> ``beta_vae``, ``WGANGP`` -> ``wgangp``, ``PixelCNN`` -> ``pixel_cnn``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


class Registry(Generic[T]):
    """A registry of classes that subclass ``base``, keyed by lowercase snake_case names.

    Args:
        kind: what is registered, used in messages (``"model"``).
        base: dotted path of the class every entry must subclass (resolved lazily).
        group: entry-point group that plug-in packages use to add entries.
        builtins: module imported on first read so that every built-in entry is registered.
    """

    def __init__(self, kind: str, base: str, group: str, builtins: str) -> None:
        self.kind = kind
        self.group = group
        self._base_path = base
        self._builtins = builtins
        self._entries: dict[str, type[T]] = {}
        self._aliases: dict[str, str] = {}
        self._tags: dict[str, frozenset[str]] = {}
        self._loaded = False
        self._loading = False

    # ------------------------------------------------------------------ registration
    @property
    def base(self) -> type:
        module, _, name = self._base_path.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def register(
        self, name: str | None = None, *, aliases: Sequence[str] = (), tags: Sequence[str] = ()
    ) -> Callable[[type[T]], type[T]]:
        """Class decorator: ``@register_model("vae")``; the name defaults to ``snake_case(cls.__name__)``."""

        def decorator(cls: type[T]) -> type[T]:
            self.add(cls, name, aliases=aliases, tags=tags)
            return cls

        if isinstance(name, type):  # used bare: @register_model
            cls, name = name, None
            return decorator(cls)
        return decorator

    def add(
        self, cls: type[T], name: str | None = None, *, aliases: Sequence[str] = (), tags: Sequence[str] = ()
    ) -> None:
        """Register ``cls`` under ``name``; a name taken by another class raises ``ValueError``."""
        if not isinstance(cls, type) or not issubclass(cls, self.base):
            raise TypeError(
                f"cannot register {cls!r} as a {self.kind}: register a class that subclasses "
                f"{self._base_path} (LightningCLI and checkpoints need the class, not a factory)"
            )
        name = name or snake_case(cls.__name__)
        for key in (name, *aliases):
            if not _NAME_RE.match(key):
                raise ValueError(f"{self.kind} name {key!r} must be lowercase snake_case, e.g. 'beta_vae'")
            owner = self._entries.get(key) or self._entries.get(self._aliases.get(key, ""))
            if owner is not None and _qualname(owner) != _qualname(cls):
                raise ValueError(
                    f"{self.kind} name {key!r} is already taken by {_qualname(owner)}; "
                    f"choose another name for {_qualname(cls)}"
                )
        self._entries[name] = cls
        self._tags[name] = frozenset(tags)
        for alias in aliases:
            self._aliases[alias] = name

    # ------------------------------------------------------------------ loading
    def load_plugins(self) -> None:
        """Import the built-ins and every entry point of ``self.group``, once.

        A plug-in that fails to import, or whose name is taken by another class, gives a one-line
        warning naming it, never a crash. A class registered by its decorator under one name and by an
        entry point under another answers to both (the entry-point name becomes an alias).
        """
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            importlib.import_module(self._builtins)
            for ep in _entry_points(self.group):
                try:
                    self._add_entry_point(ep.name, ep.load())
                except Exception as err:  # noqa: BLE001 - a broken plug-in must not break genlight
                    warnings.warn(
                        f"genlight: skipped {self.kind} plug-in {ep.name!r} ({ep.value}) from entry-point "
                        f"group {self.group!r}: {type(err).__name__}: {err}",
                        stacklevel=2,
                    )
            self._loaded = True
        finally:
            self._loading = False

    def _add_entry_point(self, name: str, obj: Any) -> None:
        """Register an entry point's class under its name; a class its decorator registered already (as
        the entry point's import ran it) under another name gets the entry point's name as an alias, so
        both names work and the class is listed once."""
        known = next((key for key, cls in self._entries.items() if cls is obj), None)
        if known is None:
            self.add(obj, name)
        elif name != known:
            self.add(obj, known, aliases=(name,), tags=tuple(self._tags[known]))  # refuses a name another class holds

    def aliases(self, name: str) -> list[str]:
        """The other names of the entry ``name`` (aliases, entry-point names), sorted."""
        key = self.resolve(name)
        return sorted(alias for alias, target in self._aliases.items() if target == key)

    # ------------------------------------------------------------------ lookup
    def resolve(self, name: str) -> str | None:
        """The registered name for ``name`` (a name, an alias or a class name), or ``None``."""
        self.load_plugins()
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        for key, cls in self._entries.items():
            if cls.__name__ == name:
                return key
        return None

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; an unknown name raises ``KeyError`` with close matches."""
        key = self.resolve(name)
        if key is None:
            raise KeyError(self.unknown_message(name))
        return self._entries[key]

    def unknown_message(self, name: str) -> str:
        choices = sorted(self._entries) + sorted(self._aliases)
        close = difflib.get_close_matches(name.lower(), choices, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return (
            f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(sorted(self._entries))} "
            f"(`genlight list {self.kind}s`)."
        )

    def create(self, name: str, **kwargs: Any) -> T:
        """Build the class registered as ``name``; ``None`` kwargs keep the class defaults (as timm)."""
        return self.get(name)(**{k: v for k, v in kwargs.items() if v is not None})

    def list(
        self,
        filter: str | Sequence[str] = "",
        exclude: str | Sequence[str] = "",
        *,
        capability: type | None = None,
        tag: str | None = None,
    ) -> list[str]:
        """Sorted names matching any ``filter`` glob and no ``exclude`` glob.

        ``capability`` keeps classes that implement a protocol from :mod:`genlight.types`
        (checked on the class), ``tag`` those registered with that tag.
        """
        self.load_plugins()
        includes = [filter] if isinstance(filter, str) else list(filter)
        excludes = [exclude] if isinstance(exclude, str) else list(exclude)
        names = []
        for name, cls in self._entries.items():
            if includes and includes != [""] and not any(fnmatch.fnmatch(name, p) for p in includes):
                continue
            if any(p and fnmatch.fnmatch(name, p) for p in excludes):
                continue
            if capability is not None and not _implements(cls, capability):
                continue
            if tag is not None and tag not in self._tags[name]:
                continue
            names.append(name)
        return sorted(names)

    def class_path(self, name: str) -> str:
        """``"vae"`` -> ``"genlight.modules.vae.VAE"`` (what LightningCLI's ``class_path`` takes)."""
        return _qualname(self.get(name))

    def name_of(self, obj_or_cls: Any) -> str | None:
        """The registered name of a class or instance, or ``None`` if it is not registered."""
        cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
        self.load_plugins()
        for key, registered in self._entries.items():
            if registered is cls:
                return key
        return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.resolve(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _implements(cls: type[Any], protocol: type) -> bool:
    """Whether ``cls`` defines every method of a protocol and has each of its data attributes: on the
    class, annotated in its body (``num_classes: int``), or as an ``__init__`` argument (attributes a
    family sets in ``__init__``, so the class itself does not have them)."""
    import inspect

    annotations = getattr(protocol, "__annotations__", {})
    methods = {k for k in vars(protocol) if not k.startswith("_") and k not in annotations}
    if not all(callable(getattr(cls, m, None)) for m in methods):
        return False
    declared = set()
    for klass in cls.__mro__:
        declared |= set(vars(klass).get("__annotations__", {}))
    try:
        declared |= set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        pass
    declared |= _assigned_in_init(cls)
    return all(hasattr(cls, a) or a in declared for a in annotations if not a.startswith("_"))


def _assigned_in_init(cls: type) -> set[str]:
    """Names assigned as ``self.<name> = ...`` in the ``__init__`` of ``cls`` or its bases (read from source)."""
    import inspect

    names: set[str] = set()
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None or klass.__module__.startswith(("torch.", "lightning.", "builtins")):
            continue
        try:
            source = inspect.getsource(init)
        except (OSError, TypeError):
            continue
        names |= set(re.findall(r"self\.([A-Za-z_]\w*)\s*(?::[^=\n]+)?=(?!=)", source))
    return names


def import_class(path: str) -> type[Any]:
    """``"genlight.modules.vae.VAE"`` -> the class."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=group))


MODELS: Registry = Registry("model", "genlight.module.GenerativeModule", "genlight.models", "genlight.modules")
DATAMODULES: Registry = Registry(
    "datamodule", "genlight.datamodules.base.GenerativeDataModule", "genlight.datamodules", "genlight.datamodules"
)

#: the datamodule attributes linked into a model's ``__init__`` when it takes them (as the CLI does)
LINKED_ATTRIBUTES = ("image_shape", "num_classes", "num_levels")


def create_model(name: str, datamodule: Any = None, **kwargs: Any) -> Any:
    """Build the model registered as ``name``; ``None`` kwargs keep the class defaults.

    With ``datamodule`` (any object with ``image_shape`` / ``num_classes`` / ``num_levels``
    attributes, e.g. a :class:`~genlight.datamodules.base.GenerativeDataModule`), the attributes the
    model's ``__init__`` takes are linked from it, as ``genlight fit`` links them; explicit ``kwargs``
    win. ``create_model("vae", datamodule=create_datamodule("mnist"))`` builds a VAE for 1x28x28 images
    with 256 levels.

    A family whose ``ema_decay`` is above 0 (the GANs, DDPM, ...) averages its weights only under the
    :class:`~genlight.callbacks.EMA` callback, which ``genlight fit`` adds and a plain ``Trainer`` needs
    passed: ``Trainer(callbacks=[genlight.callbacks.EMA()]).fit(model, ...)`` (the fit warns once
    without it); the callback reads the family's decay and target.
    """
    if datamodule is not None:
        import inspect

        params = inspect.signature(MODELS.get(name).__init__).parameters
        linked = {a: getattr(datamodule, a) for a in LINKED_ATTRIBUTES if a in params and hasattr(datamodule, a)}
        kwargs = {**linked, **{k: v for k, v in kwargs.items() if v is not None or k not in linked}}
    return MODELS.create(name, **kwargs)


register_model = MODELS.register
list_models = MODELS.list
get_model_class = MODELS.get
register_datamodule = DATAMODULES.register
create_datamodule = DATAMODULES.create
list_datamodules = DATAMODULES.list
get_datamodule_class = DATAMODULES.get
