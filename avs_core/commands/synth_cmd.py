"""``avs synth``: write the synthetic audio-visual data set in the AVSBench-semantic layout."""
from __future__ import annotations

from ..data.synthetic import SPLITS, SynthConfig, write_avss


def register(sub) -> None:
    p = sub.add_parser("synth", help="generate the synthetic AV segmentation set (AVSBench-semantic layout)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128, help="frame height = width in pixels")
    p.add_argument("--seconds", type=int, default=5, help="frames (= seconds) per clip")
    for split in SPLITS:
        p.add_argument(f"--{split}", type=int, default=SynthConfig().clips[split], help=f"clips in the {split} split")
    p.add_argument("--unseen-classes", type=int, default=2, help="classes held out of train/val/test")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = SynthConfig.from_dict({"seed": args.seed, "size": args.size, "seconds": args.seconds,
                                 "clips": {s: getattr(args, s) for s in SPLITS}, "num_unseen": args.unseen_classes})
    counts = write_avss(cfg, args.out)
    print(f"wrote {sum(counts.values())} clips to {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
