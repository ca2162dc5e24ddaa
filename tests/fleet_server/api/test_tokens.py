"""API tokens: random, stored only hashed, refused once revoked; the
`rpfleet server token` commands print a token once and never log it."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from fleet_server.api import tokens
from fleet_server.cli import main
from fleet_server.schema import api_tokens, sites

# ---- pure ------------------------------------------------------------------------


def test_a_token_is_prefixed_and_carries_256_random_bits() -> None:
    made = {tokens.new_token() for _ in range(1000)}

    assert len(made) == 1000
    for token in made:
        assert re.fullmatch(r"rpf_[A-Za-z0-9_-]{43}", token), token  # 43 base64 chars = 256 bits


def test_the_digest_is_sha256_hex() -> None:
    assert tokens.digest("rpf_abc") == hashlib.sha256(b"rpf_abc").hexdigest()
    assert len(tokens.digest(tokens.new_token())) == 64


@pytest.mark.parametrize(
    "name", ["", "-leading-dash", "has space", "x" * 101, "tab\\t", "é"],
    ids=["empty", "leading-dash", "space", "too-long", "tab", "non-ascii"],
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(tokens.TokenError, match="token name"):
        tokens.check_name(name)


@pytest.mark.parametrize("name", ["prometheus", "console.hk", "ops@branch-3", "a", "x" * 100])
def test_good_names_pass(name: str) -> None:
    assert tokens.check_name(name) == name


# ---- the store --------------------------------------------------------------------


def test_the_store_keeps_the_digest_and_never_the_token(engine) -> None:
    with engine.begin() as conn:
        token = tokens.create(conn, "prometheus")
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_tokens)).one()

    assert row.name == "prometheus" and row.revoked_at is None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(tuple(row))


def test_a_token_is_known_until_revoked_then_known_as_revoked(engine) -> None:
    at = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
    with engine.begin() as conn:
        token = tokens.create(conn, "console")
        assert tokens.identify(conn, token).active
        revoked = tokens.revoke(conn, "console", now=at)
        again = tokens.revoke(conn, "console", now=at.replace(hour=10))
        found = tokens.identify(conn, token)

    assert revoked.revoked_at == at
    assert again.revoked_at == at, "revoking twice keeps the first time"
    assert found is not None and found.name == "console" and not found.active


def test_strangers_are_not_identified(engine) -> None:
    with engine.begin() as conn:
        token = tokens.create(conn, "console")
        assert tokens.identify(conn, tokens.new_token()) is None
        assert tokens.identify(conn, token + "x") is None
        assert tokens.identify(conn, "") is None


def test_names_are_unique_even_after_revocation(engine) -> None:
    with engine.begin() as conn:
        tokens.create(conn, "console")
        tokens.revoke(conn, "console")
        with pytest.raises(tokens.TokenError, match="'console' exists already"):
            tokens.create(conn, "console")


def test_revoking_an_unknown_name_says_so(engine) -> None:
    with engine.begin() as conn:
        with pytest.raises(tokens.TokenError, match="no token is named 'ghost'"):
            tokens.revoke(conn, "ghost")


def test_the_listing_shows_names_and_times_oldest_first(engine) -> None:
    t1 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    t2 = datetime(2025, 2, 1, tzinfo=timezone.utc)
    with engine.begin() as conn:
        tokens.create(conn, "later", now=t2)
        tokens.create(conn, "earlier", now=t1)
        tokens.revoke(conn, "earlier", now=t2)
    with engine.connect() as conn:
        listed = tokens.listing(conn)

    assert listed == [tokens.TokenInfo("earlier", t1, t2), tokens.TokenInfo("later", t2, None)]


# ---- scopes -------------------------------------------------------------------------


def register_sites(conn, *site_ids: str) -> None:
    conn.execute(sites.insert(), [{"id": s, "name": s, "kind": "commune"} for s in site_ids])


def test_an_integration_token_knows_its_role_and_sites(engine) -> None:
    with engine.begin() as conn:
        register_sites(conn, "hk-01", "bd-01", "dd-01")
        queue = tokens.create(conn, "queue-hk", role="queue", sites=["hk-01", "bd-01", "hk-01"])
        operator = tokens.create(conn, "console")
        found, reader = tokens.identify(conn, queue), tokens.identify(conn, operator)
        revoked = tokens.revoke(conn, "queue-hk")
        listed = {t.name: t for t in tokens.listing(conn)}

    assert (found.role, found.sites, found.is_operator) == ("queue", ("bd-01", "hk-01"), False)
    assert (reader.role, reader.sites, reader.is_operator) == ("operator", (), True)
    assert revoked.sites == ("bd-01", "hk-01") and not revoked.active
    assert listed["queue-hk"].sites == ("bd-01", "hk-01") and listed["console"].sites == ()


@pytest.mark.parametrize(
    ("role", "served", "message"),
    [
        ("queue", [], "a queue token serves named sites: give at least one --site"),
        ("payment", ["hk-01", "nowhere"], "no site 'nowhere' is registered"),
        ("operator", ["hk-01"], "an operator token reads every site and takes no --site"),
        ("admin", [], "no role 'admin'"),
    ],
    ids=["integration-without-site", "unknown-site", "operator-with-site", "unknown-role"],
)
def test_a_scope_that_does_not_fit_is_refused(engine, role, served, message) -> None:
    with engine.begin() as conn:
        register_sites(conn, "hk-01")
        with pytest.raises(tokens.TokenError, match=message):
            tokens.create(conn, "x", role=role, sites=served)
        assert conn.execute(sa.select(api_tokens)).first() is None


def test_the_commands_make_and_list_an_integration_token(db_url, capsys) -> None:
    engine = sa.create_engine(db_url)
    assert main(["token", "list", "--db", db_url]) == 0  # makes the store
    with engine.begin() as conn:
        register_sites(conn, "hk-01", "bd-01")
    engine.dispose()
    capsys.readouterr()

    assert main(["token", "create", "--name", "pay-gw", "--role", "payment",
                 "--site", "hk-01", "--site", "bd-01", "--db", db_url]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["token", "list", "--db", db_url]) == 0
    listed = capsys.readouterr().out.splitlines()

    assert re.fullmatch(r"rpf_[A-Za-z0-9_-]{43}", token)
    assert listed[1].split()[:2] == ["pay-gw", "payment"]
    assert listed[1].split()[-2:] == ["-", "bd-01,hk-01"]
    assert token not in "".join(listed)


def test_a_site_without_a_role_is_refused_by_the_command(db_url, capsys) -> None:
    assert main(["token", "create", "--name", "q", "--site", "hk-01", "--db", db_url]) == 2
    assert "an operator token reads every site and takes no --site" in capsys.readouterr().err


# ---- the commands ------------------------------------------------------------------


def test_create_prints_the_token_once_and_logs_nothing_of_it(db_url, capsys, caplog) -> None:
    caplog.set_level(logging.DEBUG)

    assert main(["token", "create", "--name", "prometheus", "--db", db_url]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert re.fullmatch(r"rpf_[A-Za-z0-9_-]{43}", token)
    assert out.err == ""

    assert main(["token", "list", "--db", db_url]) == 0
    listed = capsys.readouterr().out
    assert "prometheus" in listed and token not in listed and tokens.digest(token) not in listed

    assert main(["token", "revoke", "prometheus", "--db", db_url]) == 0
    assert "token 'prometheus' revoked at" in capsys.readouterr().out

    assert token not in caplog.text and token[4:20] not in caplog.text

    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        found = tokens.identify(conn, token)
    engine.dispose()
    assert found is not None and found.name == "prometheus" and not found.active


def test_the_listing_marks_revoked_tokens(db_url, capsys) -> None:
    for args in (["create", "--name", "a"], ["create", "--name", "b"], ["revoke", "a"]):
        assert main(["token", *args, "--db", db_url]) == 0
    capsys.readouterr()

    main(["token", "list", "--db", db_url])
    lines = capsys.readouterr().out.splitlines()

    assert lines[0].split() == ["name", "role", "created", "revoked", "sites"]
    a, b = lines[1].split(), lines[2].split()
    assert a[0] == "a" and a[1] == "operator" and a[-2].endswith("Z") and a[-1] == "-"
    assert b[0] == "b" and b[-2:] == ["-", "-"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--name", "has space"], "token name 'has space' must be"),
        (["revoke", "ghost"], "no token is named 'ghost'"),
    ],
    ids=["bad-name", "unknown-revoke"],
)
def test_commands_refuse_with_a_reason_and_exit_2(db_url, capsys, args, message) -> None:
    assert main(["token", *args, "--db", db_url]) == 2
    out = capsys.readouterr()
    assert message in out.err and out.out == ""


def test_a_second_token_of_the_same_name_is_refused(db_url, capsys) -> None:
    main(["token", "create", "--name", "twice", "--db", db_url])
    capsys.readouterr()

    assert main(["token", "create", "--name", "twice", "--db", db_url]) == 2
    out = capsys.readouterr()
    assert "exists already" in out.err and out.out == ""
