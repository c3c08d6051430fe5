"""``genlight push``: a trained checkpoint to the Hugging Face Hub as a pretrained folder
(:mod:`genlight.pretrained`: ``model.safetensors``, ``config.json``) with a model card, which
``genlight.pretrained("hf-hub:user/name")`` loads back without unpickling anything."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from genlight.checkpoint_config import CheckpointChoice
from genlight.errors import ConfigError
from genlight.identity import CHECKPOINT_KEY
from genlight.pretrained_models import CARD_FILE, save_pretrained
from genlight.registry import DATAMODULES

__all__ = ["model_card", "push_to_hub", "write_folder"]


def model_card(config: dict[str, Any], repo_id: str) -> str:
    """The model card: YAML metadata (``library_name: genlight``, the family, the data, the figures as
    ``model-index`` results with their protocol) and a short text with the training command and the loader."""
    family, data = config["family"], (config.get("data") or {}).get("name") or "unknown"
    metrics = [{"type": k, "name": k, "value": v} for k, v in (config.get("figures") or {}).items()]
    meta = {
        "library_name": "genlight",
        "tags": ["genlight", "generative", family, data],
        "model-index": [
            {
                "name": repo_id,
                "results": [
                    {
                        "task": {"type": "unconditional-image-generation"},
                        "dataset": {"name": data, "type": data},
                        "metrics": metrics,
                    }
                ],
            }
        ]
        if metrics
        else [],
    }
    figures = "\n".join(f"| {k} | {v:.4g} |" for k, v in (config.get("figures") or {}).items()) or "| - | - |"
    return (
        f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n"
        f"# {repo_id}\n\nA genlight `{family}` trained on `{data}`.\n\n"
        f'```python\nimport genlight\nmodel = genlight.pretrained("hf-hub:{repo_id}")\nimages = model.sample(16)\n```\n\n'
        f"| figure | value |\n| --- | --- |\n{figures}\n\n"
        f"Protocol: {config.get('protocol') or 'not given'}\n\n"
        f"Trained with: `{config.get('command') or 'not given'}` (commit {config.get('commit') or 'not given'}).\n\n"
        "The weights are safetensors and the config JSON: loading runs no code from this repository.\n"
    )


def write_folder(
    ckpt_path: str | Path,
    folder: str | Path,
    repo_id: str,
    *,
    figures: dict[str, float] | None = None,
    protocol: str = "",
    command: str = "",
    commit: str = "",
    trust: bool = False,
) -> Path:
    """A checkpoint (read safely unless ``trust``) as a pretrained folder with its model card."""
    import json

    choice = CheckpointChoice.resolve(str(ckpt_path), trust=trust)
    model = choice.load()
    trained = (choice.checkpoint.get(CHECKPOINT_KEY) or {}).get("datamodule")
    data = next((n for n in DATAMODULES.list() if DATAMODULES.class_path(n) == trained), None)
    folder = save_pretrained(
        model,
        folder,
        data=data,
        data_args=dict(choice.checkpoint.get("datamodule_hyper_parameters") or {}),
        figures=figures,
        protocol=protocol,
        command=command,
        commit=commit,
    )
    config = json.loads((folder / "config.json").read_text())
    (folder / CARD_FILE).write_text(model_card(config, repo_id))
    return folder


def push_to_hub(
    ckpt_path: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    api: Any = None,
    **folder_args: Any,
) -> str:
    """Write the pretrained folder of ``ckpt_path`` and upload it to ``repo_id`` (created if needed);
    returns the commit URL. ``api``: a ``huggingface_hub.HfApi`` (the default one when ``None``)."""
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ConfigError(f"--repo_id {repo_id!r}: name a Hub repository as user/name, e.g. --repo_id me/dcgan-digits")
    if api is None:
        try:
            from huggingface_hub import HfApi
        except ImportError as err:
            raise ConfigError("genlight push needs huggingface_hub: pip install 'genlight[hub]'") from err
        api = HfApi()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_folder(ckpt_path, Path(tmp) / "model", repo_id, **folder_args)
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="genlight push")
    return str(getattr(info, "commit_url", info))
