"""A mypy plugin for two places where torch's types and typeshed's say less than the code knows
(named in ``[tool.mypy] plugins``, pyproject.toml):

* an attribute that ``torch.nn.Module.__getattr__`` resolves (a parameter, buffer or sub-module
  registered at run time, such as ``self.head[0].weight``) has type ``Any``, not torch's
  ``Tensor | Module``, which no use of it can satisfy without a cast; attributes a class declares
  keep their own type;
* ``sum()`` of tensors (the named terms of a loss: ``sum(terms.values())``) is a ``Tensor``, not
  typeshed's ``Tensor | Literal[0]`` (the ``0`` of an empty sum, which no loss has);
* ``len()`` takes a ``torch.utils.data.Dataset``: every data set genlight builds is map-style, with a
  length (torch's ``Dataset`` type leaves ``__len__`` out because an ``IterableDataset`` has none).
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import TypeInfo
from mypy.plugin import AttributeContext, FunctionContext, FunctionSigContext, Plugin
from mypy.types import AnyType, CallableType, Instance, LiteralType, Type, TypeOfAny, UnionType, get_proper_type

_GETATTR_OWNER = "torch.nn.modules.module.Module."
_DATASET = "torch.utils.data.dataset.Dataset"


def _any(ctx: AttributeContext) -> Type:
    return AnyType(TypeOfAny.special_form)


def _sum_of_tensors(ctx: FunctionContext) -> Type:
    returned = get_proper_type(ctx.default_return_type)
    given_start = len(ctx.arg_types) > 1 and bool(ctx.arg_types[1])
    if given_start or not isinstance(returned, UnionType):
        return ctx.default_return_type  # sum(..., start), or not a union: typeshed's answer stands
    items = [get_proper_type(t) for t in returned.items]
    tensors = [t for t in items if isinstance(t, Instance) and t.type.fullname == "torch._tensor.Tensor"]
    zeros = [t for t in items if isinstance(t, LiteralType) and t.value == 0]
    return tensors[0] if tensors and len(tensors) + len(zeros) == len(items) else ctx.default_return_type


class TorchModuleAttributes(Plugin):
    def get_function_signature_hook(self, fullname: str) -> Callable[[FunctionSigContext], CallableType] | None:
        return self._len_of_dataset if fullname == "builtins.len" else None

    def _len_of_dataset(self, ctx: FunctionSigContext) -> CallableType:
        sig = ctx.default_signature
        found = self.lookup_fully_qualified(_DATASET)
        if found is None or not isinstance(found.node, TypeInfo) or len(sig.arg_types) != 1:
            return sig  # torch not loaded: nothing to widen
        dataset = Instance(found.node, [AnyType(TypeOfAny.special_form)] * len(found.node.defn.type_vars))
        return sig.copy_modified(arg_types=[UnionType.make_union([sig.arg_types[0], dataset])])

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        return _sum_of_tensors if fullname == "builtins.sum" else None

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
