"""Read a scalecap-ray output into training dataloaders: a PyTorch `DataLoader`, Ray Data's
`iter_torch_batches` and Hugging Face `datasets`.

    python examples/read_output.py out/demo

Each reader takes the successful rows' (image path, caption) pairs; a real training loop
would open the images (or use `image_uri`) and tokenise the captions.
"""

from __future__ import annotations

import glob
import os
import sys

import pyarrow.dataset as pads


def caption_column(schema_names: list[str]) -> str:
    """`final_caption` for ScaleCap outputs, `caption` for caption-job outputs."""
    return "final_caption" if "final_caption" in schema_names else "caption"


def part_files(output: str) -> list[str]:
    # Part files only: the folder also holds the run record (and, mid-run, hidden temporaries).
    return sorted(glob.glob(os.path.join(output, "part-*.parquet")))


def torch_dataloader(output: str, batch_size: int = 4):
    """A map-style PyTorch dataset over the successful rows."""
    import torch.utils.data

    dataset = pads.dataset(part_files(output), format="parquet")
    text = caption_column(dataset.schema.names)
    table = dataset.to_table(columns=["image_uri", text], filter=pads.field("error").is_null())

    class Captions(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return table.num_rows

        def __getitem__(self, i: int) -> dict[str, str]:
            return {"image": table["image_uri"][i].as_py(), "caption": table[text][i].as_py()}

    return torch.utils.data.DataLoader(Captions(), batch_size=batch_size, shuffle=False)


def ray_batches(output: str, batch_size: int = 4):
    """Ray Data streaming batches: captions stay strings, numbers become tensors."""
    import ray.data
    import torch

    ds = ray.data.read_parquet(part_files(output))
    text = caption_column(ds.columns())
    ds = ds.filter(lambda row: row["error"] is None).select_columns([text, "output_tokens"])

    def collate(batch):  # torch has no string tensors: keep the captions a list
        return {"caption": list(batch[text]),
                "output_tokens": torch.as_tensor(batch["output_tokens"])}

    return ds.iter_torch_batches(batch_size=batch_size, collate_fn=collate)


def hf_dataset(output: str):
    """A Hugging Face `datasets.Dataset` of the successful rows."""
    import datasets

    ds = datasets.load_dataset("parquet", data_files=part_files(output), split="train")
    text = caption_column(ds.column_names)
    return ds.filter(lambda row: row["error"] is None).select_columns(["image_uri", text])


def main(output: str) -> None:
    n = sum(len(batch["caption"]) for batch in torch_dataloader(output))
    print(f"torch DataLoader: {n} captions")
    n = sum(len(batch["caption"]) for batch in ray_batches(output))
    print(f"ray iter_torch_batches: {n} rows")
    print(f"datasets: {len(hf_dataset(output))} rows")


if __name__ == "__main__":
    main(sys.argv[1])
