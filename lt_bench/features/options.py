"""What `extract_features` extracts and how (``ExtractOptions``): the library's options of an
extraction, each also a `ltbench extract` option (``lt_bench.options``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import comma_list, option, seed_option

SPLIT_NAMES = ("train", "val", "test")
TEMPLATE_SETS = ("simple", "openai")  # lt_bench.data.prompts


@dataclass
class ExtractOptions:
    """What to extract and how; the first group changes the file's contents, the rest does not."""

    splits: tuple[str, ...] = option(SPLIT_NAMES, "Comma-separated splits to extract.", cli_type=str,
                                     from_cli=comma_list)
    views: int = option(0, "Augmented views per train image (BALLAD augmentation); 0 = center only.", min=0)
    templates: str = option("simple", "Prompt template set: simple (BALLAD's one) or openai (80).",
                            choices=TEMPLATE_SETS)
    seed: int = seed_option()  # seeds the augmented views (and a random-init model)
    batch_size: int = option(256, "Images per forward pass (per process).", min=1)
    workers: int = option(4, "DataLoader worker processes (0: main process).", min=0)
    skip_bad: bool = option(False, "Leave out unreadable images (recorded in the cache).")
    overwrite: bool = option(False, "Replace an output or unfinished run of other settings.")
    progress: bool = True  # rich progress bar on stderr (rank 0); not an option
