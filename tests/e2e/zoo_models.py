"""Models of issue 3's families, shared by tests/e2e/test_zoo.py (a small CI
subset) and bench/zoo.py (the whole list): torchvision classification models,
small plain-torch transformer replicas with Hugging Face module names, a
recurrent tagger and scripted control flow.

Every builder returns (module, inputs, dynamic) where inputs maps input names
to example tensors in forward() order and dynamic maps an input name to
{axis: name} for dynamic axes. Weights are random and seeded.
"""

import math
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

# --- torchvision ------------------------------------------------------------


def save_torchscript(module, example, scripted, path):
    """Saves `module` as TorchScript: scripted, or traced on the example tuple."""
    with torch.no_grad():
        if scripted:
            torch.jit.script(module).save(path)
        else:
            torch.jit.trace(module, example, check_trace=False).save(path)


def calibrate_batch_norms(model, example):
    """Sets every batch norm's running statistics from two training-mode passes
    on random inputs. With random weights and the default statistics (mean 0,
    variance 1) deep networks such as Inception v3 reach activations of 1e9,
    where float32 summation order alone exceeds rtol 1e-3; calibrated, the
    outputs are of order 1 as with trained weights."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    model.eval()  # only the norms train: auxiliary heads and dropout stay off
    for m in norms:
        m.momentum = None  # a cumulative average over the calibration passes
        m.reset_running_stats()
        m.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn_like(example))
    model.eval()


def randomize_zero_weights(model):
    """Gives zero-initialised weight tensors (ViT's classification head and
    class token) small random values: with them at zero every output is 0 and
    the comparison with PyTorch would prove nothing."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2 and not p.any():
                p.normal_(0.0, 0.02)
    return model


def vision(name, size=224, **kwargs):
    """A torchvision classification model with random weights and calibrated
    batch norms, eval mode."""
    import torchvision.models as models
    torch.manual_seed(0)
    model = randomize_zero_weights(models.get_model(name, weights=None, **kwargs))
    example = torch.randn(2, 3, size, size)
    if sum(p.numel() for p in model.parameters()) < 150_000_000:  # bench/zoo.py skips the rest
        calibrate_batch_norms(model, example)
    return model.eval(), {"x": example[:1].clone()}, {}


def input_size(name):
    """The input size each torchvision model is exported at: its default."""
    if name == "inception_v3":
        return 299
    return 224


def tiny_vit():
    from torchvision.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                              hidden_dim=32, mlp_dim=64, num_classes=10)
    model = randomize_zero_weights(model).eval()
    return model, {"x": torch.randn(1, 3, 32, 32)}, {}


def tiny_swin(v2=False):
    from torchvision.models import swin_transformer as swin
    torch.manual_seed(0)
    extra = {}
    if v2:
        extra = {"block": swin.SwinTransformerBlockV2, "downsample_layer": swin.PatchMergingV2}
    model = swin.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4],
                                 window_size=[4, 4], stochastic_depth_prob=0.0, num_classes=10,
                                 **extra)
    return randomize_zero_weights(model).eval(), {"x": torch.randn(1, 3, 40, 40)}, {}


def tiny_maxvit():
    from torchvision.models.maxvit import MaxVit
    torch.manual_seed(0)
    model = MaxVit(input_size=(64, 64), stem_channels=8, partition_size=2, block_channels=[16, 32],
                   block_layers=[1, 1], head_dim=8, stochastic_depth_prob=0.0,
                   num_classes=10)
    return randomize_zero_weights(model).eval(), {"x": torch.randn(1, 3, 64, 64)}, {}


# --- transformers: plain-torch replicas with Hugging Face module names -------


class Conv1D(nn.Module):
    """GPT-2's projection: x @ weight + bias with weight [in, out] (addmm)."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.02)
        self.bias = nn.Parameter(torch.randn(nf) * 0.02)

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


class NewGELUActivation(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) *
                                           (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, hidden, heads, max_positions):
        super().__init__()
        mask = torch.tril(torch.ones((max_positions, max_positions), dtype=torch.bool))
        self.register_buffer("bias", mask.view(1, 1, max_positions, max_positions))
        self.num_heads = heads
        self.head_dim = hidden // heads
        self.split_size = hidden
        self.c_attn = Conv1D(3 * hidden, hidden)
        self.c_proj = Conv1D(hidden, hidden)
        self.attn_dropout = nn.Dropout(0.1)
        self.resid_dropout = nn.Dropout(0.1)

    def _split_heads(self, tensor):
        new_shape = tensor.size()[:-1] + (self.num_heads, self.head_dim)
        return tensor.view(new_shape).permute(0, 2, 1, 3)

    def _merge_heads(self, tensor):
        tensor = tensor.permute(0, 2, 1, 3).contiguous()
        new_shape = tensor.size()[:-2] + (self.num_heads * self.head_dim,)
        return tensor.view(new_shape)

    def forward(self, hidden_states, attention_mask):
        query, key, value = self.c_attn(hidden_states).split(self.split_size, dim=2)
        query, key, value = self._split_heads(query), self._split_heads(key), self._split_heads(value)
        attn_weights = torch.matmul(query, key.transpose(-1, -2))
        attn_weights = attn_weights / torch.tensor(value.size(-1) ** 0.5, dtype=attn_weights.dtype)
        query_length, key_length = query.size(-2), key.size(-2)
        causal_mask = self.bias[:, :, key_length - query_length:key_length, :key_length]
        mask_value = torch.tensor(torch.finfo(attn_weights.dtype).min, dtype=attn_weights.dtype)
        attn_weights = torch.where(causal_mask, attn_weights, mask_value)
        attn_weights = attn_weights + attention_mask
        attn_weights = self.attn_dropout(F.softmax(attn_weights, dim=-1))
        attn_output = self._merge_heads(torch.matmul(attn_weights, value))
        return self.resid_dropout(self.c_proj(attn_output))


class GPT2MLP(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.c_fc = Conv1D(4 * hidden, hidden)
        self.c_proj = Conv1D(hidden, 4 * hidden)
        self.act = NewGELUActivation()
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(nn.Module):
    def __init__(self, hidden, heads, max_positions):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden, eps=1e-5)
        self.attn = GPT2Attention(hidden, heads, max_positions)
        self.ln_2 = nn.LayerNorm(hidden, eps=1e-5)
        self.mlp = GPT2MLP(hidden)

    def forward(self, hidden_states, attention_mask):
        hidden_states = hidden_states + self.attn(self.ln_1(hidden_states), attention_mask)
        return hidden_states + self.mlp(self.ln_2(hidden_states))


class GPT2Model(nn.Module):
    def __init__(self, vocab=100, hidden=32, heads=4, layers=2, max_positions=64):
        super().__init__()
        self.wte = nn.Embedding(vocab, hidden)
        self.wpe = nn.Embedding(max_positions, hidden)
        self.drop = nn.Dropout(0.1)
        self.h = nn.ModuleList([GPT2Block(hidden, heads, max_positions) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(hidden, eps=1e-5)

    def forward(self, input_ids, attention_mask):
        input_shape = input_ids.size()
        input_ids = input_ids.view(-1, input_shape[-1])
        position_ids = torch.arange(0, input_shape[-1], dtype=torch.long).unsqueeze(0)
        mask = attention_mask.view(input_ids.size(0), -1)[:, None, None, :].to(torch.float32)
        mask = (1.0 - mask) * torch.finfo(torch.float32).min
        hidden_states = self.drop(self.wte(input_ids) + self.wpe(position_ids))
        for block in self.h:
            hidden_states = block(hidden_states, mask)
        return self.ln_f(hidden_states)


def gpt2(batch=2, sequence=8):
    torch.manual_seed(0)
    ids = torch.randint(0, 100, (batch, sequence))
    mask = torch.ones(batch, sequence, dtype=torch.int64)
    mask[0, -2:] = 0
    return (GPT2Model().eval(), {"input_ids": ids, "attention_mask": mask},
            {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}})


class T5LayerNorm(nn.Module):
    """RMS norm: no mean subtraction, no bias."""

    def __init__(self, hidden, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(hidden) + 0.5)
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        variance = hidden_states.to(torch.float32).pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states


class T5Attention(nn.Module):
    def __init__(self, hidden, heads, has_relative_attention_bias, buckets=32, max_distance=128):
        super().__init__()
        self.n_heads = heads
        self.key_value_proj_dim = hidden // heads
        self.relative_attention_num_buckets = buckets
        self.relative_attention_max_distance = max_distance
        self.has_relative_attention_bias = has_relative_attention_bias
        self.q = nn.Linear(hidden, hidden, bias=False)
        self.k = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Linear(hidden, hidden, bias=False)
        self.o = nn.Linear(hidden, hidden, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(buckets, heads)

    @staticmethod
    def _relative_position_bucket(relative_position, num_buckets, max_distance):
        num_buckets //= 2
        relative_buckets = (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
        max_exact = num_buckets // 2
        is_small = relative_position < max_exact
        relative_position_if_large = max_exact + (
            torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact) *
            (num_buckets - max_exact)).to(torch.long)
        relative_position_if_large = torch.min(
            relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1))
        return relative_buckets + torch.where(is_small, relative_position, relative_position_if_large)

    def compute_bias(self, query_length, key_length):
        context_position = torch.arange(query_length, dtype=torch.long)[:, None]
        memory_position = torch.arange(key_length, dtype=torch.long)[None, :]
        relative_position = memory_position - context_position
        bucket = self._relative_position_bucket(relative_position,
                                                self.relative_attention_num_buckets,
                                                self.relative_attention_max_distance)
        values = self.relative_attention_bias(bucket)
        return values.permute([2, 0, 1]).unsqueeze(0)

    def forward(self, hidden_states, mask, position_bias=None):
        batch_size, seq_length = hidden_states.shape[:2]

        def shape(states):
            return states.view(batch_size, -1, self.n_heads, self.key_value_proj_dim).transpose(1, 2)

        query_states = shape(self.q(hidden_states))
        key_states = shape(self.k(hidden_states))
        value_states = shape(self.v(hidden_states))
        scores = torch.matmul(query_states, key_states.transpose(3, 2))
        if position_bias is None:
            position_bias = self.compute_bias(seq_length, seq_length) + mask
        scores += position_bias
        attn_weights = F.softmax(scores.float(), dim=-1).type_as(scores)
        attn_output = torch.matmul(attn_weights, value_states)
        attn_output = attn_output.transpose(1, 2).contiguous().view(batch_size, -1,
                                                                    self.n_heads * self.key_value_proj_dim)
        return self.o(attn_output), position_bias


class T5LayerSelfAttention(nn.Module):
    def __init__(self, hidden, heads, has_relative_attention_bias):
        super().__init__()
        self.SelfAttention = T5Attention(hidden, heads, has_relative_attention_bias)
        self.layer_norm = T5LayerNorm(hidden)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden_states, mask, position_bias=None):
        attention, position_bias = self.SelfAttention(self.layer_norm(hidden_states), mask,
                                                      position_bias)
        return hidden_states + self.dropout(attention), position_bias


class T5DenseActDense(nn.Module):
    def __init__(self, hidden, ff):
        super().__init__()
        self.wi = nn.Linear(hidden, ff, bias=False)
        self.wo = nn.Linear(ff, hidden, bias=False)
        self.dropout = nn.Dropout(0.1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.wo(self.dropout(self.act(self.wi(x))))


class T5LayerFF(nn.Module):
    def __init__(self, hidden, ff):
        super().__init__()
        self.DenseReluDense = T5DenseActDense(hidden, ff)
        self.layer_norm = T5LayerNorm(hidden)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden_states):
        return hidden_states + self.dropout(self.DenseReluDense(self.layer_norm(hidden_states)))


class T5Block(nn.Module):
    def __init__(self, hidden, heads, ff, has_relative_attention_bias):
        super().__init__()
        self.layer = nn.ModuleList([T5LayerSelfAttention(hidden, heads, has_relative_attention_bias),
                                    T5LayerFF(hidden, ff)])

    def forward(self, hidden_states, mask, position_bias=None):
        hidden_states, position_bias = self.layer[0](hidden_states, mask, position_bias)
        return self.layer[1](hidden_states), position_bias


class T5EncoderModel(nn.Module):
    def __init__(self, vocab=100, hidden=32, heads=4, ff=64, layers=2):
        super().__init__()
        self.shared = nn.Embedding(vocab, hidden)
        self.block = nn.ModuleList([T5Block(hidden, heads, ff, i == 0) for i in range(layers)])
        self.final_layer_norm = T5LayerNorm(hidden)
        self.dropout = nn.Dropout(0.1)

    def forward(self, input_ids, attention_mask):
        mask = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -1e9
        hidden_states = self.dropout(self.shared(input_ids))
        position_bias = None
        for layer in self.block:  # the first layer's bias is shared by the others
            hidden_states, position_bias = layer(hidden_states, mask, position_bias)
        return self.dropout(self.final_layer_norm(hidden_states))


def t5_encoder(batch=2, sequence=12):
    torch.manual_seed(0)
    ids = torch.randint(0, 100, (batch, sequence))
    mask = torch.ones(batch, sequence, dtype=torch.int64)
    mask[1, -3:] = 0
    return (T5EncoderModel().eval(), {"input_ids": ids, "attention_mask": mask},
            {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}})


class Embeddings(nn.Module):
    def __init__(self, vocab, hidden, max_positions):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_positions, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        self.register_buffer("position_ids", torch.arange(max_positions).expand((1, -1)))

    def forward(self, input_ids):
        position_ids = self.position_ids[:, :input_ids.size(1)]
        embeddings = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.n_heads = heads
        self.dim = hidden
        self.dropout = nn.Dropout(0.1)
        self.q_lin = nn.Linear(hidden, hidden)
        self.k_lin = nn.Linear(hidden, hidden)
        self.v_lin = nn.Linear(hidden, hidden)
        self.out_lin = nn.Linear(hidden, hidden)

    def forward(self, query, key, value, mask):
        bs, q_length, dim = query.size()
        k_length = key.size(1)
        dim_per_head = self.dim // self.n_heads
        mask_reshp = (bs, 1, 1, k_length)

        def shape(x):
            return x.view(bs, -1, self.n_heads, dim_per_head).transpose(1, 2)

        def unshape(x):
            return x.transpose(1, 2).contiguous().view(bs, -1, self.n_heads * dim_per_head)

        q = shape(self.q_lin(query)) / math.sqrt(dim_per_head)
        k = shape(self.k_lin(key))
        v = shape(self.v_lin(value))
        scores = torch.matmul(q, k.transpose(2, 3))
        mask = (mask == 0).view(mask_reshp).expand_as(scores)
        scores = scores.masked_fill(mask, torch.tensor(torch.finfo(scores.dtype).min))
        weights = self.dropout(F.softmax(scores, dim=-1))
        return self.out_lin(unshape(torch.matmul(weights, v)))


class FFN(nn.Module):
    def __init__(self, hidden, ff):
        super().__init__()
        self.dropout = nn.Dropout(0.1)
        self.lin1 = nn.Linear(hidden, ff)
        self.lin2 = nn.Linear(ff, hidden)
        self.activation = nn.GELU()

    def forward(self, x):
        return self.dropout(self.lin2(self.activation(self.lin1(x))))


class TransformerBlock(nn.Module):
    def __init__(self, hidden, heads, ff):
        super().__init__()
        self.attention = MultiHeadSelfAttention(hidden, heads)
        self.sa_layer_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn = FFN(hidden, ff)
        self.output_layer_norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x, attn_mask):
        sa_output = self.sa_layer_norm(self.attention(x, x, x, attn_mask) + x)
        return self.output_layer_norm(self.ffn(sa_output) + sa_output)


class Transformer(nn.Module):
    def __init__(self, hidden, heads, ff, layers):
        super().__init__()
        self.layer = nn.ModuleList([TransformerBlock(hidden, heads, ff) for _ in range(layers)])

    def forward(self, x, attn_mask):
        for layer_module in self.layer:
            x = layer_module(x, attn_mask)
        return x


class DistilBertModel(nn.Module):
    def __init__(self, vocab=100, hidden=32, heads=4, ff=64, layers=2, max_positions=64):
        super().__init__()
        self.embeddings = Embeddings(vocab, hidden, max_positions)
        self.transformer = Transformer(hidden, heads, ff, layers)

    def forward(self, input_ids, attention_mask):
        return self.transformer(self.embeddings(input_ids), attention_mask)


def distilbert(batch=2, sequence=10):
    torch.manual_seed(0)
    ids = torch.randint(1, 100, (batch, sequence))
    mask = torch.ones(batch, sequence, dtype=torch.bool)
    mask[0, -4:] = False
    return (DistilBertModel().eval(), {"input_ids": ids, "attention_mask": mask},
            {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}})


class TorchEncoder(nn.Module):
    """nn.TransformerEncoder from torch itself (fused fast path in eval)."""

    def __init__(self, hidden=32, heads=4, ff=64, layers=2, norm_first=False, activation="relu"):
        super().__init__()
        layer = nn.TransformerEncoderLayer(hidden, heads, ff, batch_first=True,
                                           norm_first=norm_first, activation=activation)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(hidden, 4)

    def forward(self, x):
        return self.head(self.encoder(x))


def torch_encoder(norm_first=False, activation="relu"):
    torch.manual_seed(0)
    return (TorchEncoder(norm_first=norm_first, activation=activation).eval(),
            {"x": torch.randn(2, 7, 32)}, {"x": {0: "batch", 1: "sequence"}})


class AttentionBlock(nn.Module):
    """nn.MultiheadAttention: fused self-attention, and the Python path with
    another key/value and attention weights."""

    def __init__(self, hidden=32, heads=4):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(hidden, heads)

    def forward(self, x, memory):
        y = self.self_attn(x, x, x, need_weights=False)[0]
        z, weights = self.cross_attn(y.transpose(0, 1), memory, memory)
        return z, weights


def torch_attention():
    torch.manual_seed(0)
    return (AttentionBlock().eval(), {"x": torch.randn(2, 5, 32), "memory": torch.randn(6, 2, 32)},
            {})


# --- recurrent ----------------------------------------------------------------


class RecurrentTagger(nn.Module):
    def __init__(self, vocab=50, embed=16, hidden=12, tags=5):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.gru = nn.GRU(2 * hidden, hidden, num_layers=2)
        self.rnn = nn.RNN(hidden, hidden, nonlinearity="relu", bidirectional=True)
        self.classifier = nn.Linear(2 * hidden, tags)

    def forward(self, tokens):
        x = self.embedding(tokens)
        x, (h, c) = self.lstm(x)
        y, h_gru = self.gru(x.transpose(0, 1))
        z, _ = self.rnn(y)
        return self.classifier(z.transpose(0, 1)), h, c, h_gru


def recurrent_tagger(batch=2, sequence=7):
    torch.manual_seed(0)
    return (RecurrentTagger().eval(), {"tokens": torch.randint(0, 50, (batch, sequence))},
            {"tokens": {0: "batch", 1: "sequence"}})


# --- scripted control flow -----------------------------------------------------


class GatedRecurrence(nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.gate = nn.Linear(hidden, hidden)
        self.fallback = nn.Linear(hidden, hidden)
        self.cell = nn.Linear(hidden, hidden)

    def forward(self, x):
        if bool(x.mean() > 0):  # `if` on a tensor value
            y = self.gate(x)
        else:
            y = self.fallback(x) * 2.0
        state = torch.zeros_like(y[0])
        for i in range(x.size(0)):  # a loop over a size, carrying state
            state = torch.tanh(self.cell(state) + y[i])
            if i % 2 == 1:
                state = state * 0.5
        if self.training:  # a constant condition once attributes are resolved
            state = state * 0.0
        steps = 0
        while bool(y.abs().max() > 0.1) and steps < 5:
            y = y * 0.5
            steps += 1
        return state, y


def scripted_control_flow(sign=1.0):
    torch.manual_seed(0)
    return (GatedRecurrence().eval(), {"x": torch.randn(4, 8) + sign}, {"x": {0: "steps"}})


class ScriptedDecoder(nn.Module):
    """A loop that collects its per-step results in lists read after it
    (torch.stack, torch.cat), as hand-written RNNs and greedy decoders do:
    ONNX Loop scan outputs."""

    def __init__(self, hidden=8, classes=3):
        super().__init__()
        self.cell = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):  # [steps, batch, hidden]
        state = torch.zeros_like(x[0])
        states: List[torch.Tensor] = []
        logits: List[torch.Tensor] = []
        for t in range(x.size(0)):
            state = torch.tanh(self.cell(state) + x[t])
            states.append(state)
            logits.append(self.out(state))
        return torch.stack(states), torch.stack(logits, 1), torch.cat(states, 1)


def scripted_decoder(steps=5):
    torch.manual_seed(0)
    return (ScriptedDecoder().eval(), {"x": torch.randn(steps, 2, 8)}, {"x": {0: "steps"}})


# --- dtypes ----------------------------------------------------------------------


class MixedDtypes(nn.Module):
    """float64 weights, int64 and bool inputs."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(20, 6)
        self.fc = nn.Linear(6, 3)

    def forward(self, ids, keep, x):
        h = self.embedding(ids).masked_fill(~keep.unsqueeze(-1), 0.0)
        return self.fc(h + x), keep.sum(dim=1), ids * 2


def float64_model():
    torch.manual_seed(0)
    model = MixedDtypes().double().eval()
    inputs = {"ids": torch.randint(0, 20, (2, 5)), "keep": torch.rand(2, 5) > 0.3,
              "x": torch.randn(2, 5, 6, dtype=torch.float64)}
    return model, inputs, {name: {0: "batch"} for name in inputs}


class HalfPrecision(nn.Module):
    """float16 parameters and input on the ops PyTorch 1.13 runs in half on
    CPU (no matmul, relu or exp there): elementwise, where, reductions, cat and
    a float32 softmax."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.rand(8) + 0.5)
        self.shift = nn.Parameter(torch.randn(8))

    def forward(self, x):
        y = x * self.scale + self.shift
        y = torch.where(y > 0, y, y * 0.1)
        return (torch.softmax(y.float(), dim=-1).half(), y.mean(dim=1),
                torch.cat([x, y.abs()], dim=0))


def float16_model():
    torch.manual_seed(0)
    return HalfPrecision().half().eval(), {"x": torch.randn(3, 8).half()}, {}
