import pytest

pytestmark = pytest.mark.django_db


def test_end_all_sessions_logs_out_every_browser(client, django_user_model):
    from django.test import Client

    user = django_user_model.objects.create_user("jane@example.org", "a long passphrase")
    other_browser = Client()
    client.force_login(user)
    other_browser.force_login(user)
    assert client.get("/dashboard/").status_code == 200

    user.end_all_sessions()

    for browser in (client, other_browser):
        response = browser.get("/dashboard/")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_fresh_login_after_ending_sessions_works(client, django_user_model):
    user = django_user_model.objects.create_user("jane@example.org", "a long passphrase")
    user.end_all_sessions()
    client.force_login(user)
    assert client.get("/dashboard/").status_code == 200
