"""The vision tower's training heads: what each image token is taught to say about its
cell, read out through the language model's own word embeddings.

An image token's features are scored against the embeddings of the words that name its
cell's object (" cup", " red", " small"), as the language model's output layer scores a
next word: so the vision tower learns to put a cell's kind, colour and size where the
language model keeps those words, and copying them into a caption is what the language
model already does with words in its context.  What the object sits on goes through a
learned map first, into a subspace of its own (its words are the kinds' words too).  The
heads are thrown away after training.
"""

from __future__ import annotations

import torch

from scalecap_ray.toy.batches import AUX_LABELS, IGNORE
from scalecap_ray.toy.world import COLOURS, KINDS, SIZES

# The words each label is read against ("none": a learned vector of its own).
LABEL_WORDS = {
    "kind": [*KINDS, None], "colour": list(COLOURS), "size": list(SIZES),
    # The words that name a cell's row and column ("at the top left", "on the right");
    # the middle row and column have none of their own.
    "row": ["top", None, "bottom"], "col": ["left", None, "right"],
    "on": [*KINDS, None],
}
MAPPED = ("on",)  # read through a learned map (its words are the kinds' words too)


class WordHeads(torch.nn.Module):
    def __init__(self, embeddings: torch.nn.Embedding, tokenizer, hidden: int):
        super().__init__()
        self.embeddings = [embeddings]  # a list: shared with the model, not a submodule
        self.ids = {}
        for label, words in LABEL_WORDS.items():
            ids = [tokenizer.encode(" " + w, add_special_tokens=False).ids
                   for w in words if w is not None]
            if any(len(i) != 1 for i in ids):
                raise ValueError(f"toy heads: a word of {label} is not one token")
            self.ids[label] = torch.tensor([i[0] for i in ids])
        self.none = torch.nn.ParameterDict({k: torch.nn.Parameter(torch.zeros(hidden))
                                            for k, w in LABEL_WORDS.items() if None in w})
        self.maps = torch.nn.ModuleDict({k: torch.nn.Linear(hidden, hidden, bias=False)
                                         for k in MAPPED})

    def logits(self, label: str, features: torch.Tensor) -> torch.Tensor:
        # The words stay where the language model put them; the features move to them.
        words = self.embeddings[0].weight[self.ids[label]].detach()
        if label in self.none:  # the "none" class sits where its None is in the list
            at = LABEL_WORDS[label].index(None)
            words = torch.cat([words[:at], self.none[label][None], words[at:]])
        x = self.maps[label](features) if label in self.maps else features
        return x @ words.T

    def loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        losses = [torch.nn.functional.cross_entropy(
            self.logits(k, features).float(), labels[:, j], ignore_index=IGNORE)
            for j, k in enumerate(AUX_LABELS)]
        return torch.stack(losses).mean()
