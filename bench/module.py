"""One LightningModule for every task and variant: loss and metrics come from the task spec."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
import torchmetrics

from bench.models import RecurrentNet
from bench.registry import IGNORE_INDEX, MetricSpec, TaskSpec


def make_metric(spec: MetricSpec, num_classes: int) -> torchmetrics.Metric:
    if spec.kind == "accuracy":
        return torchmetrics.Accuracy(task="multiclass", num_classes=num_classes, ignore_index=IGNORE_INDEX)
    if spec.kind == "perplexity":
        return torchmetrics.text.Perplexity(ignore_index=IGNORE_INDEX)
    return torchmetrics.MeanSquaredError()


class RecurrentTaskModule(pl.LightningModule):
    def __init__(self, task: TaskSpec, net: RecurrentNet, lr: float, weight_decay: float, num_classes: int):
        super().__init__()
        # Plain values only in hparams (checkpoint loading uses weights_only=True).
        self.save_hyperparameters({"task": task.name, "lr": lr, "weight_decay": weight_decay})
        self.task, self.net, self.num_classes = task, net, num_classes
        # train_eval: the train sample scored in eval mode at each validation (the overfitting gap).
        stages = ("train", "train_eval", "val", "test") if task.train_metrics else ("val", "test")
        self.metrics = torch.nn.ModuleDict(
            {
                f"{stage}_metrics": torch.nn.ModuleDict(
                    {spec.name: make_metric(spec, num_classes) for spec in task.metrics}
                )
                for stage in stages  # ("train" alone would clash with nn.Module.train)
            }
        )

    def forward(self, batch: dict) -> torch.Tensor:
        return self.net(batch["inputs"], batch.get("lengths"))

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.task.loss == "cross_entropy":  # per-step: mean over every step (but IGNORE_INDEX targets)
            logits = outputs.reshape(-1, outputs.shape[-1]).float()
            return F.cross_entropy(logits, targets.reshape(-1), ignore_index=IGNORE_INDEX)
        return F.mse_loss(outputs.float(), targets.float())

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        outputs = self(batch)
        loss = self.loss(outputs, batch["targets"])
        if stage == "train":
            # self.log costs ~0.5 ms per call on CPU; a running sum logged once per epoch is ~free.
            self.train_loss_sum += loss.detach() * len(batch["targets"])
            self.train_examples += len(batch["targets"])
        else:
            self.log(
                f"{stage}/loss",
                loss,
                on_step=False,
                on_epoch=True,
                batch_size=len(batch["targets"]),
                prog_bar=stage == "val",
                add_dataloader_idx=False,
            )
        if f"{stage}_metrics" in self.metrics:
            for spec in self.task.metrics:
                self._update_metric(spec, stage, outputs.detach(), batch["targets"])
        return loss

    def _update_metric(self, spec, stage: str, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        if spec.last_steps:
            outputs, targets = outputs[:, -spec.last_steps :], targets[:, -spec.last_steps :]
        metric = self.metrics[f"{stage}_metrics"][spec.name]
        if spec.kind == "perplexity":
            metric.update(outputs.float(), targets)
        elif spec.kind == "accuracy":
            metric.update(outputs.argmax(dim=-1).reshape(-1), targets.reshape(-1))
        else:
            metric.update(outputs.reshape(-1), targets.reshape(-1))
        self.log(
            f"{stage}/{spec.name}",
            metric,
            on_step=False,
            on_epoch=True,
            prog_bar=stage == "val",
            add_dataloader_idx=False,
        )

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        return self._step(batch, "train")

    def on_train_epoch_start(self) -> None:
        self.train_loss_sum, self.train_examples = torch.zeros((), device=self.device), 0

    def on_train_epoch_end(self) -> None:
        self.log("train/loss", self.train_loss_sum / max(self.train_examples, 1), prog_bar=True)

    def validation_step(self, batch: dict, batch_index: int, dataloader_idx: int = 0) -> None:
        # Loader 1 (tasks with train_metrics): a fixed train sample, in eval mode like validation.
        self._step(batch, "train_eval" if dataloader_idx == 1 else "val")

    def test_step(self, batch: dict, batch_index: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self):
        trainable = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.Adam(trainable, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
