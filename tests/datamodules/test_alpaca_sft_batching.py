from types import SimpleNamespace

import pytest
import torch

from datamodules.sft_batching import (
    LengthGroupedLoader,
    SFTCollator,
    length_grouped_batches,
    pad_token_id,
    sorted_batches,
)
from datamodules.sft_examples import SFTExample
from tokenization.constants import IGNORE_INDEX
from tokenization.errors import UserError

LENGTHS = [int(x) for x in torch.randint(10, 500, (1000,), generator=torch.Generator().manual_seed(0))]


def padding_share(batches, lengths):
    real = sum(lengths[i] for b in batches for i in b)
    total = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - real / total


def test_length_grouped_batches_cover_every_example_once_seeded_per_epoch():
    epoch0 = length_grouped_batches(LENGTHS, 16, seed=1, epoch=0, group_batches=8)
    assert sorted(i for b in epoch0 for i in b) == list(range(len(LENGTHS)))
    assert epoch0 == length_grouped_batches(LENGTHS, 16, seed=1, epoch=0, group_batches=8)
    assert epoch0 != length_grouped_batches(LENGTHS, 16, seed=1, epoch=1, group_batches=8)
    assert max(LENGTHS) in [LENGTHS[i] for i in epoch0[0]]  # longest first: OOM shows at step 1


def test_length_grouping_pads_far_less_than_random_batches():
    grouped = length_grouped_batches(LENGTHS, 16, seed=1, epoch=0, group_batches=16)
    order = torch.randperm(len(LENGTHS), generator=torch.Generator().manual_seed(1)).tolist()
    random_batches = [order[i : i + 16] for i in range(0, len(order), 16)]
    assert padding_share(grouped, LENGTHS) < 0.1 < padding_share(random_batches, LENGTHS)
    assert padding_share(sorted_batches(LENGTHS, 16), LENGTHS) < 0.02


def loader(**kwargs) -> LengthGroupedLoader:
    return LengthGroupedLoader(list(range(len(LENGTHS))), LENGTHS, 16, group_batches=8, seed=3, collate_fn=list, **kwargs)


def test_ranks_get_disjoint_equal_shares():
    shares = [list(loader(rank=rank, world_size=3)) for rank in range(3)]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == len(loader(rank=0, world_size=3))
    seen = [i for s in shares for b in s for i in b]
    assert len(seen) == len(set(seen)) > len(LENGTHS) - 3 * 16


def test_loader_resumes_at_the_next_unseen_batch_and_reshuffles_next_epoch():
    full = loader()
    epoch0 = list(full)
    assert sorted(i for b in epoch0 for i in b) == list(range(len(LENGTHS)))
    first = loader()
    taken = [batch for _, batch in zip(range(5), first)]
    resumed = loader()
    resumed.load_state_dict(first.state_dict())
    assert taken + list(resumed) == epoch0
    assert list(resumed) != epoch0  # epoch 1: a new order
    with pytest.raises(UserError, match="group_batches"):
        LengthGroupedLoader(list(range(len(LENGTHS))), LENGTHS, 16, group_batches=4, seed=3).load_state_dict(first.state_dict())


def test_collator_pads_right_masks_by_length_and_ignores_prompt_and_pad():
    examples = [SFTExample((1, 5, 6, 2), 2), SFTExample((1, 7, 2), 2)]
    batch = SFTCollator(pad_id=2)(examples)  # pad with EOS's id: the mask must still keep the real EOS
    assert all(t.dtype == torch.long for t in batch.values())
    assert batch["input_ids"].tolist() == [[1, 5, 6, 2], [1, 7, 2, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 6, 2], [IGNORE_INDEX, IGNORE_INDEX, 2, IGNORE_INDEX]]
    assert SFTCollator(0, pad_to_multiple_of=8)(examples)["input_ids"].shape == (2, 8)


@pytest.mark.parametrize("pad, unk, eos, expected", [(9, 0, 2, 9), (None, 0, 2, 0), (None, None, 2, 2)])
def test_pad_token_fallback(pad, unk, eos, expected):
    assert pad_token_id(SimpleNamespace(pad_token_id=pad, unk_token_id=unk, eos_token_id=eos)) == expected
