"""VisualSimilarityEngine: train an embedding model on identities, rank a gallery per query.

The interface is the original engine's (``run``, ``train_model``, ``test``, ``evaluate``,
``predict``, ``save_model``, ``load_model``, ...); ``test_dl`` holds the query data and
``val_dl`` the gallery, as there (inside, they are ``query_loader`` and ``gallery_loader``).
"""

from __future__ import annotations

import functools
import json
import math
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from visim import contract_checks
from visim.config.schema import Experiment
from visim.distributed import group as distributed
from visim.distributed.sharded_extract import extract_sharded
from visim.engine import checkpoint as ckpt
from visim.engine import learnable_loss, resume
from visim.engine.extract import Embeddings
from visim.engine.interrupt import GracefulInterrupt, TrainingInterrupted, signal_name
from visim.errors import TrainingDiverged
from visim.outputs.atomic import write_text
from visim.outputs.report import format_epoch, format_results
from visim.outputs.rundir import CHECKPOINTS, safe_name
from visim.outputs.runlog import CONSOLE, hold_run_log

if TYPE_CHECKING:
    from visim.data.loaders import Loaders

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str) -> torch.device:
    name = distributed.device_for_rank(name)  # under DDP each process drives GPU LOCAL_RANK
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel / DataParallel."""
    return module.module if hasattr(module, "module") else module


class VisualSimilarityEngine:
    """Train and test visual embeddings.

    ``get_data`` reads the image at ``test.image_key``; ``get_target`` the class id (training)
    or identity. ``metric`` is a registered name (via the config) or any callable
    ``(a, b) -> [N, M]``.
    """

    def __init__(
        self,
        config: Experiment | dict,
        model: nn.Module,
        test_loader,
        val_loader,
        *,
        train_loader=None,
        loaders: Loaders | None = None,
        run_dir: str | Path | None = None,
        metric=None,
        quiet: bool = False,
        is_main_process: bool | None = None,
        num_classes: int | None = None,
    ) -> None:
        if not isinstance(config, Experiment):
            from visim.config.load import config_from_dict

            config = config_from_dict(config)
        self.config = config
        self.device = resolve_device(config.device)
        if config.threads is not None:  # here, so an engine built without build_engine has it too
            torch.set_num_threads(config.threads)
        if self.device.type == "cpu":
            # Denormal floats (tiny activations of a fresh network) slow CPU convolutions by an
            # order of magnitude: flushing them to zero made the demo 4x faster, same results.
            torch.set_flush_denormal(True)
        self.precision = DTYPES[config.precision]
        self.query_loader, self.gallery_loader, self.train_dl = test_loader, val_loader, train_loader
        self.loaders = loaders  # what build_loaders made, if it did: the dataset, bad-image report
        self.metric = metric if metric is not None else contract_checks.build(config.test.metric)
        self._metric_checked = False  # its first block in an evaluation is checked, once
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.quiet = quiet
        # None: ask torch.distributed (rank 0 writes; a single process always does).
        self.is_main_process = distributed.is_main_process() if is_main_process is None else is_main_process
        self._num_classes = num_classes
        self.model = self.configure_torch_module(model)
        self.embedding_dim = getattr(model, "embedding_dim", None)
        self.loss = None
        if config.train is not None:
            self.embedding_dim = contract_checks.measure_embedding_dim(model, config.data.image_size, self.device)
            context = {"num_classes": self.num_classes, "embedding_dim": self.embedding_dim}
            self.loss = self.configure_loss(contract_checks.build(config.train.loss, **context))
        modes = ("train", "eval") if train_loader is not None else ("eval",)
        contract_checks.watch_model(model, num_classes=self.num_classes, embedding_dim=self.embedding_dim, modes=modes)
        self.optimizer = None
        self.lr_sched = None
        self.scaler = None
        self.start_epoch = config.train.start_epoch if config.train else 1
        self.epoch = self.start_epoch - 1
        self.global_step = 0
        self.last_loss: float | None = None  # the last finite training loss, for a divergence report
        self.best_metric: float | None = None
        self.last_results: dict[str, Any] | None = None
        self.last_result = None  # the last test's RankingResult, query and gallery Embeddings
        self.last_query: Embeddings | None = None
        self.last_gallery: Embeddings | None = None
        self.history: list[dict[str, Any]] = []  # per-epoch train stats (and test metrics)
        self._writer = None
        self._interrupt = GracefulInterrupt()
        # run.log records what this engine prints, until close() (or garbage collection).
        self._run_log = hold_run_log(self, self.run_dir) if self.run_dir is not None and self.is_main_process else None

    # -- attributes of the original ----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def name_safe(self) -> str:
        return safe_name(self.config.name)

    @property
    def test_dl(self):
        """The query data (the original engine's name)."""
        return self.query_loader

    @test_dl.setter
    def test_dl(self, loader) -> None:
        self.query_loader = loader

    @property
    def val_dl(self):
        """The gallery data (the original engine's name)."""
        return self.gallery_loader

    @val_dl.setter
    def val_dl(self, loader) -> None:
        self.gallery_loader = loader

    @property
    def is_training(self) -> bool:
        return self.model.training

    @property
    def num_classes(self) -> int:
        if self._num_classes is not None:
            return self._num_classes
        head = getattr(unwrap(self.model), "classifier", None) or getattr(
            getattr(unwrap(self.model), "network", None), "classifier", None
        )
        return head.out_features if isinstance(head, nn.Linear) else 0

    @property
    def writer(self):
        """TensorBoard writer in the run directory (None without one, or off the main rank)."""
        if self._writer is None and self.run_dir is not None and self.is_main_process:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir))
        return self._writer

    # -- modules and data ------------------------------------------------------------------
    def configure_torch_module(self, module: nn.Module, train: bool | None = None) -> nn.Module:
        """Move ``module`` to the device; set train/eval mode (default: train if training)."""
        module = module.to(self.device)
        # channels_last on every device: on CPU too, oneDNN convolutions run osnet ~1.4x
        # faster in it (train and inference) and were never slower (benchmarks/train_bench.py).
        module = module.to(memory_format=torch.channels_last)
        module.train(self.config.train is not None if train is None else train)
        # DDP only for training: extraction runs on the bare module (see extract).
        return distributed.wrap_model(module, self.device) if self.train_dl is not None else module

    def configure_loss(self, loss: nn.Module) -> nn.Module:
        """The loss's own parameters live beside the model's: on the device, all-reduced (DDP)."""
        contract_checks.watch_loss(loss)
        loss = loss.to(self.device)
        return distributed.wrap_model(loss, self.device) if self.train_dl is not None else loss

    def set_model_mode(self, mode: str) -> None:
        if mode not in ("train", "test", "eval"):
            raise ValueError(f"mode must be 'train' or 'test' (got {mode!r})")
        self.model.train(mode == "train")

    def get_data(self, batch: dict) -> torch.Tensor:
        images = batch[self.config.test.image_key]
        non_blocking = self.device.type == "cuda"
        images = images.to(self.device, non_blocking=non_blocking)
        return images.contiguous(memory_format=torch.channels_last) if images.dim() == 4 else images

    def get_target(self, batch: dict) -> torch.Tensor:
        key = "class_id" if self.model.training else "pid"
        return batch[key].to(self.device, non_blocking=self.device.type == "cuda")

    def autocast(self):
        if self.precision == torch.float32:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.precision)

    # -- training -------------------------------------------------------------------------
    def initialize_optimizer(self) -> None:
        """Build optimizer and scheduler from the config, unless already there (resume)."""
        train = self.config.train
        if train is None:
            raise RuntimeError("the config has no train section")
        if self.optimizer is None:
            params = [p for p in self.model.parameters() if p.requires_grad]
            loss_groups = learnable_loss.param_groups(self.loss)  # same options unless the loss says
            parameters = [{"params": params}, *loss_groups] if loss_groups else params
            self.optimizer = contract_checks.build(train.optimizer, parameters=parameters)
        if self.lr_sched is None and train.scheduler is not None:
            self.lr_sched = contract_checks.build(train.scheduler, optimizer=self.optimizer, epochs=train.epochs)
        if self.scaler is None and self.precision == torch.float16 and self.device.type == "cuda":
            self.scaler = torch.amp.GradScaler("cuda")

    def train_model(self) -> torch.optim.Optimizer:
        """Train from ``start_epoch`` to ``epochs`` (1-based, inclusive); test per ``eval_interval``."""
        train = self.config.train
        self.initialize_optimizer()
        with self._interrupt:
            for epoch in range(self.start_epoch, train.epochs + 1):
                self.epoch = epoch
                started = time.perf_counter()
                stats = self.train_epoch(epoch)
                metrics = None
                if epoch % train.eval_interval == 0 or epoch == train.epochs:
                    metrics = self.test_after_training(epoch)
                self.step_scheduler(metrics)
                self.history.append({"epoch": epoch, **stats, "test": metrics})
                self.log(format_epoch(epoch, train.epochs, stats, time.perf_counter() - started))
                self.save_model(epoch, metrics, self.optimizer, self.lr_sched)
                # A signal during the evaluation or the save: this epoch is whole and saved.
                if epoch < train.epochs and self.stop_requested():
                    self.close()
                    raise self._interrupt.interrupted(self.stop_report(f"after epoch {epoch}", saved=epoch))
        self.start_epoch = self.epoch + 1
        return self.optimizer

    def test_after_training(self, epoch: int) -> dict[str, Any]:
        """:meth:`test` after ``epoch``'s training. If it fails (a metric's bug, a full disk),
        the epoch's training is saved first, unevaluated: a resumed run goes on from it."""
        try:
            return self.test()
        except Exception:
            self.step_scheduler(None)  # as after any epoch (plateau waits for a metric)
            if self.save_model(epoch, None, self.optimizer, self.lr_sched) is not None:
                CONSOLE.info(f"epoch {epoch} trained and saved in last.pt; its evaluation failed", extra={"run_dir": self.run_dir})
            raise

    def train_epoch(self, epoch: int) -> dict[str, float]:
        train = self.config.train
        # Reseeding per epoch makes a resumed run draw exactly what a straight run draws.
        # The rank term gives every DDP process its own augmentation draws (rank 0 = single).
        seed_everything((self.config.seed * 100_003 + epoch + 7_919 * distributed.rank()) % 2**63)
        sampler = getattr(self.train_dl, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        self.set_model_mode("train")
        topk = train.topk_acc
        total_loss, total_correct, seen = 0.0, dict.fromkeys(topk, 0), 0
        lr = self.optimizer.param_groups[0]["lr"]
        bar = tqdm(self.train_dl, desc=f"epoch {epoch}/{train.epochs}", leave=False, disable=self.progress_disabled)
        for batch in bar:
            images, targets = self.get_data(batch), self.get_target(batch)
            with self.autocast():
                logits, embeddings = self.model(images)
                loss = self.loss(logits, embeddings, targets)
                loss = distributed.tie_outputs(loss, logits, embeddings)  # DDP wants every output's grad
            value = loss.item()
            if not math.isfinite(value):
                raise self.diverged(value, epoch)
            self.last_loss = value
            self.backward_step(loss)
            n = targets.shape[0]
            seen += n
            total_loss += value * n
            for k, correct in topk_correct(logits.detach(), targets, topk).items():
                total_correct[k] += correct
            self.global_step += 1
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{total_correct[topk[0]] / seen:.3f}", lr=f"{lr:.1e}")
            if self.stop_requested():
                self.terminate()
        stats = {"loss": total_loss / max(seen, 1), "lr": lr}
        stats.update({f"acc@{k}": c / max(seen, 1) for k, c in total_correct.items()})
        stats.update(distributed.average_over_ranks({k: v for k, v in stats.items() if k != "lr"}))
        self.write_results(stats, "Train", step=epoch)
        return stats

    def diverged(self, value: float, epoch: int) -> TrainingDiverged:
        """The one-line error that stops a run whose loss is no longer finite."""
        last = f"last finite loss {self.last_loss:.6g}" if self.last_loss is not None else "no finite loss before"
        saved = self.run_dir / CHECKPOINTS / "last.pt" if self.run_dir is not None else None
        kept = f"the last good checkpoint is {saved}" if saved is not None and saved.is_file() else "no checkpoint was saved yet"
        hint = "lower train.optimizer.lr" + (" or train.grad_clip" if self.config.train.grad_clip else " or set train.grad_clip")
        return TrainingDiverged(f"loss is {value} at epoch {epoch}, step {self.global_step} ({last}); {kept}; {hint}")

    def backward_step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        clip = self.config.train.grad_clip
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.trained_parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            return
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(self.trained_parameters(), clip)
        self.optimizer.step()

    def trained_parameters(self) -> list[torch.Tensor]:
        """The model's parameters and the loss's own."""
        loss_params = list(self.loss.parameters()) if self.loss is not None else []
        return [*self.model.parameters(), *loss_params]

    def step_scheduler(self, metrics: dict | None) -> None:
        if self.lr_sched is None:
            return
        if isinstance(self.lr_sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if metrics is not None:  # plateau watches the monitored test metric
                self.lr_sched.step(monitored(metrics, self.config.train.best_metric))
            return
        self.lr_sched.step()

    @property
    def progress_disabled(self) -> bool:
        return self.quiet or not sys.stderr.isatty() or not self.is_main_process

    # -- testing --------------------------------------------------------------------------
    def extract(self, loader) -> Embeddings:
        model = unwrap(self.model)  # no DDP forward: ranks embed shares of unequal length
        return extract_sharded(model, loader, self.get_data, self.device, self.autocast, self.progress_disabled)

    def predict(self) -> torch.Tensor:
        """The [N x E] embeddings of the query data (``test_dl``)."""
        return self.extract(self.query_loader).embeddings

    def test(self) -> dict[str, Any]:
        """Embed query and gallery, rank with the metric, report CMC, mAP and mINP."""
        from visim.evaluation.distributed import evaluate_across
        from visim.rerank.chain import build_chain, rerank_summary

        test = self.config.test
        query, gallery = self.extract(self.query_loader), self.extract(self.gallery_loader)
        metric = contract_checks.CheckedMetric(self.metric, checked=self._metric_checked)
        evaluate = functools.partial(  # under torchrun each process ranks a shard of the gallery
            evaluate_across,
            distributed.communicator(),
            query.embeddings,
            gallery.embeddings,
            metric,
            query.pids,
            gallery.pids,
            query.camids,
            gallery.camids,
            options=test.eval_options(),
        )
        rerank = build_chain(test.rerank)
        result = evaluate(rerank=rerank)
        self._metric_checked = True
        results = result.as_dict()
        if rerank:  # the plain ranking too, so that the gain is visible
            results.update(rerank_summary(rerank, evaluate()))
        results["epoch"] = self.epoch
        self.last_result, self.last_query, self.last_gallery = result, query, gallery
        if self.is_main_process:
            self.print_results(results)
            self.write_results(results, "Test", step=max(self.epoch, 0))
            self.write_test_summaries(step=max(self.epoch, 0))
            if self.run_dir is not None:
                write_text(self.run_dir / "results.json", json.dumps(results, indent=2) + "\n")
        self.last_results = results
        return results

    evaluate = test

    def run(self) -> dict[str, Any]:
        """Train when the config has a train section, then test."""
        if self.config.train is not None and self.train_dl is not None:
            self.train_model()
            # The last epoch is always evaluated; only a run with nothing left to train is not.
            if self.last_results is not None and self.last_results["epoch"] == self.epoch:
                return self.last_results
        return self.test()

    # -- checkpoints ----------------------------------------------------------------------
    def save_model(self, epoch: int, metrics: dict | None, optimizer=None, lr_sched=None) -> Path | None:
        """Write ``best.pt`` (if improved), ``epoch-NNN.pt`` (periodic), then ``last.pt``, each atomically.

        ``last.pt`` comes last: it is what a resume reads, so a kill before it is written leaves
        the previous epoch's set, whose ``best_metric`` names a ``best.pt`` that exists, and the
        resume redoes this epoch, writing the same files again.
        """
        if self.run_dir is None or not self.is_main_process:
            return None
        from visim.config.converter import unstructure

        train = self.config.train
        value = monitored(metrics, train.best_metric) if metrics and train else None
        is_best = value is not None and (self.best_metric is None or value > self.best_metric)
        if is_best:
            self.best_metric = value
        state = ckpt.make_checkpoint(
            epoch=epoch,
            global_step=self.global_step,
            model=ckpt.strip_module_prefix(unwrap(self.model).state_dict()),
            loss=learnable_loss.state_of(self.loss),
            optimizer=optimizer.state_dict() if optimizer is not None else None,
            scheduler=lr_sched.state_dict() if lr_sched is not None else None,
            scaler=self.scaler.state_dict() if self.scaler is not None else None,
            best_metric=self.best_metric,
            metrics=plain_metrics(metrics),
            config=unstructure(self.config),
        )
        folder = self.run_dir / CHECKPOINTS
        if is_best:
            ckpt.atomic_save(state, folder / "best.pt")
        if train and epoch % train.save_interval == 0:
            ckpt.atomic_save(state, folder / f"epoch-{epoch:03d}.pt")
        return ckpt.atomic_save(state, folder / "last.pt")

    def load_model(self, path: str | Path, *, weights_only: bool = False) -> dict:
        """Load a checkpoint; training continues at its epoch + 1 with its optimizer state."""
        state = ckpt.load_checkpoint(path)
        applied = []
        if not weights_only and self.config.train is not None:
            from visim.config.converter import unstructure

            # A changed setting is applied to the restored state, or refused (one line each).
            applied = resume.check(state.get("config"), unstructure(self.config), path)
        try:
            unwrap(self.model).load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ckpt.CheckpointError(f"{path} does not fit this model: {str(exc).splitlines()[0]}") from None
        learnable_loss.restore(self.loss, state.get("loss"), path, strict=not weights_only)
        self.epoch = int(state["epoch"])
        if weights_only:
            return state
        self.start_epoch = self.epoch + 1
        self.global_step = int(state.get("global_step", 0))
        self.best_metric = state.get("best_metric")
        if self.config.train is not None:
            self.initialize_optimizer()
            lengths = resume.schedule_lengths(self.lr_sched)
            if state.get("optimizer") is not None:
                self.optimizer.load_state_dict(state["optimizer"])
            if state.get("scheduler") is not None and self.lr_sched is not None:
                self.lr_sched.load_state_dict(state["scheduler"])
            if state.get("scaler") is not None and self.scaler is not None:
                self.scaler.load_state_dict(state["scaler"])
            resume.apply(applied, self.optimizer, self.lr_sched, lengths, learnable_loss.own_options(self.loss))
            for change in applied:
                self.log(f"resuming with {change}")
        ckpt.set_rng_state(state["rng"])
        return state

    def terminate(self) -> None:
        """Handle a stop signal in the middle of an epoch: close and raise TrainingInterrupted.

        Nothing is saved: the checkpoint set of the last complete epoch stays as it was, and a
        resume redoes this epoch from its start (epochs are reseeded), so interrupted + resumed
        equals a straight run bit for bit. Mid-epoch weights are never passed off as an epoch.
        """
        self.close()
        raise self._interrupt.interrupted(self.stop_report(f"in epoch {self.epoch}", saved=self.epoch - 1))

    def stop_requested(self) -> bool:
        """Whether a stop signal reached this process or, under torchrun, any rank.

        Every rank asks at the same points (after each step and each epoch), so all stop at the
        same one: one all-reduce of one integer, next to the step's gradient all-reduce.
        """
        signum = distributed.max_over_ranks(self._interrupt.signum or 0)
        if signum and not self._interrupt.requested:
            self._interrupt.signum = signum  # another rank's signal: this rank stops with it
        return bool(signum)

    def stop_report(self, where: str, *, saved: int) -> str:
        """The one line an interrupted run ends with: where its state is."""
        stop = f"{signal_name(self._interrupt.signum or 2)} {where} of {self.config.train.epochs}"
        if not self.is_main_process:
            return f"{stop}: stopped with every rank; rank 0 reports the saved state"
        last = self.run_dir / CHECKPOINTS / "last.pt" if self.run_dir is not None else None
        if saved < self.epoch:
            stop += ": this incomplete epoch is not saved"
        if last is None:
            return f"{stop} (no run directory: nothing is saved)"
        if saved < 1 or not last.is_file():
            return f"{stop}; no epoch of this run is saved yet, so there is nothing to resume"
        return f"{stop}; --resume continues from the end of epoch {saved}: {last}"

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        if self._run_log is not None:
            self._run_log()  # stop recording into run.log (once)

    # -- reporting ------------------------------------------------------------------------
    def get_hparam_dict(self) -> dict[str, Any]:
        """Every train and test parameter, flattened to TensorBoard-friendly scalars."""
        from visim.config.converter import unstructure

        flat: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(f"{prefix}.{key}" if prefix else key, item)
            elif isinstance(value, (bool, int, float, str)):
                flat[prefix] = value
            else:
                flat[prefix] = str(value)

        data = unstructure(self.config)
        walk("", {"train": data.get("train") or {}, "test": data["test"], "model": data["model"]})
        return flat

    def print_results(self, results: dict[str, Any]) -> None:
        if self.is_main_process:
            self.log(format_results(results))

    def write_results(self, results: dict[str, Any], prepend: str, step: int | None = None) -> None:
        """``results`` to TensorBoard under ``prepend/``: scalars, dicts, lists, images, text
        (see :func:`visim.outputs.tensorboard.write_results`)."""
        writer = self.writer
        if writer is None:
            return
        from visim.outputs.tensorboard import write_results

        write_results(writer, results, prepend, self.epoch if step is None else step)

    def write_test_summaries(self, step: int) -> None:
        """hparams, distance histograms, ranked results and projector of the last test."""
        writer = self.writer
        if writer is None or self.last_result is None:
            return
        from visim.outputs.ranked import image_loader
        from visim.outputs.tensorboard import TestSummary, write_test_summaries

        query, gallery = self.last_query, self.last_gallery
        write_test_summaries(
            writer,
            TestSummary(self.last_result, query, gallery, step),
            metric=contract_checks.CheckedMetric(self.metric, checked=True),  # names it if it raises
            config=self.config,
            hparams=self.get_hparam_dict(),
            run_dir=self.run_dir,
            load_image=image_loader(getattr(self.loaders, "data", None), query, gallery),
        )

    def log(self, message: str) -> None:
        """Print ``message`` (unless quiet) and record it in ``run.log``."""
        if not self.is_main_process:
            return
        if not self.quiet:
            print(message, flush=True)
        CONSOLE.info(message, extra={"run_dir": self.run_dir})

    def validate_params(self, validations: dict, attrib_name: str = "params") -> None:
        """The original's per-key validation over this engine's train and test parameters."""
        from visim.config.converter import unstructure
        from visim.config.rules import validate_params

        data = unstructure(self.config)
        params = {**(data.get("train") or {}), **data["test"]}
        validate_params(validations, params, attrib_name=attrib_name)


def monitored(metrics: dict, name: str) -> float:
    if name.startswith("rank-"):
        return float(metrics["cmc"][name.split("-", 1)[1]])
    return float(metrics[name])


def plain_metrics(metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, dict, list))}


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, topk) -> dict[int, int]:
    k_max = min(max(topk), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices
    hits = top == targets[:, None]
    return {k: int(hits[:, : min(k, k_max)].any(dim=1).sum()) for k in topk}


__all__ = ["VisualSimilarityEngine", "TrainingInterrupted"]
