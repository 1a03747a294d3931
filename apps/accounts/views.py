from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from apps.accounts.models import ApiKey
from apps.accounts.permissions import operator_required
from apps.accounts.selectors import api_key_list, audit_recent
from apps.accounts.services import actor_name, api_key_revoke
from coreadmin.clock import clock
from coreadmin.http import HtmxHttpRequest


@login_required
def key_list(request: HtmxHttpRequest) -> HttpResponse:
    scope = request.GET.get("scope", "")
    status = request.GET.get("status", "")
    page = Paginator(api_key_list(scope=scope, status=status), 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "scope": scope,
        "status": status,
        "now": clock.now(),
        "audit": audit_recent(),
    }
    template = "accounts/keys.html"
    if request.htmx and not request.htmx.boosted:
        template += "#key-table"
    return render(request, template, context)


@require_POST
@operator_required
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=key_id)
    api_key_revoke(api_key=api_key, actor=actor_name(request.user))
    return render(request, "accounts/_key_row.html", {"key": api_key, "now": clock.now()})
