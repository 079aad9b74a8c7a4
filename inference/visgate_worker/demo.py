"""Builds the tiny built-in models for demos and tests: a random-weight diffusers text-to-image
pipeline, Grounding DINO and SAM 2 with a few small layers, saved with `save_pretrained` under
`MODEL_CACHE_DIR/demo/` on first use and loaded back through the same code as real weights.

Random weights make noise images and arbitrary boxes; the point is that every step runs, on
CPU, in seconds, with no network.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from visgate_worker.concepts import TEMPLATES

DEMO_VERSION = 1
TEXT_TO_IMAGE = "text-to-image"
DETECTOR = "grounding-dino"
SAM2 = "sam2"
IMAGE_SIZE = 64  # the tiny pipeline's native output
RENDER_SIZE = 128  # the tiny detector's smallest sensible input


def demo_root(model_cache_dir: Path) -> Path:
    return model_cache_dir / "demo" / f"v{DEMO_VERSION}"


@dataclass(frozen=True)
class DemoFolder:
    """A model source: one demo model's folder, built (all demo models at once) on fetch."""

    model_cache_dir: Path
    name: str

    @property
    def label(self) -> str:
        return f"demo/{self.name}"

    def is_cached(self) -> bool:
        return (demo_root(self.model_cache_dir) / "READY").exists()

    def fetch(self) -> Path:
        return ensure_demo_models(self.model_cache_dir) / self.name


def ensure_demo_models(model_cache_dir: Path) -> Path:
    """The demo models' folder, built once; concurrent builders race harmlessly (the first
    complete folder to be renamed into place wins)."""
    root = demo_root(model_cache_dir)
    if (root / "READY").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root.parent))
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            build_text_to_image(staging / TEXT_TO_IMAGE)
            build_detector(staging / DETECTOR)
            build_sam2(staging / SAM2)
        (staging / "READY").write_text(json.dumps({"version": DEMO_VERSION}))
        try:
            staging.rename(root)
        except OSError:  # another process got there first
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def build_text_to_image(path: Path) -> None:
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path.mkdir(parents=True, exist_ok=True)
    vocab_dir = Path(tempfile.mkdtemp())
    try:
        # A character-level BPE vocabulary: enough to tokenize any ASCII prompt.
        chars = [chr(c) for c in range(33, 127)]
        vocab = {token: i for i, token in enumerate(chars + [c + "</w>" for c in chars])}
        vocab["<|startoftext|>"] = len(vocab)
        vocab["<|endoftext|>"] = len(vocab)
        (vocab_dir / "vocab.json").write_text(json.dumps(vocab))
        (vocab_dir / "merges.txt").write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer(
            str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt"), model_max_length=32
        )
    finally:
        shutil.rmtree(vocab_dir, ignore_errors=True)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=32,
            projection_dim=16,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )
    unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=4,
        attention_head_dim=2,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=IMAGE_SIZE,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerAncestralDiscreteScheduler(timestep_spacing="trailing", steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(path))


def _detector_vocab() -> list[str]:
    words = {"a", "the", "."}
    for template in TEMPLATES.values():
        for slot in template.parts:
            words.update(slot.phrase.split())
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    return [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *sorted(words),
        *letters,
        *(f"##{c}" for c in letters),
    ]


def build_detector(path: Path) -> None:
    from transformers import (
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        SwinConfig,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    path.mkdir(parents=True, exist_ok=True)
    vocab = _detector_vocab()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = GroundingDinoConfig(
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        num_queries=8,
        num_feature_levels=4,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=32,
        backbone_config=SwinConfig(
            window_size=7,
            embed_dim=8,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 1, 1],
            image_size=RENDER_SIZE,
            out_indices=[2, 3, 4],
        ),
        text_config={
            "model_type": "bert",
            "vocab_size": len(vocab),
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 16,
            "max_position_embeddings": 64,
        },
    )
    GroundingDinoForObjectDetection(config).save_pretrained(str(path))
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessorPil(
            size={"shortest_edge": RENDER_SIZE, "longest_edge": RENDER_SIZE}
        ),
        tokenizer=BertTokenizer(str(path / "vocab.txt")),
    )
    processor.save_pretrained(str(path))


def build_sam2(path: Path) -> None:
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2Model,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    config = Sam2Config(
        vision_config=Sam2VisionConfig(
            backbone_config=Sam2HieraDetConfig(
                hidden_size=12,
                image_size=RENDER_SIZE,
                patch_kernel_size=7,
                patch_stride=4,
                patch_padding=3,
                blocks_per_stage=[1, 1, 1, 1],
                embed_dim_per_stage=[12, 24, 48, 96],
                num_attention_heads_per_stage=[1, 1, 1, 1],
            ),
            backbone_channel_list=[96, 48, 24, 12],
            backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
            fpn_hidden_size=32,
        ),
        prompt_encoder_config=Sam2PromptEncoderConfig(
            image_size=RENDER_SIZE, patch_size=16, mask_input_channels=8, hidden_size=32
        ),
        mask_decoder_config=Sam2MaskDecoderConfig(
            hidden_size=32,
            mlp_dim=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            iou_head_hidden_dim=32,
        ),
    )
    Sam2Model(config).save_pretrained(str(path))
