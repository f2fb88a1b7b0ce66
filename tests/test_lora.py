"""LoRA (notebook 20): the start is the model itself, the adapter equals peft's, merging changes nothing."""
import copy

import pytest
import torch
from conftest import small_gpt
from torch import nn

from course_lib.lora import LoRALinear, add_lora, merge_lora, trainable_parameters


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj, self.v_proj, self.lm_head = nn.Linear(16, 16), nn.Linear(16, 8, bias=False), nn.Linear(8, 5)

    def forward(self, x):
        return self.lm_head(self.v_proj(torch.relu(self.q_proj(x))))


def test_lora_starts_as_the_model_and_trains_only_the_adapters():
    model = small_gpt()
    x = torch.randint(0, 20, (2, 6))
    before = model(x)
    add_lora(model, rank=2, alpha=4)
    assert torch.equal(model(x), before)  # B = 0: the wrapped model is the model
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(n.endswith(("lora_A", "lora_B")) for n in names)
    wrapped = [m for m in model.modules() if isinstance(m, LoRALinear)]
    assert len(wrapped) == 2 * 6  # per block: w_q, w_k, w_v, w_o and the feed-forward's two
    trainable, total = trainable_parameters(model)
    assert trainable == sum(m.rank * (m.base.in_features + m.base.out_features) for m in wrapped) < total


def test_lora_forward_is_the_formula():
    layer = nn.Linear(6, 4)
    lora = LoRALinear(layer, rank=2, alpha=3)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(5, 6)
    expected = x @ layer.weight.T + layer.bias + (3 / 2) * (x @ lora.lora_A.T) @ lora.lora_B.T
    assert torch.allclose(lora(x), expected, atol=1e-6)


def test_lora_equals_peft_on_the_same_weights():
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    model = Tiny()
    ours = add_lora(copy.deepcopy(model), rank=4, alpha=8, targets=("q_proj", "v_proj"))
    theirs = peft.get_peft_model(copy.deepcopy(model), peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                                                        target_modules=["q_proj", "v_proj"]))
    for name in ("q_proj", "v_proj"):
        mine, layer = getattr(ours, name), theirs.base_model.model.get_submodule(name)
        with torch.no_grad():
            mine.lora_B.normal_()
            layer.lora_A["default"].weight.copy_(mine.lora_A)
            layer.lora_B["default"].weight.copy_(mine.lora_B)
    x = torch.randn(3, 16)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)
    assert not torch.allclose(ours(x), model(x), atol=1e-3)  # positive control: the adapters do change the output
    # and peft's trainable parameters are ours
    assert trainable_parameters(ours)[0] == sum(p.numel() for p in theirs.parameters() if p.requires_grad)


def test_merge_gives_the_same_logits_and_plain_linears():
    model = small_gpt()
    add_lora(model, rank=2, alpha=4)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(std=0.1)
    x = torch.randint(0, 20, (2, 6))
    adapted = model(x)
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert torch.allclose(model(x), adapted, atol=1e-9)
    with pytest.raises(ValueError, match="no LoRA adapters"):
        merge_lora(model)


def test_training_moves_only_the_adapters():
    model = small_gpt()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()}
    add_lora(model, rank=2, alpha=4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = torch.randint(0, 20, (4, 8))
    for _ in range(3):
        _, loss = model(x, x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, p in model.named_parameters():
        if "lora_" not in name:
            original = name.replace(".base.", ".")
            assert torch.equal(p, frozen[original]), name
    assert any(m.lora_B.abs().sum() > 0 for m in model.modules() if isinstance(m, LoRALinear))


@pytest.mark.parametrize("call, error", [
    (lambda: add_lora("model", 2, 4), TypeError),
    (lambda: add_lora(small_gpt(), 0, 4), ValueError),
    (lambda: add_lora(small_gpt(), 2, 0), ValueError),
    (lambda: add_lora(small_gpt(), 2, 4, targets=("nothing",)), ValueError),
    (lambda: add_lora(add_lora(small_gpt(), 2, 4), 2, 4), ValueError),
    (lambda: LoRALinear(nn.Linear(4, 3), 4, 1), ValueError),
])
def test_bad_lora_arguments_are_refused(call, error):
    with pytest.raises(error):
        call()
