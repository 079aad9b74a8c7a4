"""Grounded SAM 2: Grounding DINO finds a box per part phrase, SAM 2 turns each box into a mask.

Both come from transformers (`AutoModelForZeroShotObjectDetection` + `AutoProcessor`, and
`Sam2Model`). SAM 2's inputs are prepared here rather than by `Sam2Processor`, whose image
processor needs torchvision; the steps are the processor's own: resize to the model's square
input, ImageNet normalisation, boxes scaled to that square, masks upsampled back and cut at 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from visgate_worker.models.base import ManagedModel
from visgate_worker.models.sources import Source
from visgate_worker.packages import require
from visgate_worker.vram import Device

DETECTOR_REPO = "IDEA-Research/grounding-dino-tiny"
SAM2_REPO = "facebook/sam2.1-hiera-large"
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class GroundedSam2(ManagedModel):
    """Runs in float32 whatever the device dtype: both models are small, and Grounding DINO's
    deformable attention is unreliable in half precision."""

    role = "segmenter"

    def __init__(
        self,
        name: str,
        detector: Source,
        sam: Source,
        device: Device,
        *,
        box_threshold: float = 0.3,
        text_threshold: float = 0.25,
        batch_size: int = 4,
    ) -> None:
        super().__init__(name, [detector, sam], device)
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold
        self.batch_size = batch_size
        self._processor: Any = None
        self._detector: Any = None
        self._sam: Any = None

    def _build(self, paths: list[Path]) -> None:
        transformers = require("transformers", package="transformers")
        self._processor = transformers.AutoProcessor.from_pretrained(str(paths[0]))
        detector = transformers.AutoModelForZeroShotObjectDetection.from_pretrained(str(paths[0]))
        self._detector = detector.to(self.device.name).eval()
        self._sam = (
            transformers.Sam2Model.from_pretrained(str(paths[1])).to(self.device.name).eval()
        )

    def _drop(self) -> None:
        self._processor = self._detector = self._sam = None

    @torch.inference_mode()
    def segment(self, image: Image.Image, phrases: Sequence[str]) -> list[np.ndarray | None]:
        self._require_loaded()
        image = image.convert("RGB")
        boxes = self._detect(image, phrases)
        found = [i for i, box in enumerate(boxes) if box is not None]
        masks: list[np.ndarray | None] = [None] * len(phrases)
        if found:
            found_masks = self._masks(image, [boxes[i] for i in found])  # type: ignore[misc]
            for i, mask in zip(found, found_masks, strict=True):
                masks[i] = mask
        return masks

    def _detect(self, image: Image.Image, phrases: Sequence[str]) -> list[list[float] | None]:
        """Best box per phrase; one phrase per prompt, so a box's phrase is never ambiguous.
        Prompts go in small batches: the processor upsizes images to ~800 px."""
        boxes: list[list[float] | None] = []
        for start in range(0, len(phrases), self.batch_size):
            texts = [f"{phrase}." for phrase in phrases[start : start + self.batch_size]]
            inputs = self._processor(
                images=[image] * len(texts), text=texts, return_tensors="pt", padding=True
            ).to(self.device.name)
            outputs = self._detector(**inputs)
            results = self._processor.post_process_grounded_object_detection(
                outputs,
                inputs["input_ids"],
                threshold=self.box_threshold,
                text_threshold=self.text_threshold,
                target_sizes=[(image.height, image.width)] * len(texts),
            )
            for result in results:
                scores = result["scores"]
                if len(scores) == 0:
                    boxes.append(None)
                    continue
                best = result["boxes"][int(scores.argmax())]
                boxes.append([float(v) for v in best.tolist()])
        return boxes

    def _masks(self, image: Image.Image, boxes: list[list[float]]) -> list[np.ndarray]:
        size = int(self._sam.config.prompt_encoder_config.image_size)
        pixels = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), np.float32)
        pixels = (pixels / 255.0 - _MEAN) / _STD
        pixel_values = torch.from_numpy(pixels.transpose(2, 0, 1)).unsqueeze(0)
        scale = torch.tensor(
            [size / image.width, size / image.height, size / image.width, size / image.height]
        )
        input_boxes = (torch.tensor(boxes, dtype=torch.float32) * scale).unsqueeze(0)
        outputs = self._sam(
            pixel_values=pixel_values.to(self.device.name),
            input_boxes=input_boxes.to(self.device.name),
            multimask_output=False,
        )
        low_res = outputs.pred_masks[0, :, :1].float()  # (boxes, 1, h, w)
        full = F.interpolate(
            low_res, (image.height, image.width), mode="bilinear", align_corners=False
        )
        return [mask[0].cpu().numpy() > 0.0 for mask in full]
