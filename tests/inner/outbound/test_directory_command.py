"""``maildiode directory import|list|passwd`` as an administrator runs it."""

from __future__ import annotations

from tests.support.command import maildiode
from tests.support.outbound import HR_CSV


def test_import_twice_list_and_passwd(tmp_path):
    config = tmp_path / "inner.toml"
    config.write_text('[outbound]\ndirectory_db = "dir.db"\n[other]\nignored = 1\n')
    csv = tmp_path / "hr.csv"
    csv.write_bytes(HR_CSV)
    first = maildiode("directory", "import", str(csv), "-c", str(config))
    assert first.returncode == 0, first.stderr
    assert "users: 5 added, 0 changed, 0 removed" in first.stdout
    assert "  + lee@corp.example" in first.stdout
    csv.write_bytes(
        HR_CSV.replace(
            "jung@corp.example,정보안,보안팀".encode(), "jung@corp.example,정보안,영업부".encode()
        )
    )
    second = maildiode("directory", "import", str(csv), "-c", str(config))
    assert "users: 0 added, 1 changed, 0 removed" in second.stdout
    assert "  ~ jung@corp.example" in second.stdout
    assert (
        maildiode(
            "directory", "passwd", "lee@corp.example", "-c", str(config), stdin="short\n"
        ).returncode
        == 1
    )
    done = maildiode(
        "directory", "passwd", "lee@corp.example", "-c", str(config), stdin="a long pass phrase\n"
    )
    assert done.returncode == 0
    assert "password set for lee@corp.example" in done.stdout
    listing = maildiode("directory", "list", "-c", str(config)).stdout.splitlines()
    assert "lee@corp.example\t이영희\t영업부\thead\taccount" in listing
    assert "kim@corp.example\t김철수\t영업부\tmember\t-" in listing
    unknown = maildiode(
        "directory",
        "passwd",
        "nobody@corp.example",
        "-c",
        str(config),
        stdin="a long pass phrase\n",
    )
    assert unknown.returncode == 1
    assert "not in the directory" in unknown.stderr


def test_bad_export_names_line_and_column(tmp_path):
    config = tmp_path / "inner.toml"
    config.write_text('[outbound]\ndirectory_db = "dir.db"\n')
    csv = tmp_path / "hr.csv"
    csv.write_text("email,department\nnot-an-address,영업부\n", encoding="utf-8")
    result = maildiode("directory", "import", str(csv), "-c", str(config))
    assert result.returncode == 1
    assert "hr.csv: line 2: column email" in result.stderr


def test_bad_config_is_named(tmp_path):
    config = tmp_path / "inner.toml"
    config.write_text('[outbound]\nlisten = "nowhere"\n')
    result = maildiode("directory", "list", "-c", str(config))
    assert result.returncode == 2
    assert "inner.toml: outbound.listen" in result.stderr


def test_totp_gives_an_account_a_second_factor_and_takes_it_away(tmp_path):
    import pyotp

    from inner_agent.outbound.directory import Directory

    config = tmp_path / "inner.toml"
    config.write_text('[outbound]\ndirectory_db = "dir.db"\n')
    csv = tmp_path / "hr.csv"
    csv.write_bytes(HR_CSV)
    maildiode("directory", "import", str(csv), "-c", str(config))
    no_account = maildiode("directory", "totp", "lee@corp.example", "-c", str(config))
    assert no_account.returncode == 1
    assert "set a password first" in no_account.stderr
    maildiode(
        "directory", "passwd", "lee@corp.example", "-c", str(config), stdin="a long pass phrase\n"
    )
    done = maildiode("directory", "totp", "LEE@corp.example", "-c", str(config))
    assert done.returncode == 0, done.stderr
    secret = done.stdout.split("secret: ")[1].split()[0]
    assert "otpauth://totp/maildiode:lee%40corp.example?secret=" + secret in done.stdout
    directory = Directory(tmp_path / "dir.db")
    assert directory.totp_secret("lee@corp.example") == secret
    assert len(pyotp.TOTP(secret).now()) == 6
    directory.close()
    listing = maildiode("directory", "list", "-c", str(config)).stdout
    assert "lee@corp.example\t이영희\t영업부\thead\taccount+totp" in listing.splitlines()
    # a new password keeps the second factor
    maildiode(
        "directory", "passwd", "lee@corp.example", "-c", str(config), stdin="another long phrase\n"
    )
    directory = Directory(tmp_path / "dir.db")
    assert directory.totp_secret("lee@corp.example") == secret
    directory.close()
    off = maildiode("directory", "totp", "lee@corp.example", "off", "-c", str(config))
    assert off.returncode == 0
    directory = Directory(tmp_path / "dir.db")
    assert directory.totp_secret("lee@corp.example") is None
    directory.close()
    assert (
        maildiode("directory", "totp", "lee@corp.example", "on", "-c", str(config)).returncode == 2
    )
