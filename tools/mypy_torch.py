"""A mypy plugin: an attribute that ``torch.nn.Module.__getattr__`` resolves (a parameter, buffer or
sub-module registered at run time, such as ``self.head[0].weight``) has type ``Any``, not torch's
``Tensor | Module``, which no use of it can satisfy without a cast. Attributes a class declares are
unaffected. Named in ``[tool.mypy] plugins`` (pyproject.toml)."""

from __future__ import annotations

from collections.abc import Callable

from mypy.plugin import AttributeContext, Plugin
from mypy.types import AnyType, Type, TypeOfAny

_GETATTR_OWNER = "torch.nn.modules.module.Module."


def _any(ctx: AttributeContext) -> Type:
    return AnyType(TypeOfAny.special_form)


class TorchModuleAttributes(Plugin):
    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        if not fullname.startswith(_GETATTR_OWNER):
            return None
        module = self.lookup_fully_qualified(fullname.rsplit(".", 1)[0])
        name = fullname.rsplit(".", 1)[1]
        if module is not None and hasattr(module.node, "names") and name in module.node.names:
            return None  # declared by torch itself (training, forward, ...): its own type
        return _any


def plugin(version: str) -> type[Plugin]:
    return TorchModuleAttributes
