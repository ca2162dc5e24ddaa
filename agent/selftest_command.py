"""`rpfleet agent self-test`: the technician's guided check of every configured
peripheral, and the handover record it sends to the fleet server.

Stop the agent service first (it holds the devices): sudo systemctl stop rpfleet-agent.

Exit codes: 0 every peripheral passed and the server confirmed the record;
1 a peripheral failed (the record was confirmed all the same) or the config is
invalid; 75 the server did not confirm the record: it is saved and sent again
by the next run or by --resend; 130 stopped with Ctrl-C (nothing sent).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from agent.settings import DEFAULT_CONFIG
from rpfleet.durations import parse_duration

EXIT_FAILED = 1
EXIT_UNCONFIRMED = 75  # EX_TEMPFAIL: try again later
EXIT_INTERRUPTED = 130


def add(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "self-test", help="walk through every peripheral with the technician; send the handover record",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help=f"TOML file (default {DEFAULT_CONFIG})"
    )
    cmd.add_argument("--technician", metavar="NAME", help="who does the test (asked when left out)")
    cmd.add_argument(
        "--timeout", type=_duration, default=60.0, metavar="DURATION",
        help="how long each step waits for the device or an answer (default 60s)",
    )
    cmd.add_argument(
        "--confirm-timeout", type=_duration, default=20.0, metavar="DURATION",
        help="how long to wait for the server's confirmation of a record (default 20s)",
    )
    cmd.add_argument(
        "--resend", action="store_true",
        help="test nothing: send the records an earlier run could not get confirmed",
    )
    cmd.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    cmd.set_defaults(command=run)


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than 0s")
    return seconds


def run(args: argparse.Namespace) -> int:
    import logging

    from agent.cli import _load

    settings = _load(args.config)
    if settings is None:
        return EXIT_FAILED
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_main(settings, args))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return EXIT_INTERRUPTED


async def _main(settings, args: argparse.Namespace) -> int:
    from agent.selftest import summary
    from agent.selftest_run import Console, SelfTest
    from agent.selftest_send import load_pending, pending_path, save_pending

    out = sys.stdout
    say = lambda text: print(text, file=out, flush=True)  # noqa: E731
    path = pending_path(settings)
    try:
        earlier = load_pending(path)
    except ValueError as exc:
        print(f"rpfleet agent: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.resend:
        if not earlier:
            say("Không có biên bản nào chờ gửi / no handover record is waiting to be sent.")
            return 0
        return await _send(settings, earlier, args.confirm_timeout, say)

    console = Console(sys.stdin.fileno(), out)
    test = SelfTest(settings, console, timeout=args.timeout)
    say(f"Tự kiểm tra nút {settings.node_id}: {len(test.steps)} thiết bị ngoại vi\n"
        f"Self-test of node {settings.node_id}: {len(test.steps)} peripheral(s)")
    if earlier:
        say(f"({len(earlier)} biên bản trước chưa được xác nhận sẽ được gửi cùng / "
            f"{len(earlier)} earlier unconfirmed record(s) will be sent too)")
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert main is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    console.start()
    try:
        record = await test.run(args.technician)
    except asyncio.CancelledError:
        say("\nĐã dừng; chưa gửi gì / stopped; nothing was sent.")
        return EXIT_INTERRUPTED
    finally:
        console.stop()
    say("\nKết quả / results:\n" + summary(record))
    records = [*earlier, record]
    try:
        save_pending(path, records)  # kept until confirmed, whatever happens while sending
    except OSError as exc:
        say(f"(không lưu được / cannot save {path}: {exc.strerror or exc}; run as the agent's user "
            "or with sudo)")
    try:
        code = await _send(settings, records, args.confirm_timeout, say)
    except asyncio.CancelledError:
        say(f"\nĐã dừng; biên bản được lưu tại {path} / stopped; the record is saved in {path}.\n"
            "Gửi lại / send it later: rpfleet agent self-test --resend")
        return EXIT_INTERRUPTED
    if code != 0:
        return code
    return 0 if record.passed else EXIT_FAILED


async def _send(settings, records, timeout: float, say) -> int:
    """Send ``records`` and say plainly whether the server confirmed them."""
    from agent.selftest_send import pending_path, send_all

    count = f" ({len(records)})" if len(records) > 1 else ""
    say(f"\nĐang gửi biên bản bàn giao lên máy chủ…{count} / sending the handover record "
        f"to the server…{count}")
    sent = await send_all(settings, records, timeout)
    if not sent.waiting:
        say("Máy chủ đã xác nhận biên bản / the server confirmed the handover record.")
        return 0
    if sent.confirmed:
        say(f"{len(sent.confirmed)} biên bản đã được xác nhận / record(s) confirmed.")
    say(f"CHƯA GỬI ĐƯỢC: {sent.detail}.\nNOT SENT: {sent.detail}.")
    if sent.unsaved:
        say(f"VÀ KHÔNG LƯU ĐƯỢC / AND NOT SAVED: {sent.unsaved}.\n"
            "Chạy lại với quyền của agent (sudo) / run the self-test again as the agent's user (sudo).")
        return EXIT_UNCONFIRMED
    say(
        f"Biên bản được lưu tại / the record is saved in {pending_path(settings)}\n"
        "Khi có mạng, gửi lại bằng / when the network is back, send it with:\n"
        "  rpfleet agent self-test --resend"
    )
    return EXIT_UNCONFIRMED
