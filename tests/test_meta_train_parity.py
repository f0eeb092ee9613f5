"""Our pretraining step is Meta's: 1 and 3 optimizer steps of Meta's own train scripts, replayed through ours.

Fixtures ``tests/fixtures/meta/<family>_train*`` were recorded by ``generate_train.py`` running the ``train_step``
closure of Meta's ``src/train.py`` (I-JEPA), ``app/vjepa/train.py`` (V-JEPA 2) and ``app/vjepa_droid/train.py``
(V-JEPA 2-AC) with Meta's ``init_opt`` (AdamW groups, lr and weight-decay schedulers), Meta's EMA momentum generator
and Meta's mask collators, on tiny models (see the fixtures' README). Here our models are built from the same
initial weights by our converter, our optimizer and schedules are configured from the recorded hyper-parameters, and
the one shared ``hf_jepa.training.train_step`` runs the same batches and masks. Loss, gradients of step 1, weights,
AdamW state and EMA weights after steps 1 and 3 must agree.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from hf_jepa.convert import convert_meta_checkpoint, strip_prefixes
from hf_jepa.training import (
    DEFAULT_NO_WEIGHT_DECAY_NAMES,
    HyperParamScheduler,
    build_optimizer,
    build_schedules,
    pretraining_loss,
    train_step,
    world_model_loss,
)
from hf_jepa.training.checkpoints import load_phase_checkpoint

FIXTURES = Path(__file__).parent / "fixtures" / "meta"
LOSS_RTOL = 1e-6
TOL = 1e-5  # weights: absolute; gradients and AdamW moments: relative to the tensor's largest entry
#: Entries whose step-1 gradient is below Adam's eps carry rounding noise only: Adam divides it by ~eps, so their
#: update (up to ~lr) is noise in Meta's run and in ours alike. They are the key biases that attention cannot see
#: (softmax is invariant to a key offset shared by all keys: all of I-JEPA's, V-JEPA 2's unrotated RoPE dims);
#: ``test_noise_only_entries_are_the_key_biases_attention_ignores`` checks that, and the weights are compared
#: elsewhere.
NOISE_GRAD = 1e-8


def load(family: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    config = json.loads((FIXTURES / f"{family}_train_config.json").read_text())
    return config, load_file(FIXTURES / f"{family}_train.safetensors")


def schedule_args(config: dict[str, Any], phase: dict[str, Any]) -> SimpleNamespace:
    """Our run arguments equal to the recorded ``init_opt`` / EMA hyper-parameters of Meta's step (``phase``: the
    config itself or its ``cooldown`` section)."""
    opt = phase["init_opt_args"]
    ipe, epochs = opt["iterations_per_epoch"], opt["num_epochs"]
    ipe_scale = opt.get("ipe_scale", 1.0)
    family = config["family"]
    args = SimpleNamespace(
        max_steps=len(phase["steps"]), schedule_steps=int(ipe_scale * epochs * ipe),
        warmup_steps=int(opt["warmup"] * ipe), start_lr=opt["start_lr"], learning_rate=opt["ref_lr"],
        final_lr=opt["final_lr"], weight_decay=opt["wd"], final_weight_decay=opt["final_wd"], schedule_offset=1,
        lr_schedule="warmup_cosine", decay_steps=None, ema_start=None, ema_end=None, objective="meta")
    if family == "vjepa2_ac":
        args.lr_schedule, args.decay_steps = "warmup_stable_decay", int(opt["anneal"] * ipe)
    else:
        args.ema_start, args.ema_end = phase["ema"]
    if opt.get("is_anneal"):  # Meta's cool-down: LinearDecaySchedule from the peak, no warmup
        args.lr_schedule = "linear_decay"
    return args


def our_model(family: str, config: dict[str, Any]) -> torch.nn.Module:
    m = config["model"]
    heads = {"num_attention_heads": m["num_heads"], "predictor_num_attention_heads": m["predictor_num_heads"]}
    if family == "ijepa":
        overrides = heads
    elif family == "vjepa2":
        overrides = {**heads, "image_size": m["image_size"], "num_frames": m["num_frames"]}
    else:
        overrides = {**heads, "image_size": m["image_size"], "num_frames": m["tubelet_size"]}
    return convert_meta_checkpoint(FIXTURES / f"{family}_train_initial.pt", family, overrides=overrides).train()


def batches(family: str, tensors: dict[str, torch.Tensor], steps: int, prefix: str = "") -> list[dict[str, Any]]:
    out = []
    for k in range(1, steps + 1):
        def group(kind: str, k: int = k) -> list[torch.Tensor]:
            keys = sorted((n for n in tensors if n.startswith(f"{prefix}step{k}/{kind}/")),
                          key=lambda n: int(n.split("/")[-1]))
            return [tensors[n] for n in keys]

        if family == "ijepa":
            (context,) = group("masks_enc")  # one context block (nenc=1)
            out.append({"pixel_values": tensors[f"step{k}/images"], "context_mask": context,
                        "target_mask": group("masks_pred")})
        elif family == "vjepa2":
            out.append({"pixel_values_videos": tensors["video"].permute(0, 2, 1, 3, 4),  # (B,C,T,H,W) -> (B,T,C,H,W)
                        "context_mask": group("masks_enc"), "target_mask": group("masks_pred")})
        else:
            out.append({"pixel_values_videos": tensors[f"step{k}/clips"].permute(0, 2, 1, 3, 4),
                        "actions": tensors[f"step{k}/actions"], "states": tensors[f"step{k}/states"],
                        "auto_steps": 2})
    return out


def our_name(meta_name: str) -> tuple[str, int | None]:
    """Meta parameter name (``backbone.`` / wrapper prefixes, ``mask_tokens.i``) -> ours (and the row of our
    stacked ``mask_tokens``)."""
    name = next(iter(strip_prefixes({meta_name: None})))
    if name.startswith("mask_tokens."):
        return "mask_tokens", int(name.split(".")[1])
    return name, None


def rel_err(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-30))


class Replay:
    """Our train_step over the recorded batches; copies of what Meta's fixture recorded, ours side by side.

    With ``previous`` (a finished replay) and ``folder``: the cool-down, a second phase started from the previous
    run's weights and optimizer state, saved to ``folder`` as a checkpoint and loaded by ``load_phase_checkpoint``.
    """

    def __init__(self, family: str, previous: Replay | None = None, folder: Path | None = None) -> None:
        self.family = family
        self.config, self.tensors = load(family)
        self.phase = self.config["cooldown"] if previous is not None else self.config
        self.prefix = "cooldown/" if previous is not None else ""
        self.recorded = (len(self.phase["steps"]),) if previous is not None else (1, 3)
        self.model = our_model(family, self.config)
        opt = self.phase["init_opt_args"]
        args = schedule_args(self.config, self.phase)
        # Meta's init_opt decays every parameter that is not a bias and not 1-D, mask tokens included: the recipes'
        # weight_decay_mask_tokens, which keeps only the (frozen) positional tables in the exemption list
        no_decay = tuple(n for n in DEFAULT_NO_WEIGHT_DECAY_NAMES if n != "mask_token")
        self.optimizer = build_optimizer(self.model, lr=opt["ref_lr"], weight_decay=opt["wd"],
                                         betas=tuple(opt.get("betas", (0.9, 0.999))), eps=opt.get("eps", 1e-8),
                                         no_weight_decay_names=no_decay)
        if previous is not None:
            assert folder is not None
            save_file({k: v.contiguous() for k, v in previous.model.state_dict().items()},
                      str(folder / "model.safetensors"))
            torch.save(previous.optimizer.state_dict(), folder / "optimizer.bin")
            load_phase_checkpoint(folder, self.model, self.optimizer)
        self.record_step1 = False
        self._record_gradients()  # before the scheduler, which wraps optimizer.step itself
        self.schedules = build_schedules(args)
        self.scheduler = HyperParamScheduler(self.optimizer, self.schedules)
        self.accelerator = Accelerator(cpu=True)
        self.compute_loss = world_model_loss if family == "vjepa2_ac" else pretraining_loss(family)
        self.losses: list[float] = []
        self.hparams: list[tuple[float, float, float | None]] = []
        self.grads: dict[str, torch.Tensor] = {}
        self.states: dict[int, dict[str, dict[str, torch.Tensor]]] = {}
        #: fixture key "<module>/<meta name>" -> bool mask of the noise-only entries (target encoder: the encoder's)
        self.noise = {key[len("grad1/"):]: g.abs() < NOISE_GRAD for key, g in self.tensors.items()
                      if key.startswith("grad1/")}
        self._run()

    def modules(self) -> dict[str, torch.nn.Module]:
        out = {"predictor": self.model.predictor}
        if self.family == "vjepa2_ac":
            out["target_encoder"] = self.model.encoder  # the frozen encoder fed the target latents
        else:
            out.update(encoder=self.model.encoder, target_encoder=self.model.target_encoder)
        return out

    def _record_gradients(self) -> None:
        """Wrap optimizer.step: copy the gradients of step 1 and the lr / weight decay every update uses."""
        inner = self.optimizer.step

        def step_and_record(optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
            if self.record_step1:
                for mname, module in self.modules().items():
                    for name, p in module.named_parameters():
                        if p.grad is not None:
                            self.grads[f"{mname}/{name}"] = p.grad.detach().clone()
            group = next(g for g in self.optimizer.param_groups if not g["no_weight_decay"])
            self.hparams.append((group["lr"], group["weight_decay"]))
            return inner(*args, **kwargs)

        self.optimizer.step = types.MethodType(step_and_record, self.optimizer)  # a method, as LRScheduler expects

    def _run(self) -> None:
        steps = len(self.phase["steps"])
        for k, batch in enumerate(batches(self.family, self.tensors, steps, self.prefix)):
            self.record_step1 = k == 0 and not self.prefix
            momentum = self.schedules.momentum(k) if self.schedules.momentum is not None else None
            out = train_step(self.accelerator, self.model, batch, self.optimizer, self.scheduler,
                             compute_loss=self.compute_loss, max_grad_norm=None, ema_momentum=momentum)
            self.losses.append(out.loss)
            self.hparams[-1] = (*self.hparams[-1], momentum)
            if k + 1 in self.recorded:
                self.states[k + 1] = self.snapshot()

    def snapshot(self) -> dict[str, dict[str, torch.Tensor]]:
        weights, exp_avg, exp_avg_sq = {}, {}, {}
        for mname, module in self.modules().items():
            for name, p in module.named_parameters():
                weights[f"{mname}/{name}"] = p.detach().clone()
                if p in self.optimizer.state:
                    exp_avg[f"{mname}/{name}"] = self.optimizer.state[p]["exp_avg"].clone()
                    exp_avg_sq[f"{mname}/{name}"] = self.optimizer.state[p]["exp_avg_sq"].clone()
        return {"weights": weights, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq,
                "step": {n: float(self.optimizer.state[p]["step"]) for mname, module in self.modules().items()
                         for n, p in [(f"{mname}/{k}", v) for k, v in module.named_parameters()]
                         if p in self.optimizer.state}}

    def ours(self, kind: str, meta_key: str, step: int | None = None) -> torch.Tensor:
        """Our tensor matching the fixture tensor ``meta_key`` (``<module>/<meta param name>``)."""
        module, meta_name = meta_key.split("/", 1)
        name, row = our_name(meta_name)
        source = self.grads if kind == "grad" else self.states[step][kind]
        tensor = source[f"{module}/{name}"]
        if row is not None:
            return tensor[row].view(1, 1, -1)  # our (n, d) stacked mask tokens -> Meta's (1, 1, d)
        return tensor

    def noise_mask(self, key: str) -> torch.Tensor | None:
        """The noise-only entries of fixture tensor ``<module>/<meta name>`` (None: the module is not trained)."""
        module, name = key.split("/", 1)
        return self.noise.get(f"{'encoder' if module == 'target_encoder' else module}/{name}")

    def compare(self, prefix: str, kind: str, step: int | None = None,
                skip_noise: bool = False) -> tuple[float, float, int]:
        """(max abs diff, max relative diff, tensors compared) over the fixture tensors under ``prefix``;
        ``skip_noise`` leaves out the noise-only entries (see NOISE_GRAD)."""
        worst_abs, worst_rel, n = 0.0, 0.0, 0
        for key, expected in self.tensors.items():
            if not key.startswith(prefix) or key[len(prefix):].split("/")[0] not in self.modules():
                continue  # inputs, masks, losses, or another kind of state
            got = self.ours(kind, key[len(prefix):], step)
            assert got.shape == expected.shape, (key, got.shape, expected.shape)
            diff = (got - expected).abs()
            mask = self.noise_mask(key[len(prefix):]) if skip_noise else None
            if mask is not None:
                diff = diff.masked_fill(mask, 0.0)
            worst_abs = max(worst_abs, float(diff.max()))
            worst_rel = max(worst_rel, float(diff.max() / expected.abs().max().clamp_min(1e-30)))
            n += 1
        return worst_abs, worst_rel, n

    def noise_entries(self, step: int) -> tuple[int, float]:
        """(number of noise-only weight entries, their largest difference ours vs Meta's after ``step``)."""
        count, worst = 0, 0.0
        for key, expected in self.tensors.items():
            head = f"{self.prefix}step{step}/"
            rest = key[len(head):]
            if not key.startswith(head) or rest.split("/")[0] not in self.modules():
                continue
            mask = self.noise_mask(rest)
            if mask is None or not mask.any():
                continue
            count += int(mask.sum())
            worst = max(worst, float((self.ours("weights", rest, step) - expected).abs()[mask].max()))
        return count, worst


@pytest.fixture(scope="module", params=["ijepa", "vjepa2", "vjepa2_ac", "vjepa2_cooldown"])
def replay(request, tmp_path_factory) -> Replay:
    """One family's 3 steps; ``vjepa2_cooldown``: V-JEPA 2's 3 steps, then Meta's cool-down (a second run with
    ``is_anneal``: linear decay, fresh wd / momentum schedules, the optimizer state continued) for 2 steps."""
    torch.manual_seed(0)
    if request.param == "vjepa2_cooldown":
        return Replay("vjepa2", previous=Replay("vjepa2"), folder=tmp_path_factory.mktemp("pretrain_step_3"))
    return Replay(request.param)


def test_schedules_give_metas_lr_wd_and_momentum_at_every_step(replay: Replay) -> None:
    for (lr, wd, momentum), meta in zip(replay.hparams, replay.phase["steps"], strict=True):
        assert lr == pytest.approx(meta["lr"], rel=1e-12, abs=0)
        assert wd == pytest.approx(meta["weight_decay"], rel=1e-12, abs=0)
        if "ema_momentum" in meta:
            assert momentum == pytest.approx(meta["ema_momentum"], rel=1e-12, abs=0)
        else:
            assert momentum is None


def test_loss_of_each_step_equals_metas(replay: Replay) -> None:
    for k, loss in enumerate(replay.losses, start=1):
        meta = float(replay.tensors[f"{replay.prefix}step{k}/loss"])
        assert abs(loss - meta) <= LOSS_RTOL * abs(meta), (k, loss, meta)


def test_step1_gradients_equal_metas(replay: Replay) -> None:
    if replay.prefix:
        pytest.skip("the cool-down fixture records no gradients (its weights and AdamW state are compared)")
    _, rel, n = replay.compare("grad1/", "grad")
    trained = sum(1 for key in replay.grads)
    assert n == trained, f"Meta recorded {n} gradients, ours has {trained}"
    assert rel <= TOL


def test_weights_adamw_state_and_ema_after_step_equal_metas(replay: Replay) -> None:
    """After steps 1 and 3 (the cool-down: after its step 2, AdamW's step count continuing at 5)."""
    for step in replay.recorded:
        head = f"{replay.prefix}step{step}/"
        abs_w, _, n_w = replay.compare(head, "weights", step, skip_noise=True)
        assert n_w > 0 and abs_w <= TOL, (step, abs_w)
        for kind in ("exp_avg", "exp_avg_sq"):
            _, rel, n = replay.compare(f"{head}{kind}/", kind, step)
            assert n > 0 and rel <= TOL, (step, kind, rel)
        assert set(replay.states[step]["step"].values()) == set(replay.phase["steps"][step - 1]["adamw_step"])


def test_noise_only_entries_are_the_key_biases_attention_ignores(replay: Replay) -> None:
    """The entries left out of the weight comparison are key-bias entries whose gradient is rounding noise in Meta's
    run *and* ours; their update stays below one lr per step (Adam's bound), nothing else is left out."""
    total = 0
    for key, mask in replay.noise.items():
        if not mask.any():
            continue
        assert key.endswith("attn.qkv.bias"), f"{key}: an entry with a zero gradient outside the key bias"
        width = mask.numel() // 3
        assert not mask[:width].any() and not mask[2 * width:].any(), f"{key}: noise outside the key slice"
        if not replay.prefix:  # our own gradient there is noise too (the cool-down records no gradients)
            assert float(replay.ours("grad", key).abs()[mask].max()) < NOISE_GRAD, key
        total += int(mask.sum())
    if replay.family == "ijepa":  # no RoPE: every key-bias entry
        assert total == sum(m.numel() // 3 for k, m in replay.noise.items() if k.endswith("attn.qkv.bias"))
    lr_sum = sum(s["lr"] for s in replay.config["steps"]) + (sum(s["lr"] for s in replay.phase["steps"])
                                                               if replay.prefix else 0.0)
    count, worst = replay.noise_entries(max(replay.recorded))
    assert count > 0 and worst <= 2 * lr_sum
