"""A real SMTP server (aiosmtpd) for the otp-delivery tests.

Binds 127.0.0.1 on a free port, prints "PORT <n>" on stdout, then serves
until killed. Every accepted message is parsed with Python's email package
and written as JSON to --dir (one file per message, renamed into place).

Modes: plain (no TLS), starttls (STARTTLS required), tls (implicit TLS).
Recipients starting with "reject" get 550; "tempfail" gets 451 for the first
two tries and is accepted on the third.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import socket
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.tempfails = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("tempfail"):
            seen = self.tempfails.get(address, 0)
            self.tempfails[address] = seen + 1
            if seen < 2:
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({"type": part.get_content_type(), "content": part.get_content()})
        login = None
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "subject": str(msg["Subject"]),
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "content_type": msg.get_content_type(),
            "parts": parts,
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "login": login,
            "raw": envelope.content.decode("utf-8", "replace"),
        }
        path = os.path.join(self.out_dir, "%04d.json" % self.count)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 queued as Q%04d" % self.count


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return authenticator


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args()

    ctx = None
    if a.mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)

    handler = Handler(a.dir)
    kwargs = {}
    if a.user:
        kwargs["authenticator"] = make_authenticator(a.user, a.password)
        kwargs["auth_required"] = True

    def factory():
        return SMTP(
            handler,
            hostname="otp-test-smtp",
            tls_context=ctx if a.mode == "starttls" else None,
            require_starttls=a.mode == "starttls",
            auth_require_tls=a.mode != "plain",
            **kwargs,
        )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, sock=sock, ssl=ctx if a.mode == "tls" else None)
    print("PORT %d" % sock.getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
