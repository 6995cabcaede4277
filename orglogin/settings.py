"""OrgLogin settings, read once from the environment (12-factor).

Every name here is part of the operator contract (spec section 5). `orglogin.core.config`
parses and validates the raw values; this module only wires them into Django.
"""

from pathlib import Path

from orglogin.core.config import load_config

BASE_DIR = Path(__file__).resolve().parent.parent
CONFIG = load_config(base_dir=BASE_DIR)

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = CONFIG.allowed_hosts
CSRF_TRUSTED_ORIGINS = [CONFIG.base_url]
BASE_URL = CONFIG.base_url
PLATFORM_NAME = CONFIG.platform_name
SUPPORT_EMAIL = CONFIG.support_email
# The development IdP under /dev-idp/ is refused by a system check when DEBUG is off.
DEV_IDP_ENABLED = CONFIG.dev_idp_enabled

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.facebook",
    "allauth.socialaccount.providers.apple",
    "allauth.mfa",
    "django_tasks",
    "django_tasks_db",
    "orglogin.core",
    "orglogin.audit",
    "orglogin.accounts",
    "orglogin.organizations",
    "orglogin.sso",
    "orglogin.programs",
    "orglogin.console",
    "orglogin.cli",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "orglogin.urls"
WSGI_APPLICATION = "orglogin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "orglogin" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "orglogin.core.context_processors.platform",
            ],
        },
    },
]

DATABASES = {"default": CONFIG.database}

if CONFIG.redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CONFIG.redis_url,
            "KEY_PREFIX": "orglogin",
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cache"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

AUTH_USER_MODEL = "accounts.User"
# Email is unique case-insensitively through a functional constraint (accounts.User.Meta),
# which the auth.W004 check cannot see.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# argon2id with OWASP's minimum (m=19 MiB, t=2, p=1): far cheaper than argon2-cffi's
# defaults while still memory-hard (see shared/performance-notes.md).
PASSWORD_HASHERS = [
    "orglogin.accounts.hashers.OwaspArgon2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# NIST SP 800-63B: length and a blocklist of common passwords; no composition rules.
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "orglogin.accounts.passwords.MaximumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "orglogin" / "static"]
STATIC_ROOT = BASE_DIR / "data" / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Sessions and cookies -------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"  # the SAML ACS is a cross-site POST: see sso/views.py
SESSION_COOKIE_SECURE = CONFIG.https
CSRF_COOKIE_SECURE = CONFIG.https
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind a load balancer every client shares its IP: rate limits and the audit log read the
# client address from X-Forwarded-For, trusting exactly this many proxies (0: REMOTE_ADDR).
ALLAUTH_TRUSTED_PROXY_COUNT = CONFIG.trusted_proxy_count
if CONFIG.https:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Mail ---------------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = CONFIG.default_from_email
SERVER_EMAIL = CONFIG.default_from_email
if CONFIG.email_host:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = CONFIG.email_host
    EMAIL_PORT = CONFIG.email_port
    EMAIL_HOST_USER = CONFIG.email_host_user
    EMAIL_HOST_PASSWORD = CONFIG.email_host_password
    EMAIL_USE_TLS = CONFIG.email_use_tls
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# --- Background work (invitation mail) on Django's Tasks API with its database backend ----
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- django-allauth: personal accounts ----------------------------------------------------
ACCOUNT_ADAPTER = "orglogin.accounts.adapter.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "orglogin.accounts.adapter.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_CHANGE_EMAIL = True
# Spec 2.5: the old address is told when the login email changes (and of password, MFA and
# link changes, which allauth notifies through the same switch).
ACCOUNT_EMAIL_NOTIFICATIONS = True
# The Settings page and allauth's own email page refuse an address another account uses.
ACCOUNT_FORMS = {"add_email": "orglogin.accounts.forms.ChangeEmailForm"}
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{PLATFORM_NAME}] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if CONFIG.https else "http"
ACCOUNT_RATE_LIMITS = {
    # allauth's defaults, spelled out because they are part of the security contract.
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "confirm_email": "1/3m/key",
}
LOGIN_REDIRECT_URL = "dashboard"
LOGIN_URL = "account_login"

# A social login whose verified email matches an existing account does NOT log into that
# account (SOCIALACCOUNT_EMAIL_AUTHENTICATION off, allauth's safe default) and does not
# auto-connect: the learner is sent to the sign-up form, where the taken email is refused.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = False
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS = CONFIG.social_providers

MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = PLATFORM_NAME

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"orglogin": {"handlers": ["console"], "level": CONFIG.log_level}},
}
