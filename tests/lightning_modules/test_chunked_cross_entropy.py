import pytest
import torch
import torch.nn.functional as F

from lightning_modules.chunked_cross_entropy import linear_cross_entropy


def reference(hidden, weight, targets):
    return F.cross_entropy((hidden @ weight.T).reshape(-1, weight.shape[0]), targets.reshape(-1))


@pytest.mark.parametrize("chunk_size", [1, 5, 64])
def test_matches_full_logits_loss_and_gradients(chunk_size: int) -> None:
    torch.manual_seed(0)
    hidden = torch.randn(3, 9, 16, requires_grad=True)
    weight = torch.randn(70, 16, requires_grad=True)
    targets = torch.randint(0, 70, (3, 9))
    targets[0, :4] = -100
    ref_hidden, ref_weight = hidden.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    (2.0 * linear_cross_entropy(hidden, weight, targets, chunk_size)).backward()
    (2.0 * reference(ref_hidden, ref_weight, targets)).backward()
    torch.testing.assert_close(hidden.grad, ref_hidden.grad)
    torch.testing.assert_close(weight.grad, ref_weight.grad)
    assert linear_cross_entropy(hidden, weight, targets, chunk_size).item() == pytest.approx(
        reference(hidden, weight, targets).item(), rel=1e-5
    )


def test_weight_grad_from_row_computes_new_rows_only() -> None:
    torch.manual_seed(1)
    hidden, targets = torch.randn(20, 8), torch.randint(0, 40, (20,))
    weight = torch.randn(40, 8, requires_grad=True)
    linear_cross_entropy(hidden, weight, targets, 7, weight_grad_from_row=30).backward()
    ref_weight = weight.detach().clone().requires_grad_()
    reference(hidden, ref_weight, targets).backward()
    assert torch.count_nonzero(weight.grad[:30]) == 0
    torch.testing.assert_close(weight.grad[30:], ref_weight.grad[30:])


def test_all_targets_ignored_gives_zero_loss_and_gradient() -> None:
    hidden = torch.randn(4, 8, requires_grad=True)
    loss = linear_cross_entropy(hidden, torch.randn(10, 8), torch.full((4,), -100))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(hidden.grad) == 0


def test_bf16_autocast_stays_close_to_fp32() -> None:
    torch.manual_seed(2)
    hidden, weight = torch.randn(12, 16, requires_grad=True), torch.randn(30, 16, requires_grad=True)
    targets = torch.randint(0, 30, (12,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = linear_cross_entropy(hidden, weight, targets, 5)
    loss.backward()
    assert loss.dtype == torch.float32 and hidden.grad.dtype == weight.grad.dtype == torch.float32
    ref_hidden, ref_weight = hidden.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    ref = reference(ref_hidden, ref_weight, targets)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=2e-2)
    torch.testing.assert_close(weight.grad, ref_weight.grad, atol=2e-2, rtol=5e-2)


def test_ignored_positions_never_reach_the_head(monkeypatch: pytest.MonkeyPatch) -> None:
    """SFT masks prompt and padding; the head's matmuls must only see the labelled rows."""
    from lightning_modules import chunked_cross_entropy

    seen: list[int] = []
    apply = chunked_cross_entropy._LinearCrossEntropy.apply

    def spy(hidden, weight, targets, *args):
        seen.append(hidden.shape[0])
        return apply(hidden, weight, targets, *args)

    monkeypatch.setattr(chunked_cross_entropy._LinearCrossEntropy, "apply", spy)
    targets = torch.randint(0, 70, (2, 9))
    targets[:, :5] = -100
    linear_cross_entropy(torch.randn(2, 9, 16), torch.randn(70, 16), targets, 4)
    assert seen == [8]


def test_evaluation_computes_no_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under no_grad a Function still sees needs_input_grad from requires_grad: validation would build a
    [vocab, d] fp32 gradient of a trainable head for nothing."""
    from lightning_modules import chunked_cross_entropy

    needs: list[bool] = []
    apply = chunked_cross_entropy._LinearCrossEntropy.apply

    def spy(hidden, weight, *args):
        needs.append(hidden.requires_grad or weight.requires_grad)
        return apply(hidden, weight, *args)

    monkeypatch.setattr(chunked_cross_entropy._LinearCrossEntropy, "apply", spy)
    hidden, weight = torch.randn(6, 16, requires_grad=True), torch.randn(70, 16, requires_grad=True)
    targets = torch.randint(0, 70, (6,))
    with torch.no_grad():
        evaluated = linear_cross_entropy(hidden, weight, targets, 4)
    trained = linear_cross_entropy(hidden, weight, targets, 4)
    assert needs == [False, True]
    assert evaluated.item() == pytest.approx(trained.item())
