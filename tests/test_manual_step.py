"""``GenerativeModule.manual_step``: the generator step of every G/D family builds its loss under the
toggle, so no gradient reaches the discriminator (its gradients at the generator's optimizer step are
those its own step left, bit for bit, and its weights are frozen)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from genlight.testing import cpu_trainer, smoke_setup


class _DiscriminatorUntouched(pl.Callback):
    """At every optimizer step: the discriminator's gradients after its own step, and whether the
    generator's step left them as they were with the discriminator frozen."""

    def __init__(self) -> None:
        self.after_d: list[torch.Tensor | None] | None = None
        self.g_steps: list[bool] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        d_params = list(pl_module.discriminator.parameters())
        ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
        grads = [None if p.grad is None else p.grad.clone() for p in d_params]
        if id(d_params[0]) in ids:  # the discriminator's step
            self.after_d = grads
            return
        frozen = not any(p.requires_grad for p in d_params)
        same = self.after_d is not None and all(
            (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
            for a, b in zip(self.after_d, grads)
        )
        self.g_steps.append(frozen and same)


@pytest.mark.parametrize("name", ["dcgan", "stargan", "puzzlegan", "text2image"])
def test_generator_steps_leave_the_discriminator_alone(name: str, tmp_path) -> None:
    model, dm, trainer_kwargs = smoke_setup(name, tmp_path, **({"n_critic": 1} if name == "stargan" else {}))
    check = _DiscriminatorUntouched()
    cpu_trainer(str(tmp_path), max_steps=4, limit_val_batches=0, callbacks=[check], **trainer_kwargs).fit(model, datamodule=dm)
    assert check.g_steps and all(check.g_steps), f"{name}: a generator step changed or unfroze the discriminator"


def test_manual_step_returns_what_it_minimised(tmp_path) -> None:
    model, dm, trainer_kwargs = smoke_setup("dcgan", tmp_path)
    seen: dict[str, object] = {}

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if batch_idx == 0:
                opt_g = pl_module.optimizers()[0]
                z = pl_module.sample_latent(4)
                seen["terms"] = pl_module.manual_step(opt_g, lambda: pl_module.generator_terms(pl_module.generate(z), None, z))
                loss = pl_module.generate(z).square().mean()
                seen["loss"] = (pl_module.manual_step(opt_g, loss), loss)

    cpu_trainer(str(tmp_path), max_steps=1, limit_val_batches=0, callbacks=[Record()], **trainer_kwargs).fit(model, datamodule=dm)
    assert set(seen["terms"]) == {"g_adv"} and torch.isfinite(seen["terms"]["g_adv"])
    returned, given = seen["loss"]
    assert returned is given
