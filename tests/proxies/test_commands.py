"""import_proxies and rotate_encryption_keys."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from apps.proxies.models import Proxy
from coreadmin import crypto


def test_import_reads_plain_lines_and_updates_on_reimport(tmp_path, db, clock, capsys):
    source = tmp_path / "proxies.txt"
    source.write_text("http://u:one@10.0.0.1:8000\nhttp://10.0.0.2:8001\n# comment\nnot a url\n")
    call_command("import_proxies", str(source), "--service", "reddit", "--country", "us")
    assert "2 created, 0 updated, 1 rejected" in capsys.readouterr().out
    source.write_text("http://u:two@10.0.0.1:8000\n")
    call_command("import_proxies", str(source), "--service", "reddit")
    assert "0 created, 1 updated" in capsys.readouterr().out
    assert Proxy.objects.count() == 2
    proxy = Proxy.objects.get(port=8000)
    assert proxy.password() == "two" and proxy.country == "US"


def test_import_reads_csv_with_service_and_country_columns(tmp_path, db, clock, capsys):
    source = tmp_path / "proxies.csv"
    source.write_text(
        "url,service,country\nhttp://a:b@10.0.0.1:1,reddit,US\nsocks5://10.0.0.2:2,twitter,de\n"
    )
    call_command("import_proxies", str(source))
    rows = sorted(Proxy.objects.values_list("service", "country", "scheme"))
    assert rows == [("reddit", "US", "http"), ("twitter", "DE", "socks5")]


def test_rotating_keys_reencrypts_under_the_first_key_so_the_old_can_go(
    settings, make_proxy, clock
):
    old_key = settings.ENCRYPTION_KEYS[0]
    proxy = make_proxy(password="keep-me")
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys")
    proxy.refresh_from_db()
    assert crypto.decrypt(proxy.password_encrypted, keys=[new_key]) == "keep-me"
    settings.ENCRYPTION_KEYS = [new_key]
    assert proxy.password() == "keep-me"


def test_an_import_with_only_bad_rows_fails_and_says_why(tmp_path, db, clock, capsys):
    source = tmp_path / "bad.csv"
    source.write_text("url,service,country\nhttp://10.0.0.3:1,reddit,USA\nftp://x:1,reddit,US\n")
    with pytest.raises(CommandError):
        call_command("import_proxies", str(source))
    err = capsys.readouterr().err
    assert "row 1: country must be a two-letter code" in err and "row 2: scheme" in err
    assert Proxy.objects.count() == 0
