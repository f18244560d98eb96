"""The server's way of putting a refused form's messages under its fields (web/form_rerender.py)."""

from allotment.web.form_rerender import mark_form, mark_page

FORM = ('<form method="post" action="/ui/things">'
        '<input type="hidden" name="csrf_token" value="t">'
        '<label for="name">Name</label><input id="name" name="name" value="old">'
        '<input id="secret" name="secret" type="password">'
        '<select id="kind" name="kind"><option value="a" selected>a</option><option value="b">b</option></select>'
        '<textarea id="notes" name="notes">before</textarea>'
        '<button type="submit">Save</button></form>')


def test_each_message_goes_under_its_field_which_is_marked_invalid():
    out = mark_form(FORM, {"name": ["must not contain spaces"], "kind": ["is not a kind"]}, {})
    assert ('<input id="name" name="name" value="old" aria-invalid="true" aria-describedby="name-errors">'
            '<small class="field-errors" id="name-errors" data-testid="errors-name" data-sent="1">'
            '<span>Must not contain spaces</span></small>') in out
    assert '</select><small class="field-errors" id="kind-errors" data-testid="errors-kind"' in out


def test_what_was_typed_comes_back_except_secrets():
    out = mark_form(FORM, {"name": ["taken"]}, {"name": 'a "b"', "secret": "hunter2", "kind": "b", "notes": "<x>"})
    assert 'name="name" value="a &quot;b&quot;"' in out and "hunter2" not in out
    assert '<option value="a">a</option><option value="b" selected>b</option>' in out
    assert '<textarea id="notes" name="notes">&lt;x&gt;</textarea>' in out


def test_a_message_for_a_field_the_form_does_not_show_goes_at_its_top():
    out = mark_form(FORM, {"request": ["the cluster is read-only"]}, {})
    assert out.startswith('<form method="post" action="/ui/things"><div class="notice error" role="alert" '
                          'data-testid="errors-form"><span>The cluster is read-only</span></div>')


def test_only_the_form_posting_to_the_refused_route_is_marked():
    page = '<form method="post" action="/ui/other"><input name="name"></form>' + FORM
    out = mark_page(page, "/ui/things", {"name": ["taken"]}, {})
    assert out.startswith('<form method="post" action="/ui/other"><input name="name"></form>')
    assert out.count("errors-name") == 1
    assert mark_page(page, "/ui/elsewhere", {"name": ["taken"]}, {}) is None
