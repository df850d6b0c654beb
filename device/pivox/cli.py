"""pivox run | demo | serve-reference | status | diag | config check | wake eval | fleet |
timers | alarms | announce | play"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from pivox import config as config_mod
from pivox.core.wakeword import ENGINES

EXIT_CONFIG = 2


def _setup_logging(level: str = "info") -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _load_config(path: str) -> config_mod.Config:
    cfg = config_mod.load(path)
    for warning in cfg.warnings:
        print(f"{path}: warning: {warning}", file=sys.stderr)
    return cfg


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config)
    from pivox.hw import journal

    journal.setup(cfg.log.level)  # the journal, with PIVOX_* fields, under systemd
    from pivox.daemon import run_daemon

    return run_daemon(cfg)


def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = _load_config(args.path)
    print(f"{args.path}: ok (model {cfg.link.model}, wake {cfg.wake.engine}/{cfg.wake.keyword}, "
          f"capture {cfg.audio.capture.device}, playback {cfg.audio.playback.device})")
    return 0


def _why_unreachable(exc: OSError, path: str) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"no control socket at {path}: is the service running? Try: systemctl status pivox"
    if isinstance(exc, PermissionError):
        return (f"permission denied on {path}: only root and group pivox may use it "
                "(sudo usermod -aG pivox $USER, then log in again)")
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing is listening on {path}: the daemon stopped? Try: systemctl status pivox"
    if isinstance(exc, TimeoutError):
        return (f"the daemon did not answer on {path} in time: it may be stuck; "
                "try: journalctl -u pivox")
    return f"cannot reach the daemon on {path}: {exc.strerror or exc}"


def _ask(args: argparse.Namespace, cmd: str, **extra: Any) -> dict[str, Any] | None:
    """One request to the daemon; None after one `pivox: ...` line on stderr saying why not."""
    from pivox.control import request

    path = args.socket or _load_config(args.config).control.socket
    try:
        reply = request(path, cmd, **extra)
    except OSError as exc:
        why = _why_unreachable(exc, path)
    except ValueError:
        why = f"the daemon on {path} closed the connection without a readable answer"
    else:
        if isinstance(reply, dict) and reply.get("ok") is True:
            return reply
        error = reply.get("error") if isinstance(reply, dict) else None
        why = f"the daemon refused {cmd!r}: {' '.join(str(error or reply).split())}"
    print(f"pivox: {why}", file=sys.stderr)
    return None


def cmd_status(args: argparse.Namespace) -> int:
    reply = _ask(args, "status")
    if reply is None:
        return 1
    reply.pop("ok", None)
    if args.json:
        print(json.dumps(reply, indent=2))
        return 0
    link, audio, wake = reply["link"], reply["audio"], reply["wake"]
    lines = [
        f"state:    {reply['state']}" + (f" ({reply['reason']})" if reply.get("reason") else ""),
        f"uptime:   {reply['uptime_s']} s",
        f"link:     {'connected' if link['connected'] else 'not connected'} to {link['model']}"
        + (f"; last error: {link['last_error']}" if link["last_error"] else ""),
        f"audio:    mic {audio['capture_device']} ({audio['frames']} frames, "
        f"{audio['overruns']} overruns, {audio['dropped_frames']} dropped), "
        f"speaker {audio['playback_device']} (volume {audio['volume']})",
        f"wake:     {wake['engine']}/{','.join(wake['keywords'])}"
        + (f" (stop: {','.join(wake['stop_keywords'])})" if wake['stop_keywords'] else "")
        + f", last: {wake['last_detection']}"
        + (f"\n          FALLBACK: {wake['fallback']}" if wake['fallback'] else ""),
    ]
    print("\n".join(lines))
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    extra = {"level": args.level} if args.command == "volume" else {}
    reply = _ask(args, args.command, **extra)
    if reply is None:
        return 1
    print(reply.get("state", "ok"))
    return 0


def cmd_clockwork(args: argparse.Namespace) -> int:
    """pivox timers | alarms | announce | play: one request; a refusal is one line, exit 1."""
    cmd = args.command
    if cmd in ("timers", "alarms"):
        extra: dict[str, Any] = {"action": args.action, "label": " ".join(args.label)}
    elif cmd == "announce":
        extra = {"text": " ".join(args.text), "now": args.now}
    else:
        extra = {"file": str(Path(args.file).resolve()), "now": args.now}
    reply = _ask(args, cmd, **extra)
    if reply is None:
        return 1
    if cmd in ("timers", "alarms"):
        items = reply.get(cmd, [])
        if args.json:
            print(json.dumps({cmd: items, "ringing": reply.get("ringing", [])}, indent=2))
        for item in [] if args.json else items:
            when = (f"{item['remaining_s']} s left (at {item['due']})" if cmd == "timers"
                    else f"{item['time']} {item['repeat']}, next {item['next']}")
            print(f"{item['label']}: {when}")
        if not args.json and not items:
            print(f"no {cmd}" + (" (ringing stopped)" if args.action == "stop" else ""))
    return 0


def cmd_diag(args: argparse.Namespace) -> int:
    from pivox.diag import main as diag_main

    return diag_main(args.config, as_json=args.json, no_sound=args.no_sound)


def cmd_demo(args: argparse.Namespace) -> int:
    from pivox.demo import run_demo

    return run_demo(json_out=args.json, out_dir=args.out)


def cmd_wake_eval(args: argparse.Namespace) -> int:
    from pivox.core.wakeword import BUILTIN
    from pivox.wake import WakeSetupError
    from pivox.wake.evaluate import evaluate, render
    from pivox.wake.porcupine import read_access_key

    wake = config_mod.load(args.config).wake if args.config else config_mod.WakeConfig()
    engine = args.engine or wake.engine
    keywords = args.keyword or ([*wake.wake_keywords] if not args.engine or
                                args.engine == wake.engine else [BUILTIN[engine][0]])
    if keywords == ["all"]:
        keywords = list(BUILTIN[engine])
    cutoff = wake.cutoff if args.cutoff is None else args.cutoff
    try:
        key = (read_access_key(wake.access_key_env, wake.access_key_file)
               if engine == "porcupine" else "")
        reports = evaluate(Path(args.dir), engine, keywords, cutoff,
                           wake.refractory_s if args.refractory is None else args.refractory,
                           key)
    except WakeSetupError as exc:
        print(f"pivox: wake engine {engine} cannot start: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"pivox: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        out = [r.as_json() if args.files else r.summary() for r in reports]
        print(json.dumps(out[0] if len(out) == 1 else {"engine": engine, "results": out},
                         indent=2))
    else:
        print("\n\n".join(render(r, verbose=args.files) for r in reports))
    return 0


def cmd_fleet(args: argparse.Namespace) -> int:
    """Every speaker on the broker: the [mqtt] of --config, with any flag overriding it."""
    import dataclasses

    from pivox.home.settings import MqttConfig, plain_problem

    mqtt = MqttConfig() if args.host else _load_config(args.config).mqtt
    flags = {"host": args.host, "port": args.port, "tls": args.tls, "ca_file": args.ca_file,
             "cert_file": args.cert_file, "key_file": args.key_file, "username": args.username,
             "password_file": args.password_file, "base_topic": args.base_topic,
             "allow_plain": args.allow_plain}
    mqtt = dataclasses.replace(mqtt, **{k: v for k, v in flags.items() if v is not None})
    if not mqtt.enabled:
        print(f"pivox: no [mqtt] host in {args.config}: give --host", file=sys.stderr)
        return EXIT_CONFIG
    problem = plain_problem(mqtt, config_mod.is_loopback)
    if problem:
        raise config_mod.ConfigError("pivox fleet", "mqtt.tls (--tls)", problem, mqtt.tls)
    try:
        from pivox.home import fleet
    except ImportError:
        print("pivox: pivox fleet needs the mqtt extra (pip install 'pivox[mqtt]')",
              file=sys.stderr)
        return 1
    return fleet.run(mqtt, args.json, args.watch, args.wait)


def cmd_serve_reference(args: argparse.Namespace) -> int:
    _setup_logging("info")
    from pivox.reference.server import serve_forever

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(args.host, args.port, silence_ms=args.silence_ms))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pivox", description="Voice firmware for Pi speakers.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the speaker daemon")
    run.add_argument("--config", default=str(config_mod.DEFAULT_PATH))
    run.set_defaults(func=cmd_run)

    cfg = sub.add_parser("config", help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    check = cfg_sub.add_parser("check", help="validate a config file without running")
    check.add_argument("path", nargs="?", default=str(config_mod.DEFAULT_PATH))
    check.set_defaults(func=cmd_config_check)

    status = sub.add_parser("status", help="what the running daemon is doing")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    for name, text in (("mute", "privacy mute: no microphone audio leaves the device"),
                       ("unmute", "open the microphone again"),
                       ("talk", "start a conversation, or end the current one"),
                       ("volume", "set the speaker volume")):
        c = sub.add_parser(name, help=text)
        if name == "volume":
            c.add_argument("level", type=float, help="0.0 to 1.0")
        c.set_defaults(func=cmd_control)
    for name, text in (("timers", "timers: list, cancel LABEL (or all), stop the ringing"),
                       ("alarms", "alarms: list, cancel LABEL (or all)")):
        c = sub.add_parser(name, help=text)
        c.add_argument("action", nargs="?", default="list",
                       choices=("list", "cancel", "stop") if name == "timers"
                       else ("list", "cancel"))
        c.add_argument("label", nargs="*", help="the label to cancel")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=cmd_clockwork)
    c = sub.add_parser("announce", help="say TEXT to the room (the model's voice when the "
                       "link is up, a local voice otherwise); no TEXT: the address and state")
    c.add_argument("text", nargs="*")
    c.add_argument("--now", action="store_true", help="end a conversation instead of waiting")
    c.set_defaults(func=cmd_clockwork)
    c = sub.add_parser("play", help="play a WAV file (a doorbell) after the announce chime")
    c.add_argument("file")
    c.add_argument("--now", action="store_true", help="end a conversation instead of waiting")
    c.set_defaults(func=cmd_clockwork)
    for c in [status, *(sub.choices[n] for n in ("mute", "unmute", "talk", "volume", "timers",
                                                 "alarms", "announce", "play"))]:
        c.add_argument("--config", default=str(config_mod.DEFAULT_PATH))
        c.add_argument("--socket", default="", help="control socket (default: from config)")

    diag = sub.add_parser("diag", help="check everything, say what to try next (exit 1 on a "
                          "failed check)")
    diag.add_argument("--json", action="store_true",
                      help='print {"checks": [{"name", "status", "detail", "hint"}]}')
    diag.add_argument("--config", default=str(config_mod.DEFAULT_PATH))
    diag.add_argument("--no-sound", action="store_true", help="do not play a test tone")
    diag.set_defaults(func=cmd_diag)

    demo = sub.add_parser("demo", help="a full conversation on recorded audio, no Pi, no cloud")
    demo.add_argument("--json", action="store_true", help="end with one JSON object of figures")
    demo.add_argument("--out", default="out", help="where to write what the speaker played")
    demo.set_defaults(func=cmd_demo)

    wake = sub.add_parser("wake", help="wake word tools")
    wake_sub = wake.add_subparsers(dest="wake_command", required=True)
    ev = wake_sub.add_parser(
        "eval", help="run a wake engine over a folder of WAVs: detections per file; with "
        "positives/ and negatives/ subfolders, detection rate and false accepts per hour")
    ev.add_argument("dir")
    ev.add_argument("--engine", choices=ENGINES, help="default: from --config, else micro")
    ev.add_argument("--keyword", action="append",
                    help="a keyword or model file; repeat for several, or 'all' for every "
                    "keyword the engine ships (default: the configured wake words)")
    ev.add_argument("--cutoff", type=float, help="0 = each model's own (default)")
    ev.add_argument("--refractory", type=float, help="seconds (default 2.0)")
    ev.add_argument("--config", default="", help="take engine, keywords and keys from it")
    ev.add_argument("--json", action="store_true", help="one JSON object (a list of them "
                    "under 'results' for several keywords)")
    ev.add_argument("--files", action=argparse.BooleanOptionalAction, default=True,
                    help="list every file (default) or only the totals")
    ev.set_defaults(func=cmd_wake_eval)

    fleet = sub.add_parser("fleet", help="every speaker on an MQTT broker: state, version, "
                           "link, last error, last seen")
    fleet.add_argument("--json", action="store_true", help='print {"broker", "speakers": '
                       '[{"id", "online", "state", "version", "link", "last_error", ...}]}')
    fleet.add_argument("--watch", action="store_true", help="keep listing as speakers change")
    fleet.add_argument("--wait", type=float, default=1.5, help="seconds without news before "
                       "the listing is printed (default 1.5)")
    fleet.add_argument("--config", default=str(config_mod.DEFAULT_PATH),
                       help="take the broker from its [mqtt] (unless --host is given)")
    for flag in ("host", "ca-file", "cert-file", "key-file", "username", "password-file",
                 "base-topic"):
        fleet.add_argument(f"--{flag}")
    fleet.add_argument("--port", type=int)
    for flag in ("tls", "allow-plain"):
        fleet.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None)
    fleet.set_defaults(func=cmd_fleet)

    ref = sub.add_parser("serve-reference", help="the bundled Gemini Live reference server")
    ref.add_argument("--host", default="127.0.0.1")
    ref.add_argument("--port", type=int, default=8765)
    ref.add_argument("--silence-ms", type=int, default=500)
    ref.set_defaults(func=cmd_serve_reference)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except config_mod.ConfigError as exc:
        print(f"pivox: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
