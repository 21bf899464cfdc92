"""Every YAML under configs/ parses through the real CLI parser (class paths import, types check) and the 7B
configs encode the seed recipe's hyper-parameters."""

from pathlib import Path

import pytest
import yaml

from cli.lightning import main

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# stage configs; configs/strategies/ holds fragments added after one (tests/distributed/test_strategy_configs.py)
CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.parent.name != "strategies")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_parses(config: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["data"]["init_args"]["tokenizer"]


def load(name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / "llama7b" / name).read_text())




@pytest.mark.parametrize(
    "name, lr, epochs, batch, policy_args",
    [
        ("pt_embed.yaml", 6e-5, 4, 16, {"new_rows_only": False}),
        ("pt_lora.yaml", 6e-4, 4, 32, {"r": 64, "alpha": 32, "dropout": 0.0}),
        ("pt_lora_1m.yaml", 2e-4, 1, 32, {"r": 64, "alpha": 32, "dropout": 0.0}),
        ("sft.yaml", 1e-4, 1, 32, {"r": 8, "alpha": 32, "dropout": 0.05}),
    ],
)
def test_llama7b_recipes(name: str, lr: float, epochs: int, batch: int, policy_args: dict) -> None:
    config = load(name)
    assert config["model"]["learning_rate"] == lr and config["model"]["weight_decay"] == 0.1
    assert config["trainer"]["max_epochs"] == epochs
    data = config["data"]["init_args"]
    assert data["batch_size"] * config["trainer"]["devices"] * config["trainer"]["accumulate_grad_batches"] == batch
    assert data.get("block_size", data.get("max_seq_length")) == 512
    freeze_policies = ("callbacks.embedding_only.EmbeddingOnly", "callbacks.lora_with_embeddings.LoRAWithEmbeddings")
    (freeze,) = [c for c in config["trainer"]["callbacks"] if c["class_path"] in freeze_policies]
    assert policy_args.items() <= freeze["init_args"].items()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_outputs_go_under_the_run_directory(config: Path) -> None:
    """Logs and checkpoints follow ``trainer.default_root_dir`` (the CLI fills their directories from it), and a
    later stage starts from the earlier stage's run directory, not from one file in it."""
    trainer = yaml.safe_load(config.read_text())["trainer"]
    assert trainer["default_root_dir"] == f"runs/{config.parent.name}/{config.stem}"
    assert "logger" not in trainer
    (checkpoint,) = [c for c in trainer["callbacks"] if c["class_path"].endswith(".ModelCheckpoint")]
    assert "dirpath" not in checkpoint["init_args"] and checkpoint["init_args"]["save_last"]
    init_from = yaml.safe_load(config.read_text())["model"].get("init_from")
    assert init_from in (None, f"runs/{config.parent.name}/pt_embed", f"runs/{config.parent.name}/pt_lora")
