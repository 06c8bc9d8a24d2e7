"""``avs eval``: score a trained checkpoint on a data set, with audio control (mute / noise)."""
from __future__ import annotations

from ..config import apply_overrides, load_yaml
from ..errors import ConfigError
from ..evaluation import CONDITIONS, dump_json, evaluate_model, format_table
from ..metrics import PROTOCOLS


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint: mIoU/F per split under normal, muted and noise-only audio")
    p.add_argument("--checkpoint", required=True, help="model .safetensors written by training/train.py")
    p.add_argument("--config", required=True, help="YAML with a 'data' section (e.g. the training config)")
    p.add_argument("--splits", nargs="+", help="splits to score (default: eval.splits of the config)")
    p.add_argument("--conditions", nargs="+", help=f"audio conditions (default: {' '.join(CONDITIONS)})")
    p.add_argument("--protocol", choices=PROTOCOLS, help="average per video as AVSBench (default), per video leaving out videos silent throughout, or over frames")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides of the config")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..modeling import load_checkpoint

    cfg = apply_overrides(load_yaml(args.config), args.overrides)
    if "data" not in cfg:
        raise ConfigError(f"{args.config} has no 'data' section")
    splits = args.splits or (cfg.get("eval") or {}).get("splits")
    if not splits:
        raise ConfigError("no splits to evaluate: pass --splits or set eval.splits")
    model = load_checkpoint(args.checkpoint, device=args.device)
    results = evaluate_model(model, cfg, splits, args.conditions, args.protocol)
    print(format_table(results))
    if args.json:
        dump_json(results, args.json)
    return 0
