"""`hazmon user create|list|disable|enable` and `hazmon token create|list|revoke`: the people
tokens are issued to, and API tokens, shown once, stored hashed."""

from __future__ import annotations

import argparse
import sys

from hazmon.db import connect
from hazmon.settings import Settings


def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    """Create an API token and print it once."""
    from datetime import UTC, datetime

    from hazmon.auth import AuthError, create_token, grant, grant_for_user, site_id_by_code

    now = datetime.now(UTC)
    with connect(settings.database_url) as conn:
        if args.user is not None:
            if args.role or args.region or args.enterprise or args.site:
                raise AuthError("a user's token takes the user's role and scope: give --user only")
            new = grant_for_user(
                user_id=args.user, name=args.name, expires_days=args.expires_days, now=now
            )
        else:
            if not args.role:
                raise AuthError("give --user ID, or --role (and its scope) for a user by name")
            site_id = site_id_by_code(conn, args.site) if args.site else None
            new = grant(
                name=args.name,
                role=args.role,
                expires_days=args.expires_days,
                now=now,
                region=args.region or "",
                enterprise=args.enterprise or "",
                site_id=site_id,
            )
        token_id = create_token(conn, new)
        role = conn.execute("SELECT role FROM api_tokens WHERE id = %s", (token_id,)).fetchone()
    print(
        f"令牌 / token #{token_id} ({role[0] if role else '?'}, 到期 / expires "
        f"{new.row['expires_at']:%Y-%m-%d}), 仅显示一次 / shown only once:\n{new.token}"
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


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> int:
    """Create a user (a person to issue tokens to)."""
    import getpass

    import psycopg

    from hazmon.auth import AuthError, create_user, new_user, site_id_by_code

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.password_prompt:
        password = getpass.getpass("密码 / password: ")
    with connect(settings.database_url) as conn:
        site_id = site_id_by_code(conn, args.site) if args.site else None
        row = new_user(
            name=args.name,
            role=args.role,
            region=args.region or "",
            enterprise=args.enterprise or "",
            site_id=site_id,
            phone=args.phone,
            unit=args.unit or "",
            password=password,
        )
        try:
            user_id = create_user(conn, row)
        except psycopg.errors.UniqueViolation:
            raise AuthError(f"phone {args.phone} is already another user's") from None
    print(
        f"已建用户 / user #{user_id} {row['name']} ({args.role}); "
        f"发放令牌 / issue a token: hazmon token create --user {user_id} --name 手机"
    )
    return 0


def cmd_user_list(settings: Settings, args: argparse.Namespace) -> int:
    """List users: id, role, scope, state, usable tokens, name, phone, unit."""
    from hazmon.auth import list_users

    with connect(settings.database_url) as conn:
        listings = list_users(conn)
    for u in listings:
        print(
            f"#{u.id}\t{u.role}\t{u.scope}\t{u.state}\ttokens {u.tokens}\t{u.name}\t"
            f"{u.phone or '-'}\t{u.unit or '-'}"
        )
    return 0


def _set_disabled(settings: Settings, user_id: int, disabled: bool) -> int:
    from hazmon.auth import set_user_disabled

    with connect(settings.database_url) as conn:
        found = set_user_disabled(conn, user_id, disabled)
    if not found:
        print(f"无此用户 / no user #{user_id}", file=sys.stderr)
        return 2
    what = (
        "已停用（其令牌均失效）/ disabled (every token of theirs stops)"
        if disabled
        else ("已启用 / enabled")
    )
    print(f"{what}: user #{user_id}")
    return 0


def cmd_user_disable(settings: Settings, args: argparse.Namespace) -> int:
    """Disable a user: their tokens stop working at their next request."""
    return _set_disabled(settings, args.id, True)


def cmd_user_enable(settings: Settings, args: argparse.Namespace) -> int:
    """Enable a disabled user again."""
    return _set_disabled(settings, args.id, False)


def _add_scope(parser: argparse.ArgumentParser, required_role: bool) -> None:
    parser.add_argument(
        "--role",
        required=required_role,
        choices=["admin", "regulator", "inspector", "enterprise", "gateway"],
        help="角色 / role",
    )
    parser.add_argument(
        "--region", help="区划代码或前缀 / region code or prefix (regulator, inspector)"
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--enterprise", help="企业名称 / enterprise name (enterprise role)")
    scope.add_argument("--site", help="工地编号 / one site's code (enterprise role)")


def add_user(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon user`."""
    user = sub.add_parser("user", help="用户（令牌发放对象）/ users, to whom tokens are issued")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_sub.add_parser("create", help="新建用户 / create a user")
    create.add_argument("--name", required=True, help="姓名 / name")
    _add_scope(create, required_role=True)
    create.add_argument("--phone", help="手机（唯一）/ mobile number (unique)")
    create.add_argument("--unit", help="单位 / unit")
    password = create.add_mutually_exclusive_group()
    password.add_argument(
        "--password-stdin",
        action="store_true",
        help="从标准输入读一行作密码（仅存散列）/ read a password line from stdin (stored hashed)",
    )
    password.add_argument(
        "--password-prompt", action="store_true", help="提示输入密码 / prompt for a password"
    )
    create.set_defaults(func=cmd_user_create)
    user_sub.add_parser("list", help="列出用户 / list users").set_defaults(func=cmd_user_list)
    for name, func, text in (
        ("disable", cmd_user_disable, "停用用户，其令牌即失效 / disable: every token stops"),
        ("enable", cmd_user_enable, "重新启用用户 / enable again"),
    ):
        action = user_sub.add_parser(name, help=text)
        action.add_argument("id", type=int, help="用户编号 / user id")
        action.set_defaults(func=func)


def add_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon token`."""
    token = sub.add_parser("token", help="接口令牌 / API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser(
        "create", help="新建令牌（仅显示一次）/ create a token (shown once)"
    )
    create.add_argument(
        "--user",
        type=int,
        help="发给此用户（取其角色与范围）/ issue to this user id (their role and scope)",
    )
    create.add_argument(
        "--name",
        required=True,
        help="名称：无 --user 时为用户姓名，同名同角色同范围即同一用户 / without --user, the "
        "user's name (same name, role and scope: the same user); with --user, what it is for",
    )
    _add_scope(create, required_role=False)
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
