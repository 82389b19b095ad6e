"""A torch Dataset over one split of a ReidData: items follow the batch contract.

An item is ``{"image": float tensor CxHxW, "pid", "camid", "path"}`` plus ``"class_id"`` on
the train split (the image's key is the test config's ``image_key``, "image" by default); the default collate turns a list of them into a dict of batched tensors
(``path``: a list of strings).
"""

from __future__ import annotations

from typing import Any

import torch.utils.data

from visim.data.records import DataError, ReidData
from visim.data.transforms import to_tensor


class ImageDataset(torch.utils.data.Dataset):
    def __init__(
        self, data: ReidData, split: str, transform: Any = None, image_key: str = "image"
    ) -> None:
        self.data = data
        self.image_key = image_key
        self.split = split
        self.records = data.split(split)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        try:
            image = self.data.load_image(record)
        except (OSError, ValueError) as exc:  # missing, unreadable, truncated, not an image
            raise DataError(
                f"cannot read image {record.path!r} (index {index} of the {self.split} split): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        image = self.transform(image) if self.transform is not None else to_tensor(image)
        item = {self.image_key: image, "pid": record.pid, "camid": record.camid, "path": record.path}
        if record.class_id is not None:
            item["class_id"] = record.class_id
        return item
