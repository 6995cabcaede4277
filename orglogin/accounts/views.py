from allauth.account import views as allauth_views
from allauth.account.models import EmailAddress
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from orglogin.accounts.email_change import holders_of, refuse_taken
from orglogin.accounts.forms import EMAIL_TAKEN, SettingsForm
from orglogin.accounts.linked import Delinked, DelinkRefused, linked_accounts
from orglogin.accounts.linked import delink as delink_action
from orglogin.accounts.social import PERSONAL_PROVIDERS, personal_providers, provider_name
from orglogin.programs.models import Certificate, ProgramMembership


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    memberships = ProgramMembership.objects.filter(user=request.user).select_related(
        "program__organization"
    )
    certificates = Certificate.objects.filter(user=request.user)
    return render(
        request,
        "accounts/dashboard.html",
        {"memberships": memberships, "certificates": certificates},
    )


def _render_settings(
    request: HttpRequest, form: SettingsForm, status: int = 200, **extra
) -> HttpResponse:
    user = request.user
    links = linked_accounts(user)
    linked_providers = {link.label for link in links if link.kind == "social"}
    context = {
        "form": form,
        "pending_email": EmailAddress.objects.get_new(user),
        "has_password": user.has_usable_password(),
        "mfa_enabled": is_mfa_enabled(user),
        "links": links,
        "linkable": [
            p
            for p in personal_providers(request)
            if p.configured and p.name not in linked_providers
        ],
        **extra,
    }
    return render(request, "accounts/settings.html", context, status=status)


@login_required
def account_settings(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _render_settings(request, SettingsForm(user=request.user))
    form = SettingsForm(request.POST, user=request.user)
    if not form.is_valid():
        return _render_settings(request, form, status=400)
    form.save(request)
    messages.success(request, "Your settings were saved.")
    return redirect("accounts:settings")


@login_required
@require_POST
def delink(request: HttpRequest) -> HttpResponse:
    outcome = delink_action(request, request.user, request.POST.get("link", ""))
    if isinstance(outcome, DelinkRefused):
        return _render_settings(
            request, SettingsForm(user=request.user), status=409, refused=outcome
        )
    if isinstance(outcome, Delinked) and outcome.link.kind == "org":
        # allauth's disconnect flow already tells the learner about a social delink.
        messages.success(request, f"Your {outcome.link.label} account is no longer linked.")
    elif not isinstance(outcome, Delinked):
        messages.error(request, "That linked account was not found. It may already be delinked.")
    return redirect("accounts:settings")


def social_unavailable(request: HttpRequest, provider: str) -> HttpResponse:
    if provider not in PERSONAL_PROVIDERS:
        raise Http404
    return render(
        request, "accounts/social_unavailable.html", {"provider_name": provider_name(provider)}
    )


class ConfirmEmailView(allauth_views.ConfirmEmailView):
    """allauth's confirmation view; a dead link gets the same clear page on GET and POST.

    allauth answers a POST with an unknown or expired key with a bare 404; the learner should
    read why instead, and that nothing changed. An address another account took after the
    change was requested is refused on a clear page too (`accounts/email_change.py`), before
    anything is written; the page never says whose account holds it.
    """

    def get(self, *args, **kwargs) -> HttpResponse:
        response = super().get(*args, **kwargs)
        if self.object is None:
            response.status_code = 404
        elif self._holders():
            response.status_code = 409
        return response

    def post(self, *args, **kwargs) -> HttpResponse:
        try:
            self.object = self.get_object()
        except Http404:
            self.object = None
            return self.render_to_response(self.get_context_data(), status=404)
        holders = self._holders()
        if holders:
            return self._refuse(holders)
        try:
            # One transaction: a write that fails half-way leaves the old address in place.
            with transaction.atomic():
                return super().post(*args, **kwargs)
        except IntegrityError:
            # Another account took the address between the check above and the write. The
            # rollback undid the rows; the objects in memory still carry the new address.
            address = self.object.email_address
            address.refresh_from_db()
            address.user.refresh_from_db()
            return self._refuse(self._holders(), race=True)

    def _holders(self) -> list[int]:
        address = self.object.email_address if self.object is not None else None
        if address is None or address.verified:
            return []
        return holders_of(address.email, besides=address.user_id)

    def _refuse(self, holders: list[int], *, race: bool = False) -> HttpResponse:
        event = refuse_taken(self.request, self.object.email_address, holders, race=race)
        context = self.get_context_data(taken=True, reference=event.reference)
        return self.render_to_response(context, status=409)

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        if self.object is not None and "taken" not in context:
            context["taken"] = not context["can_confirm"] or bool(self._holders())
        if context.get("taken"):
            context["can_confirm"] = False
        context["email_taken"] = EMAIL_TAKEN
        return context


confirm_email = ConfirmEmailView.as_view()
