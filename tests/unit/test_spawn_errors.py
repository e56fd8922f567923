"""The spawn form shows a refusal's own message, not the exception's repr."""

from jupyterhub.utils import format_exception

from spawners.errors import SpawnException


def test_form_page_gets_the_user_facing_message():
    exc = SpawnException("Budget of user:a is not enough.", reason="budget", status_code=403,
                         log_message="lens budget hold refused for a")
    assert format_exception(exc) == ("Budget of user:a is not enough.", "Budget of user:a is not enough.")
    assert exc.status_code == 403 and "lens budget hold refused" in exc.get_message()
    html = SpawnException("<b>", reason="x", message_html="<i>ok</i>")
    assert format_exception(html) == ("<b>", "<i>ok</i>")
    assert format_exception(SpawnException("a < b", reason="x"))[1] == "a &lt; b"
