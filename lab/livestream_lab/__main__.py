"""python -m livestream_lab {up,down,status,image} [--stack NAME]"""

from __future__ import annotations

import argparse
import sys

# the standard library alone until the command needs more: `image` runs before the
# virtualenvs exist (make test builds the images while they install)
from . import config, image, strict, streams as lab_streams
from .system import log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livestream_lab", description=__doc__)
    parser.add_argument("--stack", help=f"stack name (default: $LIVESTREAM_STACK or {config.DEFAULT_STACK})")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="bring the lab up (idempotent)")
    up.add_argument("--no-checks", action="store_true", help="skip the checks of the bare machines")
    up.add_argument("--no-configure", action="store_true",
                    help="leave the machines unconfigured (do not run site.yml)")
    up.add_argument("--cdn", choices=["none", "cloudfront"],
                    help="livestream_cdn: viewers through CloudFront (the lab's edge); default: what the lab had, else none")
    up.add_argument("--ami-family", choices=[f"debian{number}" for number in image.SUITES],
                    help="livestream_ami_family (the machines boot that Debian release); default: what the lab had,"
                         " else the collection's default")
    up.add_argument("--strict", action="store_true",
                    help="make the lab's API as strict as AWS's: new IDs unknown for 1.5 s, 15%% of calls throttled")
    commands.add_parser("down", help="remove every trace of the lab")
    commands.add_parser("status", help="print what the lab is and where")
    build = commands.add_parser("image", help="build a machines' base image (cached)")
    build.add_argument("--rebuild", action="store_true", help="build it again even if cached")
    build.add_argument("--suite", choices=sorted(image.SUITES.values()) + ["all"], default=image.DEFAULT_SUITE,
                       help="the Debian release (default %(default)s); all: every release, the default's first")
    args = parser.parse_args(argv)

    settings = config.load(args.stack)
    if args.command == "image":
        suites = image.by_preference() if args.suite == "all" else [args.suite]
        for suite in suites:
            print(image.build(suite, rebuild=args.rebuild, log=log))
        return 0
    from . import lab  # pylint: disable=import-outside-toplevel
    if args.command == "down":
        lab.down(settings)
        return 0
    if args.command == "status":
        return lab.status(settings)
    summary = lab.up(settings, checks=not args.no_checks, configure_service=not args.no_configure,
                     strict_mode=strict.AS_AWS if args.strict else None, cdn=args.cdn,
                     ami_family=args.ami_family)
    print()
    print(f"player:           {summary['player_url']}"
          + (f" (through CloudFront: the lab's edge, {summary['edge_address']})" if summary["cdn"] != "none" else ""))
    print(f"frontend address: {summary['frontend_address']} (Elastic IP)")
    print(f"bastion address:  {summary['bastion_address']} (ssh -F {summary['ssh_config']} {summary['stack']}-bastion)")
    print(f"CA certificate:   {summary['ca_cert']}")
    print(f"inventory:        {summary['inventory']}")
    print(f"AWS environment:  . {summary['aws_env']}")
    print(f"try: curl --cacert {summary['ca_cert']} {summary['player_url']}")
    if not args.no_configure:
        for stream in lab_streams.encoder_streams(settings):
            print()
            print(f"go live on stream {stream['name']!r} from OBS (Settings > Stream > Service: Custom...):")
            print(f"  Server:     {stream['server']}")
            print(f"  Stream Key: {stream['stream_key']}")
            if stream["key_file"]:
                print(f"  the key is kept in {stream['key_file']} (0600)")
            print(f"  or ffmpeg:  ffmpeg -re -i <file> -c copy -f flv -tls_verify 1 -ca_file {summary['ca_cert']}"
                  f" '{stream['server']}/{stream['stream_key']}'")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, TimeoutError, LookupError, ValueError) as error:
        # what went wrong, in the lab's words; the details are in the logs it names
        sys.exit(f"lab: error: {error}")
