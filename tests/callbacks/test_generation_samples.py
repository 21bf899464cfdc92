from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from lightning.pytorch.loggers import TensorBoardLogger

from callbacks.generation_samples import GenerationSamples
from callbacks.parameter_budget import ParameterBudget
from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.model_loading import tiny_llama_config
from tests.lightning_modules.tiny_training import tiny_trainer, token_loader


def test_samples_written_to_tensorboard_at_each_validation(zh_tokenizer_dir, tmp_path) -> None:
    module = CausalLMModule(
        model_config=tiny_llama_config(vocab_size=160), tokenizer=str(zh_tokenizer_dir), peak_flops_per_device=1e12
    )
    samples = GenerationSamples(prompts=["中国的首都是", "三国演义"], max_new_tokens=4)
    logger = TensorBoardLogger(tmp_path, name="run", version="tb")
    trainer = tiny_trainer(
        tmp_path, [samples, ParameterBudget()], max_steps=2, logger=logger, limit_val_batches=1, val_check_interval=1,
        log_every_n_steps=1,
    )
    loader = token_loader(n_batches=2)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=token_loader(n_batches=1))
    assert [(step, prompt) for step, prompt, _ in samples.samples] == [
        (1, "中国的首都是"), (1, "三国演义"), (2, "中国的首都是"), (2, "三国演义")
    ]
    assert all(isinstance(text, str) for _, _, text in samples.samples)
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    assert "samples/generations/text_summary" in events.Tags()["tensors"]
    assert {"val/loss", "val/ppl", "train/loss", "train/grad_norm", "train/tokens_per_s", "train/mfu"} <= set(
        events.Tags()["scalars"]
    )


def test_template_prompts_are_asked_as_sft_instructions(zh_tokenizer_dir, monkeypatch) -> None:
    from datamodules.prompt_templates import ALPACA_V1

    module = CausalLMModule(model_config=tiny_llama_config(vocab_size=160), tokenizer=str(zh_tokenizer_dir))
    module.configure_model()
    seen: list[list[int]] = []
    original_generate = module.causal_lm.generate

    def spy(input_ids, **kwargs):
        seen.append(input_ids[0].tolist())
        return original_generate(input_ids, **kwargs)

    monkeypatch.setattr(module.causal_lm, "generate", spy)
    tokenizer = module.tokenizer
    GenerationSamples(prompts=["介绍长城"], max_new_tokens=2, template="alpaca_v1").generate(module)
    GenerationSamples(prompts=["介绍长城"], max_new_tokens=2).generate(module)
    prompt = ALPACA_V1.format(instruction="介绍长城")
    assert seen[0] == [tokenizer.bos_token_id, *tokenizer(prompt, add_special_tokens=False).input_ids]
    assert seen[1] == tokenizer("介绍长城").input_ids
