"""`hazmon token create|list|revoke`: API tokens, shown once, stored hashed."""

from __future__ import annotations

import argparse
import sys

from hazmon.db import connect
from hazmon.settings import Settings


def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    """Create an API token and print it once."""
    from datetime import UTC, datetime

    from hazmon.auth import create_token, grant, site_id_by_code

    with connect(settings.database_url) as conn:
        site_id = site_id_by_code(conn, args.site) if args.site else None
        new = grant(
            name=args.name,
            role=args.role,
            expires_days=args.expires_days,
            now=datetime.now(UTC),
            region=args.region or "",
            enterprise=args.enterprise or "",
            site_id=site_id,
        )
        token_id = create_token(conn, new)
    print(
        f"令牌 / token #{token_id} ({args.role}, 到期 / expires {new.row['expires_at']:%Y-%m-%d}), "
        f"仅显示一次 / shown only once:\n{new.token}"
    )
    return 0


def cmd_token_list(settings: Settings, args: argparse.Namespace) -> int:
    """List API tokens (never the tokens themselves): id, name, role, scope, state."""
    from hazmon.auth import list_tokens

    with connect(settings.database_url) as conn:
        listings = list_tokens(conn)
    for t in listings:
        print(f"#{t.id}\t{t.role}\t{t.scope}\t{t.state}\t{t.name}")
    return 0


def cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    """Revoke an API token by id."""
    from hazmon.auth import revoke_token

    with connect(settings.database_url) as conn:
        revoked = revoke_token(conn, args.id)
    if not revoked:
        print(f"无此有效令牌 / no unrevoked token #{args.id}", file=sys.stderr)
        return 2
    print(f"已吊销 / revoked token #{args.id}")
    return 0


def add_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon token`."""
    token = sub.add_parser("token", help="接口令牌 / API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser(
        "create", help="新建令牌（仅显示一次）/ create a token (shown once)"
    )
    create.add_argument(
        "--role",
        required=True,
        choices=["admin", "regulator", "inspector", "enterprise", "gateway"],
        help="角色 / role",
    )
    create.add_argument("--name", required=True, help="名称 / who the token is for")
    create.add_argument(
        "--region", help="区划代码或前缀 / region code or prefix (regulator, inspector)"
    )
    scope = create.add_mutually_exclusive_group()
    scope.add_argument("--enterprise", help="企业名称 / enterprise name (enterprise role)")
    scope.add_argument("--site", help="工地编号 / one site's code (enterprise role)")
    create.add_argument(
        "--expires-days", type=int, default=90, help="有效天数 / days until it expires"
    )
    create.set_defaults(func=cmd_token_create)
    revoke = token_sub.add_parser("revoke", help="吊销令牌 / revoke a token")
    revoke.add_argument("id", type=int, help="令牌编号 / token id")
    revoke.set_defaults(func=cmd_token_revoke)
    token_sub.add_parser(
        "list", help="列出令牌（不含令牌本身）/ list tokens (never the secrets)"
    ).set_defaults(func=cmd_token_list)
