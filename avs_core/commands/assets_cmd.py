"""``avs assets``: list the manifest's assets (found where, verified or not), fetch them, print a path.

    avs assets [list [--long]] [--assets-dir DIR]
    avs assets fetch NAME... | --all  [--from DIR_OR_URL] [--dest DIR]
    avs assets path NAME
"""
from __future__ import annotations

import sys
from pathlib import Path

from .. import assets
from ..errors import AssetError


def register(sub) -> None:
    p = sub.add_parser("assets", help="list, fetch and locate the pretrained models and media (asset manifest)")
    p.add_argument("--assets-dir", help="extra folder searched first (the 'assets_dir' config key)")
    p.set_defaults(func=run_list)
    actions = p.add_subparsers(dest="action")
    ls = actions.add_parser("list", help="every asset: found where, verified or not (default)")
    ls.add_argument("--long", action="store_true", help="also size, licence and origin URL")
    ls.set_defaults(func=run_list)
    f = actions.add_parser("fetch", help="download assets into the user cache, verified by sha256",
                           description="Downloads into $AVS_ASSETS_DIR, else $XDG_CACHE_HOME/avs/assets, else ~/.cache/avs/assets.")
    f.add_argument("names", nargs="*", metavar="NAME", help="asset names or folder names (see `avs assets list`)")
    f.add_argument("--all", action="store_true", help="every asset of the manifest")
    f.add_argument("--from", dest="mirror", metavar="DIR_OR_URL",
                   help="mirror laid out FOLDER/FILE: a local folder (e.g. ../shared/assets) or a base URL; "
                        "default: each asset's pinned origin URL")
    f.add_argument("--dest", help="target folder (default: the user cache)")
    f.add_argument("--retries", type=int, default=3, help="extra attempts after a network failure (default 3)")
    f.add_argument("--retry-wait-s", type=float, default=1.0, help="wait before the first retry, doubled each time")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(func=run_fetch)
    w = actions.add_parser("path", help="print the verified path of an asset (exit 2 when missing)")
    w.add_argument("name")
    w.set_defaults(func=run_path)


def run_list(args) -> int:
    print("search order: " + "; ".join(f"{folder} ({label})" for label, folder in assets.search_path(args.assets_dir)))
    missing = 0
    for name in sorted(assets.MANIFEST):
        st = assets.status(name, args.assets_dir)
        state = "MISSING" if not st.present else "ok" if st.verified else "CHECKSUM MISMATCH"
        missing += state != "ok"
        print(f"  {name:48s} {state:18s} {st.path if st.present else ''}")
        if getattr(args, "long", False):
            a = assets.MANIFEST[name]
            print(f"      {a.size} bytes, sha256 {a.sha256}\n      licence: {a.license}\n      origin: {a.url}")
    total = len(assets.MANIFEST)
    print(f"{total - missing}/{total} assets ready" + ("" if not missing else "; fetch the rest with `avs assets fetch --all`"))
    return 1 if missing else 0


def _select(args) -> list[assets.Asset]:
    if args.all:
        return list(assets.MANIFEST.values())
    if not args.names:
        raise AssetError("name the assets to fetch (see `avs assets list`) or pass --all")
    folders = {a.folder for a in assets.MANIFEST.values()}
    out: list[assets.Asset] = []
    for name in args.names:
        chosen = [a for a in assets.MANIFEST.values() if a.folder == name] if name in folders else [assets.get(name)]
        out += [a for a in chosen if a not in out]
    return out


def run_fetch(args) -> int:
    from ..asset_fetch import FetchError, fetch, is_fetched, source_url

    chosen = _select(args)
    dest = Path(args.dest).expanduser().resolve() if args.dest else assets.cache_dir()
    if args.mirror:
        source_url(chosen[0], args.mirror)  # a missing mirror folder fails once, up front
    print(f"avs assets fetch: {len(chosen)} asset(s) from {args.mirror or 'their pinned origin URLs'} into {dest}")
    present = failed = 0
    for asset in chosen:
        if is_fetched(asset, dest):
            present += 1
            continue
        try:
            path = fetch(asset, dest, args.mirror, retries=args.retries, retry_wait_s=args.retry_wait_s,
                         progress=not args.no_progress)
        except FetchError as exc:
            failed += 1
            print(f"avs assets fetch: error: {exc}", file=sys.stderr)
            continue
        print(f"  fetched {asset.name} ({asset.size} bytes, sha256 ok): {path}")
    fetched = len(chosen) - present - failed
    print(f"avs assets fetch: {fetched} fetched, {present} already present and verified, {failed} failed")
    return 1 if failed else 0


def run_path(args) -> int:
    print(assets.resolve(args.name, args.assets_dir))
    return 0
