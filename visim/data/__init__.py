"""Built-in data components: datasets, transforms and samplers, registered through the hooks.

Importing this module imports no torch, torchvision, numpy or scikit-learn: those are
imported when a component is built. The batch contract, loaders and checks live in
submodules (``records``, ``loaders``, ``check``). :class:`ReidData` (what a dataset factory
returns) and :class:`Record` (one image) are public API.
"""

from __future__ import annotations

from visim.data import datasets, sampler_factories, transforms
from visim.data.records import DataError, Record, ReidData
from visim.hookspecs import hookimpl

__all__ = ["DataError", "Record", "ReidData"]


@hookimpl
def register_datasets(register):
    register("market1501", datasets.build_market1501, params=datasets.Market1501Params, aliases=("Market1501",))
    register("dukemtmc", datasets.build_dukemtmc, params=datasets.DukeMTMCParams, aliases=("dukemtmcreid", "DukeMTMCreID"))
    register("msmt17", datasets.build_msmt17, params=datasets.MSMT17Params, aliases=("MSMT17",))
    register("image_folder", datasets.build_image_folder, params=datasets.ImageFolderParams)
    register("manifest", datasets.build_manifest, params=datasets.ManifestParams)
    register("digits", datasets.build_digits, params=datasets.DigitsParams)


@hookimpl
def register_transforms(register):
    t = transforms
    register("resize", t.build_resize, params=t.ResizeParams)
    register("random_flip", t.build_random_flip, params=t.RandomFlipParams, aliases=("random_horizontal_flip",))
    register("random_crop", t.build_random_crop, params=t.RandomCropParams)
    register("random_erasing", t.build_random_erasing, params=t.RandomErasingParams)
    register("color_jitter", t.build_color_jitter, params=t.ColorJitterParams)
    register("normalize", t.build_normalize, params=t.NormalizeParams)
    register("to_tensor", t.build_to_tensor, params=t.ToTensorParams)


@hookimpl
def register_samplers(register):
    s = sampler_factories
    register("identity", s.build_identity, params=s.IdentitySamplerParams, aliases=("pk", "RandomIdentitySampler"))
    register("random", s.build_random, params=s.PlainSamplerParams)
    register("sequential", s.build_sequential, params=s.PlainSamplerParams)
