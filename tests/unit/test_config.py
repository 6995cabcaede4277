from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from orglogin.core.config import DEVELOPMENT_SECRET_KEY, load_config

BASE = Path("/tmp/orglogin-config-test")


def test_production_refuses_to_start_without_secret_key():
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        load_config(base_dir=BASE, env={"DEBUG": "0"})


def test_production_refuses_the_development_secret_key():
    with pytest.raises(ImproperlyConfigured, match="development key"):
        load_config(base_dir=BASE, env={"SECRET_KEY": DEVELOPMENT_SECRET_KEY})


def test_development_gets_a_key_and_sqlite_by_default():
    config = load_config(base_dir=BASE, env={"DEBUG": "1"})
    assert config.secret_key == DEVELOPMENT_SECRET_KEY
    assert config.database["ENGINE"] == "django.db.backends.sqlite3"
    assert config.database["NAME"].endswith("data/orglogin.sqlite3")


def test_database_url_selects_postgresql():
    config = load_config(
        base_dir=BASE,
        env={"DEBUG": "1", "DATABASE_URL": "postgres://u@127.0.0.1:5432/orglogin"},
    )
    assert config.database["ENGINE"] == "django.db.backends.postgresql"
    assert config.database["NAME"] == "orglogin"


def test_dev_idp_cannot_be_switched_on_in_production():
    with pytest.raises(ImproperlyConfigured, match="DEV_IDP"):
        load_config(base_dir=BASE, env={"SECRET_KEY": "k" * 50, "DEV_IDP": "1"})


@pytest.mark.parametrize("bad", ["ftp://x", "127.0.0.1:8000", "http://host/path"])
def test_base_url_must_be_an_origin(bad):
    with pytest.raises(ImproperlyConfigured, match="BASE_URL"):
        load_config(base_dir=BASE, env={"DEBUG": "1", "BASE_URL": bad})


def test_platform_name_default_and_override():
    assert load_config(base_dir=BASE, env={"DEBUG": "1"}).platform_name == "OrgLogin Learning"
    named = load_config(base_dir=BASE, env={"DEBUG": "1", "PLATFORM_NAME": "Acme Academy"})
    assert named.platform_name == "Acme Academy"


def test_trusted_proxy_count_must_be_a_number():
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXY_COUNT"):
        load_config(base_dir=BASE, env={"DEBUG": "1", "TRUSTED_PROXY_COUNT": "two"})
    assert load_config(base_dir=BASE, env={"DEBUG": "1"}).trusted_proxy_count == 0


def test_the_stylesheet_is_found_by_staticfiles():
    from django.contrib.staticfiles import finders

    path = finders.find("orglogin/site.css")
    assert path and "--accent" in Path(path).read_text()
