"""What `extract_features` extracts and how (``ExtractOptions``): the library's options of an
extraction, each also a `ltbench extract` option (``lt_bench.options``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..data.decode_names import DECODES
from ..errors import LTBenchError
from ..options import check_options, comma_list, option, seed_option

SPLIT_NAMES = ("train", "val", "test")
TEMPLATE_SETS = ("simple", "species", "openai")  # lt_bench.data.prompts


@dataclass
class ExtractOptions:
    """What to extract and how; the first group changes the file's contents, the rest does not."""

    splits: tuple[str, ...] = option(SPLIT_NAMES, "Comma-separated splits to extract.", cli_type=str,
                                     from_cli=comma_list)
    views: int = option(0, "Augmented views per train image, the same for every image (BALLAD augmentation); "
                        "0 = none. Excludes --view-budget.", min=0)
    view_budget: int = option(0, "Augmented views by expected Phase B draws: an image of class c gets "
                              "min(M, ceil(its expected draws under the class-aware sampler in BALLAD's "
                              "Phase B)), at least 1; 0 = off. Excludes --views.", min=0)
    templates: str = option("simple", "Prompt template set: simple (BALLAD's one), species ('a photo of a {}, a type of "
                            "species.', for iNaturalist) or openai (80).",
                            choices=TEMPLATE_SETS)
    seed: int = seed_option()  # seeds the augmented views (and a random-init model)
    decode: str = option("pil", "Image input path: pil (BALLAD's PIL transforms, the reference's pixels), fast "
                         "(libjpeg-turbo + DCT draft scaling + uint8 tensor ops on the CPU; pixels within 1-2 "
                         "grey levels), gpu (nvJPEG + the same tensor ops on the GPU), auto (gpu on CUDA, "
                         "else pil). See docs/protocol.md.", choices=DECODES)
    batch_size: int = option(256, "Images per forward pass (per process).", min=1)
    workers: int = option(4, "DataLoader worker processes (0: main process).", min=0)
    skip_bad: bool = option(False, "Leave out unreadable images (recorded in the cache).")
    overwrite: bool = option(False, "Replace an output or unfinished run of other settings.")
    progress: bool = True  # rich progress bar on stderr (rank 0); not an option

    def validate(self) -> None:
        """``check_options`` plus what one option alone cannot say: --views and --view-budget
        exclude each other."""
        check_options(self)
        check_views(self.views, self.view_budget)


def check_views(views: int, view_budget: int) -> None:
    if views and view_budget:
        raise LTBenchError(f"--views {views} and --view-budget {view_budget} exclude each other: give --views K "
                           "(K views per image) or --view-budget M (by expected draws), and 0 for the other")
