"""``meterbench sms``: CMe2100 SMS protocol v1 helpers (docs/cme2100-sms-protocol.md).

* ``meterbench sms encrypt --key KEY --counter N [--response] TEXT``: print the SMS text.
* ``meterbench sms decrypt --key KEY [--command] SMS``: print the plaintext (counter on
  stderr); a bad text exits 2 with its reason (``bad_tag``, ``not_base64url`` at offset...).
* ``meterbench sms send (--port URL | --rig RIG) --to NUMBER --key KEY --counter N
  [--wait S] COMMAND``: encrypt a command, send it through an AT-command GSM modem (pyserial
  URL, or the ``url`` of the rig's transport named ``modem``) and, with ``--wait``, print the
  decrypted responses that arrive within S seconds.

The key can also come from the environment variable ``MBENCH_SMS_KEY`` (formerly
``METERBENCH_SMS_KEY``, still read with a warning) so it does not end up in the shell history.
Counters are explicit: the tool keeps no hidden state, and the
gateway rejects a counter that is not above the last one it accepted.
"""

from __future__ import annotations

import sys

from simulator.cli import EXIT_BENCH_FAULT, EXIT_CHECKS_FAILED, EXIT_USAGE, env
from simulator.gateways.cme2100.protocol import (
    Direction,
    KeyFormatError,
    SmsProtocolError,
    decrypt,
    encrypt,
)
from simulator.gateways.cme2100.sms import SmsEncodingError, parts_needed
from simulator.scenario import Issue, ScenarioError

KEY_ENV = "MBENCH_SMS_KEY"
OLD_KEY_ENV = "METERBENCH_SMS_KEY"  # before the MBENCH_ prefix; still read, with a warning


def add_parser(sub) -> None:
    p = sub.add_parser("sms", help="CMe2100 encrypted SMS: encrypt, decrypt, send via a modem")
    verbs = p.add_subparsers(dest="sms_verb", metavar="ACTION")

    def key_arg(q) -> None:
        q.add_argument(
            "--key", default=None, help=f"16-character communication key (default: ${KEY_ENV})"
        )

    e = verbs.add_parser("encrypt", help="encrypt a command (or, with --response, a response)")
    key_arg(e)
    e.add_argument("--counter", type=int, required=True, help="message counter 1..4294967295")
    e.add_argument("--response", action="store_true", help="direction: gateway -> head-end")
    e.add_argument("text", help="the plaintext")
    e.set_defaults(func=_encrypt)

    d = verbs.add_parser(
        "decrypt", help="decrypt a gateway response (or, with --command, a command)"
    )
    key_arg(d)
    d.add_argument("--command", action="store_true", help="direction: head-end -> gateway")
    d.add_argument("sms", help="the SMS text (Base64URL)")
    d.set_defaults(func=_decrypt)

    s = verbs.add_parser("send", help="encrypt a command and send it through a GSM modem")
    key_arg(s)
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="modem pyserial URL, e.g. /dev/ttyUSB2")
    where.add_argument("--rig", help="rig file whose transport named 'modem' is the modem")
    s.add_argument("--baud", type=int, default=115200, help="modem port speed (bit/s)")
    s.add_argument("--to", required=True, help="the gateway's phone number, e.g. +46701234567")
    s.add_argument("--counter", type=int, required=True, help="message counter 1..4294967295")
    s.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="seconds to wait for responses and print them decrypted",
    )
    s.add_argument("command", help="the plaintext command, e.g. 'install 12'")
    s.set_defaults(func=_send)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _key(args) -> str:
    key = args.key if args.key is not None else env("SMS_KEY", old=OLD_KEY_ENV)
    if key is None:
        raise KeyFormatError(f"no key: give --key or set ${KEY_ENV}")
    return key


def _fail(verb: str, exc: Exception, code: int = EXIT_USAGE) -> int:
    print(f"meterbench sms {verb}: {exc}", file=sys.stderr)
    return code


def _encrypt(args) -> int:
    direction = Direction.RESPONSE if args.response else Direction.COMMAND
    try:
        text = encrypt(_key(args), args.text, counter=args.counter, direction=direction)
    except (KeyFormatError, ValueError) as exc:
        return _fail("encrypt", exc)
    print(text)
    print(f"{len(text)} characters, {parts_needed(text)} SMS", file=sys.stderr)
    return 0


def _decrypt(args) -> int:
    direction = Direction.COMMAND if args.command else Direction.RESPONSE
    try:
        message = decrypt(_key(args), args.sms, direction=direction)
    except (KeyFormatError, SmsProtocolError) as exc:
        if getattr(exc, "reason", None) == "bad_direction":
            # encrypt makes commands by default, decrypt expects responses: say which flag fits
            hint = (
                "a response SMS: drop --command" if args.command else "a command SMS: add --command"
            )
            return _fail("decrypt", SmsProtocolError(exc.reason, f"{exc.detail} ({hint})", 1))
        return _fail("decrypt", exc)
    print(message.text)
    print(f"counter {message.counter}", file=sys.stderr)
    return 0


def _send(args) -> int:
    from simulator.gateways.cme2100.modem import GsmModem, ModemError  # pyserial only here

    try:
        key = _key(args)
        port = args.port or _rig_modem(args.rig)
        text = encrypt(key, args.command, counter=args.counter, direction=Direction.COMMAND)
        with GsmModem(port, baudrate=args.baud) as modem:
            refs = modem.send_sms(args.to, text)
            print(
                f"sent {len(text)} characters as {len(refs)} SMS (references {refs})",
                file=sys.stderr,
            )
            if args.wait > 0:
                try:
                    replies = modem.wait_for_sms(1, timeout=args.wait)
                except ModemError:
                    print(f"no response within {args.wait} s", file=sys.stderr)
                    return EXIT_CHECKS_FAILED
                for sms in replies:
                    try:
                        print(decrypt(key, sms.text, direction=Direction.RESPONSE).text)
                    except SmsProtocolError as exc:
                        print(f"{sms.number}: undecryptable ({exc}): {sms.text}")
    except (ModemError, OSError) as exc:  # the modem or its port: the bench
        return _fail("send", exc, EXIT_BENCH_FAULT)
    except (KeyFormatError, ValueError, SmsEncodingError, ScenarioError) as exc:
        return _fail("send", exc)
    return 0


def _rig_modem(path: str) -> str:
    """The url of the rig's transport named ``modem`` (ScenarioError if it has none)."""
    from simulator.rig import load_rig

    rig = load_rig(path)
    modem = rig.transport("modem")
    if modem is None or not modem.url:
        raise ScenarioError(
            [Issue(path, None, "transports", "no transport named 'modem' with a url")]
        )
    return modem.url
