"""DecoderBlock against PyTorch's TransformerEncoderLayer, causality and padding (course_lib.decoder)."""
import torch

from course_lib.decoder import DecoderBlock


def test_decoder_block_is_causal_by_perturbation():
    torch.manual_seed(0)
    block = DecoderBlock(16, 4, 64).double().eval()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    for t in range(7):
        changed = x.clone()
        changed[:, t] += torch.randn(16, dtype=torch.float64)
        diff = (block(x) - block(changed)).abs().amax(dim=(0, 2))
        assert torch.all(diff[:t] == 0), f"changing position {t} changed an earlier output"
        assert torch.all(diff[t:] > 0) or t == 6 and diff[6] > 0



def test_decoder_block_matches_pytorch_transformer_layer():
    torch.manual_seed(0)
    block = DecoderBlock(32, 4, 64).double().eval()
    a = block.attn
    ref = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True, dtype=torch.float64).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(torch.cat([a.w_q.weight, a.w_k.weight, a.w_v.weight]))
        ref.self_attn.in_proj_bias.copy_(torch.cat([a.w_q.bias, a.w_k.bias, a.w_v.bias]))
        ref.self_attn.out_proj.load_state_dict({"weight": a.w_o.weight, "bias": a.w_o.bias})
        ref.linear1.load_state_dict(block.ffn.net[0].state_dict())
        ref.linear2.load_state_dict(block.ffn.net[2].state_dict())
        ref.norm1.load_state_dict(block.ln1.state_dict())
        ref.norm2.load_state_dict(block.ln2.state_dict())
    x = torch.randn(3, 9, 32, dtype=torch.float64)
    causal = torch.ones(9, 9, dtype=torch.bool).tril()
    torch.testing.assert_close(block(x), ref(x, src_mask=~causal), atol=1e-10, rtol=0)



def test_decoder_block_padding_mask_hides_left_padding():
    torch.manual_seed(0)
    block = DecoderBlock(16, 2, 32).double().eval()
    x = torch.randn(1, 3, 16, dtype=torch.float64)
    padded = torch.cat([torch.randn(1, 2, 16, dtype=torch.float64), x], dim=1)
    mask = torch.tensor([[False, False, True, True, True]])[:, None, None, :]
    torch.testing.assert_close(block(padded, padding_mask=mask)[:, 2:], block(x))

