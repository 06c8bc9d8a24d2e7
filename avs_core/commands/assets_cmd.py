"""``avs assets``: list the shared assets, present or missing, verified or not."""
from __future__ import annotations

from .. import assets


def register(sub) -> None:
    p = sub.add_parser("assets", help="list pretrained assets and whether they are present and verified")
    p.add_argument("--assets-dir", help=f"assets folder (default ${assets.ENV_VAR} or ../shared/assets)")
    p.set_defaults(func=run)


def run(args) -> int:
    root = assets.assets_dir(args.assets_dir)
    print(f"assets dir: {root}")
    missing = 0
    for name in sorted(assets.ASSETS):
        st = assets.status(name, root)
        if not st.present:
            state = "MISSING"
        elif st.expected_sha256 is None:
            state = "NO SHA256 IN SOURCE.md"
        else:
            state = "ok" if st.verified else "CHECKSUM MISMATCH"
        missing += state != "ok"
        print(f"  {name:26s} {state:18s} {st.path}")
    print(f"{len(assets.ASSETS) - missing}/{len(assets.ASSETS)} assets ready")
    return 1 if missing else 0
