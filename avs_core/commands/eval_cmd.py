"""``avs eval``: score a trained checkpoint or the zero-shot default on a data set, with audio control."""
from __future__ import annotations

from ..config import apply_overrides, load_yaml
from ..errors import ConfigError
from ..evaluation import CONDITIONS, dump_json, evaluate_model, evaluate_predictor, format_table
from ..metrics import PROTOCOLS


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint or the zero-shot model: mIoU/F per split under "
                                    "normal, muted and noise-only audio")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="model .safetensors written by training/train.py")
    which.add_argument("--model", choices=["zero_shot"],
                       help="zero_shot: the training-free default (pipeline settings from the config's "
                            "'pipeline' section; its heatmap is scored)")
    p.add_argument("--config", required=True, help="YAML with a 'data' section (e.g. the training config)")
    p.add_argument("--splits", nargs="+", help="splits to score (default: eval.splits of the config)")
    p.add_argument("--conditions", nargs="+", help=f"audio conditions (default: {' '.join(CONDITIONS)})")
    p.add_argument("--protocol", choices=PROTOCOLS, help="average per video (AVSBench, default) or over frames")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides of the config")
    p.set_defaults(func=run)


def zero_shot_predict(pipeline_cfg: dict, device: str):
    """(predict(frame, audio, sr, cues) -> the zero-shot pipeline's heatmap (a per-pixel probability),
    seconds of audio before the frame's window it listens to)."""
    from ..pipeline import AVSPipeline
    from ..types import Window

    pipe = AVSPipeline.from_config({**pipeline_cfg, "model": "zero_shot", "device": device})
    context = pipe.audio_span_s - float(pipe.cfg["window_s"])
    return (lambda frame, audio, sr, cues: pipe(Window(frame, audio, sr, cues=cues or None)).heatmap), context


def run(args) -> int:
    cfg = apply_overrides(load_yaml(args.config), args.overrides)
    if "data" not in cfg:
        raise ConfigError(f"{args.config} has no 'data' section")
    splits = args.splits or (cfg.get("eval") or {}).get("splits")
    if not splits:
        raise ConfigError("no splits to evaluate: pass --splits or set eval.splits")
    if args.model == "zero_shot":
        predict, context = zero_shot_predict(dict(cfg.get("pipeline") or {}), args.device)
        results = evaluate_predictor(predict, cfg, splits, args.conditions, args.protocol, audio_before_s=context)
    else:
        from ..modeling import load_checkpoint

        model = load_checkpoint(args.checkpoint, device=args.device)
        results = evaluate_model(model, cfg, splits, args.conditions, args.protocol)
    print(format_table(results))
    if args.json:
        dump_json(results, args.json)
    return 0
