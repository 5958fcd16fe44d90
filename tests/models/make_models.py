#!/usr/bin/python3
"""Generate the TorchScript fixture models used by mexport's end-to-end tests.

    /usr/bin/python3 tests/models/make_models.py --out DIR [--only NAME ...]

Every model is built with torch.manual_seed(0), put in eval mode, traced with
torch.jit.trace(..., check_trace=False) (scripted with torch.jit.script where
noted) and saved as DIR/<name>.pt. A file that
already exists and is newer than this script is kept as it is.

Models:
  bert_tiny       plain-torch replica of Hugging Face BertModel (same module
                  names and structure; 48 modules including the root)
  resnet18        torchvision resnet18(weights=None), BatchNorm stats randomised
  mobilenet_v2    torchvision mobilenet_v2(weights=None), BatchNorm stats randomised
  unsupported_op  Linear + a submodule `odd` calling torch.cumprod (no ONNX op)
  control_flow    *scripted* (torch.jit.script): Linear, a submodule `gate` with
                  an `if` on a tensor value (a prim::If stays in the graph), Linear

Use only Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14).
"""

import argparse
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# BERT-tiny: a replica of transformers' modeling_bert.BertModel (inference
# path, no cross-attention, no cache, return_dict=False).
# ---------------------------------------------------------------------------

BERT_CONFIG = dict(
    vocab_size=1000,
    hidden_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=512,
    max_position_embeddings=512,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
)
BERT_SEQ = 16
BERT_MODULES = 48  # named_modules(), root included


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=0)
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])
        self.register_buffer(
            "position_ids", torch.arange(c["max_position_embeddings"]).expand((1, -1)))

    def forward(self, input_ids, token_type_ids):
        input_shape = input_ids.size()
        seq_length = input_shape[1]
        position_ids = self.position_ids[:, 0:seq_length]
        inputs_embeds = self.word_embeddings(input_ids)
        token_type_embeddings = self.token_type_embeddings(token_type_ids)
        embeddings = inputs_embeds + token_type_embeddings
        position_embeddings = self.position_embeddings(position_ids)
        # HF writes `embeddings += position_embeddings`; the out-of-place add
        # keeps the traced graph free of in-place aten::add_ (same numbers).
        embeddings = embeddings + position_embeddings
        embeddings = self.LayerNorm(embeddings)
        embeddings = self.dropout(embeddings)
        return embeddings


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.num_attention_heads = c["num_attention_heads"]
        self.attention_head_size = int(c["hidden_size"] / c["num_attention_heads"])
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Linear(c["hidden_size"], self.all_head_size)
        self.key = nn.Linear(c["hidden_size"], self.all_head_size)
        self.value = nn.Linear(c["hidden_size"], self.all_head_size)
        self.dropout = nn.Dropout(c["attention_probs_dropout_prob"])

    def transpose_for_scores(self, x):
        new_x_shape = x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)
        x = x.view(new_x_shape)
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask):
        mixed_query_layer = self.query(hidden_states)
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        query_layer = self.transpose_for_scores(mixed_query_layer)
        attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
        attention_scores = attention_scores / math.sqrt(self.attention_head_size)
        attention_scores = attention_scores + attention_mask
        attention_probs = nn.functional.softmax(attention_scores, dim=-1)
        attention_probs = self.dropout(attention_probs)
        context_layer = torch.matmul(attention_probs, value_layer)
        context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
        new_context_layer_shape = context_layer.size()[:-2] + (self.all_head_size,)
        context_layer = context_layer.view(new_context_layer_shape)
        return (context_layer,)


class BertSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c)

    def forward(self, hidden_states, attention_mask):
        self_outputs = self.self(hidden_states, attention_mask)
        attention_output = self.output(self_outputs[0], hidden_states)
        outputs = (attention_output,) + self_outputs[1:]
        return outputs


class GELUActivation(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = F.gelu

    def forward(self, input):
        return self.act(input)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.intermediate_act_fn = GELUActivation()

    def forward(self, hidden_states):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.intermediate_act_fn(hidden_states)
        return hidden_states


class BertOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["intermediate_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def feed_forward_chunk(self, attention_output):
        intermediate_output = self.intermediate(attention_output)
        layer_output = self.output(intermediate_output, attention_output)
        return layer_output

    def forward(self, hidden_states, attention_mask):
        self_attention_outputs = self.attention(hidden_states, attention_mask)
        attention_output = self_attention_outputs[0]
        outputs = self_attention_outputs[1:]
        # HF: apply_chunking_to_forward with chunk_size 0 == a direct call.
        layer_output = self.feed_forward_chunk(attention_output)
        outputs = (layer_output,) + outputs
        return outputs


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, hidden_states, attention_mask):
        for layer_module in self.layer:
            layer_outputs = layer_module(hidden_states, attention_mask)
            hidden_states = layer_outputs[0]
        return (hidden_states,)


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        first_token_tensor = hidden_states[:, 0]
        pooled_output = self.dense(first_token_tensor)
        pooled_output = self.activation(pooled_output)
        return pooled_output


class BertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = dict(c)
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)
        self.pooler = BertPooler(c)
        self._init_weights()

    def _init_weights(self):
        # As HF's BertPreTrainedModel._init_weights (initializer_range 0.02),
        # except that LayerNorm weights/biases get random values too so that
        # a mix-up of weight and bias cannot pass the numeric tests.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.weight.data.normal_(mean=0.0, std=0.02)
                m.bias.data.normal_(mean=0.0, std=0.02)
            elif isinstance(m, nn.Embedding):
                m.weight.data.normal_(mean=0.0, std=0.02)
                if m.padding_idx is not None:
                    m.weight.data[m.padding_idx].zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.data.uniform_(0.8, 1.2)
                m.bias.data.normal_(mean=0.0, std=0.02)

    def forward(self, input_ids, attention_mask, token_type_ids):
        ext = attention_mask[:, None, None, :].to(dtype=torch.float32)
        ext = (1.0 - ext) * torch.finfo(torch.float32).min
        embedding_output = self.embeddings(input_ids, token_type_ids)
        encoder_outputs = self.encoder(embedding_output, ext)
        sequence_output = encoder_outputs[0]
        pooled_output = self.pooler(sequence_output)
        return (sequence_output, pooled_output)


def bert_example_inputs(batch=1, seq=BERT_SEQ, vocab=BERT_CONFIG["vocab_size"]):
    input_ids = torch.randint(0, vocab, (batch, seq), dtype=torch.int64)
    attention_mask = torch.ones(batch, seq, dtype=torch.int64)
    token_type_ids = torch.zeros(batch, seq, dtype=torch.int64)
    return (input_ids, attention_mask, token_type_ids)


def build_bert_tiny():
    model = BertModel(BERT_CONFIG).eval()
    n = len(list(model.named_modules()))
    assert n == BERT_MODULES, f"bert_tiny has {n} modules, expected {BERT_MODULES}"
    return model, bert_example_inputs()


# ---------------------------------------------------------------------------
# Vision models
# ---------------------------------------------------------------------------

def randomize_batchnorm(model):
    """Give every BatchNorm seeded non-trivial statistics and affine params."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                if m.weight is not None:
                    m.weight.uniform_(0.5, 1.5)
                if m.bias is not None:
                    m.bias.uniform_(-0.5, 0.5)
    return model


def build_vision(name):
    import torchvision
    ctor = getattr(torchvision.models, name)
    model = randomize_batchnorm(ctor(weights=None)).eval()
    return model, (torch.randn(1, 3, 224, 224, dtype=torch.float32),)


# ---------------------------------------------------------------------------
# Unsupported op
# ---------------------------------------------------------------------------

UNSUPPORTED_OP = "aten::cumprod"
UNSUPPORTED_MODULE = "odd"


class OddOp(nn.Module):
    def forward(self, x):
        # ONNX has CumSum but no cumulative product; torch.onnx 1.13 has no
        # converter for it either.
        return torch.cumprod(x, dim=1)


class UnsupportedOpModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.odd = OddOp()

    def forward(self, x):
        return self.odd(self.fc(x))


def build_unsupported_op():
    return UnsupportedOpModel().eval(), (torch.randn(2, 8),)


# ---------------------------------------------------------------------------
# Control flow: scripted, so the data-dependent `if` stays a prim::If (a trace
# would keep only the branch the example took). The three Linear modules share
# one TorchScript type, and therefore one forward graph.
# ---------------------------------------------------------------------------

CONTROL_FLOW_MODULE = "gate"


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        if bool(h.sum() > 0):
            h = torch.relu(h)
        else:
            h = -h
        return h


class ControlFlowModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.gate = Gate()
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.gate(self.proj(x)))


def build_control_flow():
    return ControlFlowModel().eval(), (torch.randn(2, 8),)


# ---------------------------------------------------------------------------

SCRIPTED = {"control_flow"}  # torch.jit.script instead of torch.jit.trace

BUILDERS = {
    "bert_tiny": build_bert_tiny,
    "resnet18": lambda: build_vision("resnet18"),
    "mobilenet_v2": lambda: build_vision("mobilenet_v2"),
    "unsupported_op": build_unsupported_op,
    "control_flow": build_control_flow,
}


def up_to_date(path):
    return (os.path.exists(path)
            and os.path.getmtime(path) > os.path.getmtime(os.path.abspath(__file__)))


def make(name, out_dir, force=False):
    path = os.path.join(out_dir, name + ".pt")
    if not force and up_to_date(path):
        print(f"{path}: up to date")
        return path
    torch.manual_seed(0)
    model, example = BUILDERS[name]()
    with torch.no_grad():
        if name in SCRIPTED:
            traced = torch.jit.script(model)
        else:
            traced = torch.jit.trace(model, example, check_trace=False)
    if name == "bert_tiny":
        n = len(list(traced.named_modules()))
        assert n == BERT_MODULES, f"traced bert_tiny has {n} modules, expected {BERT_MODULES}"
    tmp = path + ".tmp"
    traced.save(tmp)
    os.replace(tmp, path)
    print(f"{path}: written")
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="models to build: " + ", ".join(BUILDERS))
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args(argv)

    names = list(BUILDERS)
    if args.only:
        names = [n[:-3] if n.endswith(".pt") else n for n in args.only]
        unknown = [n for n in names if n not in BUILDERS]
        if unknown:
            ap.error(f"unknown model(s): {', '.join(unknown)}; choose from {', '.join(BUILDERS)}")
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)  # the machine is shared with a compiler
    for name in names:
        make(name, args.out, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
