"""mlp_classifier / cnn_classifier: registered, learn digits quickly, expose penultimate features."""

from __future__ import annotations

import pytest
import torch
from tests.helpers import cpu_trainer, digits_datamodule

from genlight import create_model, get_model_class, list_models
from genlight.cli import GenlightCLI


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("mlp_classifier", {"lr": 3e-3, "dropout": 0.1}), ("cnn_classifier", {"channels": (8, 8, 16, 16), "hidden": 32})],
)
def test_classifier_beats_chance_and_exposes_features(tmp_path, name, kwargs):
    assert name in list_models()
    assert get_model_class(name).smoke_kwargs
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    trainer = cpu_trainer(str(tmp_path), max_epochs=3)
    trainer.fit(model, digits_datamodule(batch_size=64))
    acc = float(trainer.callback_metrics["val/acc"])
    assert acc > 0.6, acc  # chance is 0.1
    assert "val/loss" in trainer.callback_metrics
    model.eval()
    x = torch.rand(5, 1, 8, 8)
    features = model.features(x)
    assert features.shape == (5, model.num_features)
    assert torch.allclose(model.net.head(features), model(x), atol=1e-6)


def test_cli_links_shape_and_classes_into_classifiers():
    cli = GenlightCLI(
        args=["--model", "cnn_classifier", "--data", "digits", "--model.batch_norm", "false",
              "--model.dropout", "0.2", "--trainer.logger", "false"],
        run=False,
    )
    model = cli.model
    assert tuple(model.hparams.image_shape) == (1, 8, 8) and model.hparams.num_classes == 10
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.2 for m in model.modules())


def test_classifier_refuses_unlabelled_data():
    with pytest.raises(ValueError, match="num_classes"):
        create_model("mlp_classifier", num_classes=0)


def test_classifier_refuses_unlabelled_data_with_a_clear_message():
    from genlight.errors import IncompatibleDataError

    with pytest.raises(IncompatibleDataError, match="needs a labelled datamodule"):
        create_model("cnn_classifier", num_classes=0)
